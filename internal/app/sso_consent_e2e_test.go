package app_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

// signInThroughCard opens the card's sign-in link as u: Entra asks u for consent to what the
// OAuth connection's scopes request, and u accepts.
func signInThroughCard(u entra.User) func(teamsclient.OAuthCard) error {
	return func(card teamsclient.OAuthCard) error {
		resp, err := testenv.SharedCA().Client().Get(card.SignInLink + "&oid=" + u.ObjectID)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("sign-in page: %d %s", resp.StatusCode, b)
		}
		return nil
	}
}

// In a tenant where no administrator consented for the bot, the user gets one card, consents
// once through it (the connection's sign-in asks for the bot API's .default, whose consent
// prompt covers every permission the app registration lists), Teams retries the exchange with
// the same id, the parked request is answered, and later requests need no card.
func TestSSOConsentWithoutAdminConsent(t *testing.T) {
	h := newSSOHarness(t)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)
	c := h.client(alice)
	ctx := ctxTimeout(t, 30*time.Second)

	if r, err := c.Say(ctx, "mail quarterly"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("mail: %v %+v", err, r)
	}
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	card, err := c.LastOAuthCard()
	if err != nil {
		t.Fatal(err)
	}
	first, retry, err := c.ExchangeSSOWithConsent(ctx, 2, entra.SSOOptions{}, signInThroughCard(alice))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range first {
		if r.Status != http.StatusPreconditionFailed || r.Body["id"] != card.ExchangeID || r.Body["failureDetail"] == nil {
			t.Fatalf("client %d before consent: %d %+v, want 412 with failureDetail\n%s", i, r.Status, r.Body, h.logs.String())
		}
	}
	if retry == nil || retry.Status != http.StatusOK || retry.Body["id"] != card.ExchangeID {
		t.Fatalf("the retry with the same exchange id after consent: %+v, want 200\n%s", retry, h.logs.String())
	}
	rep, err := c.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	rep = c.Replies()
	if len(rep) != 2 || !strings.Contains(texts(rep[1:]), "Quarterly report for Alice") {
		t.Fatalf("want one card and the parked mail search answered once, got:\n%s", texts(rep))
	}
	// The consent is the user's own, and covers exactly what the app registration lists.
	granted := h.st.Entra.Granted(alice.ObjectID, stack.BotAppID, entra.GraphResource)
	slices.Sort(granted)
	if want := stack.BotRequiredResourceAccess()[entra.GraphResource]; !slices.Equal(granted, sorted(want)) {
		t.Errorf("Graph scopes granted by Alice's consent: %v, want %v", granted, want)
	}
	if g := h.st.Entra.Granted(bob.ObjectID, stack.BotAppID, entra.GraphResource); len(g) != 0 {
		t.Errorf("Alice's consent granted Bob %v", g)
	}

	// Later requests (other Graph scopes' commands included) need no card.
	for i, cmd := range []string{"files", "whoami"} {
		if r, err := c.Say(ctx, cmd); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s: %v %+v", cmd, err, r)
		}
		rep, _ := c.WaitReplies(ctx, 3+i)
		if got := texts(rep[2+i:]); strings.Contains(got, "card.oauth") || !strings.Contains(got, []string{"Alice-plan.docx", "Alice Example"}[i]) {
			t.Fatalf("%s after consent:\n%s\n%s", cmd, got, h.logs.String())
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// A connection whose sign-in asks only for the bot's own access_as_user consents to nothing
// of Graph: the retry after that sign-in still needs consent (412), and no Graph data is
// returned. The stand-in grants only what a sign-in asked for.
func TestSSOConsentToTheBotsScopeAloneIsNotEnough(t *testing.T) {
	h := newSSOHarness(t)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)
	h.ts.Scopes = "api://botid-" + stack.BotAppID + "/access_as_user"
	c := h.client(alice)
	ctx := ctxTimeout(t, 30*time.Second)
	c.Say(ctx, "mail quarterly")
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_, retry, err := c.ExchangeSSOWithConsent(ctx, 1, entra.SSOOptions{}, signInThroughCard(alice))
	if err != nil {
		t.Fatal(err)
	}
	if retry == nil || retry.Status != http.StatusPreconditionFailed {
		t.Fatalf("retry after a sign-in that consented to access_as_user only: %+v, want 412", retry)
	}
	if g := h.st.Entra.Granted(alice.ObjectID, stack.BotAppID, entra.GraphResource); len(g) != 0 {
		t.Fatalf("Graph scopes %v granted by a sign-in that did not ask for them", g)
	}
	time.Sleep(200 * time.Millisecond)
	if got := texts(c.Replies()); strings.Contains(got, "Quarterly report") {
		t.Fatalf("answered without consent:\n%s", got)
	}
}

// A misconfigured OAuth connection (the token service answers 500) and a token store outage
// are 400 with failureDetail to every duplicate, never 412, and send no chat message; nothing
// is remembered under the exchange id, so the same id succeeds once the fault is gone.
func TestSSOExchangeFailuresAre400AndNotRemembered(t *testing.T) {
	h := newSSOHarness(t)
	faults := []struct {
		name        string
		on, off     func()
		reasonInLog string
	}{
		{"misconfigured connection", func() { h.ts.Misconfigure(true) }, func() { h.ts.Misconfigure(false) }, "HTTP 500"},
		{"token store outage", func() { h.table.setDown(true) }, func() { h.table.setDown(false) }, "could not be recorded"},
	}
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			u := []entra.User{alice, bob}[i]
			c := h.client(u)
			ctx := ctxTimeout(t, 30*time.Second)
			c.Say(ctx, "whoami")
			if _, err := c.WaitReplies(ctx, 1); err != nil {
				t.Fatal(err)
			}
			card, _ := c.LastOAuthCard()
			logStart := len(h.logs.String())
			exchanges := h.ts.Count("exchange")
			f.on()
			start := time.Now()
			res, err := c.ExchangeSSO(ctx, 3, entra.SSOOptions{})
			took := time.Since(start)
			f.off()
			t.Logf("%s: answered in %v", f.name, took)
			if took > 8*time.Second {
				t.Errorf("the failure took %v to answer; Teams gives an invoke little time", took)
			}
			if err != nil {
				t.Fatal(err)
			}
			for j, r := range res {
				if r.Status != http.StatusBadRequest || r.Body["id"] != card.ExchangeID || r.Body["failureDetail"] == nil || r.Body["failureDetail"] == "" {
					t.Fatalf("client %d: %d %+v, want 400 with failureDetail", j, r.Status, r.Body)
				}
			}
			// A duplicate that arrives after the first answer was recorded counts as a retry and
			// is exchanged again; it fails alike, so at most one exchange per client.
			if n := h.ts.Count("exchange") - exchanges; n > 3 {
				t.Errorf("%d token-service exchanges for three clients", n)
			}
			if added := h.logs.String()[logStart:]; !strings.Contains(added, f.reasonInLog) {
				t.Errorf("the operator cannot find the cause (%q) in the log:\n%s", f.reasonInLog, added)
			}
			time.Sleep(200 * time.Millisecond)
			if n := len(c.Replies()); n != 1 {
				t.Fatalf("a failed exchange sent chat messages:\n%s", texts(c.Replies()))
			}
			// The same exchange id once the fault is gone: exchanged afresh, request answered.
			res, err = c.ExchangeSSO(ctx, 1, entra.SSOOptions{})
			if err != nil || res[0].Status != http.StatusOK {
				t.Fatalf("same id after the fault: %v %+v\n%s", err, res, h.logs.String())
			}
			rep, _ := c.WaitReplies(ctx, 2)
			if !strings.Contains(texts(rep[1:]), u.Name) {
				t.Fatalf("parked whoami not answered after the retry:\n%s", texts(rep))
			}
		})
	}
}
