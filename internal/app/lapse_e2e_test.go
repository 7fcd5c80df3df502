package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

// The connections card shows what the connection may do, when it was last used and when it
// lapses; a week before Atlassian's 90-day idle limit the user gets one private warning, even
// with two instances running the timer several times at once.
func TestConnectionLapseWarningIsSentOncePerConnection(t *testing.T) {
	e := newAtlEnv(t, 2)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	e.link(t, ada, standin.Alice, false)
	linked := e.clk.Now()
	e.say(t, 0, ada, "jira site "+standin.AcmeSite+" jira PROJ-1")

	d := dump(e.say(t, 0, ada, "connections"))
	lapse := linked.Add(90 * 24 * time.Hour).UTC().Format("2 Jan 2006")
	for _, want := range []string{"Connected as Alice Example", "read:jira-work", "Last used " + e.clk.Now().UTC().Format("2 Jan 2006"),
		"Stops working on " + lapse + " unless used before then", `"command":"reconnect jira"`, `"command":"disconnect jira"`} {
		if !strings.Contains(d, want) {
			t.Fatalf("connections card lacks %q:\n%s", want, d)
		}
	}

	// Bo connects 60 days later: his connection is nowhere near lapsing when Ada's is.
	e.clk.Advance(60 * 24 * time.Hour)
	e.link(t, bo, standin.Bob, true)

	ctx := context.Background()
	if n, err := e.apps[0].WarnLapsing(ctx, e.clk.Now()); err != nil || n != 0 {
		t.Fatalf("warnings 30 days before the lapse: %d, %v", n, err)
	}
	e.clk.Advance(25 * 24 * time.Hour) // 85 days idle: 5 days left
	// The second instance has received no activity yet: it sends all the same, to the sealed
	// conversation reference stored when Ada linked her account.
	before := len(e.ch.Recorded())
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.apps[i%2].WarnLapsing(ctx, e.clk.Now())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	var toAda, toBo []string
	for _, r := range e.ch.Recorded()[before:] {
		switch r.ConversationID {
		case ada.conv:
			toAda = append(toAda, r.Text())
		case bo.conv:
			toBo = append(toBo, r.Text())
		}
	}
	if total != 1 || len(toAda) != 1 || len(toBo) != 0 {
		t.Fatalf("%d warnings counted; to Ada %q; to Bo %q", total, toAda, toBo)
	}
	if !strings.Contains(toAda[0], "Jira and Confluence connection stops working on "+lapse) || !strings.Contains(toAda[0], "reconnect jira") {
		t.Fatalf("warning: %s", toAda[0])
	}
	// A later run in the window — here the hourly purge timer, as the Functions host invokes
	// it — sends nothing more.
	e.clk.Advance(24 * time.Hour)
	resp, err := http.Post(e.srvs[1].URL+"/purge", "application/json", strings.NewReader(`{"Data":{"timer":{}},"Metadata":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "0 lapse warnings sent") {
		t.Fatalf("second day, purge timer: %d %s", resp.StatusCode, body)
	}
	if n := len(e.ch.Recorded()) - before; n != 1 {
		t.Fatalf("%d messages after the timer ran again, want the one warning", n)
	}

	// Using the connection refreshes its token: the idle limit starts again.
	e.say(t, 0, ada, "jira PROJ-1")
	renewed := e.clk.Now().Add(90 * 24 * time.Hour).UTC().Format("2 Jan 2006")
	if d := dump(e.say(t, 0, ada, "connections")); !strings.Contains(d, "Stops working on "+renewed) {
		t.Fatalf("after a refresh the card does not show %s:\n%s", renewed, d)
	}
}
