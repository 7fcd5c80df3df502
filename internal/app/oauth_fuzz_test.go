package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

// Placeholders in the fuzzed callback query, replaced in each run by values of a sign-in that
// a user has just started: the state the provider sends back, the provider's code for it, and
// the state of a card the user has not opened (the wrong step for the callback).
const (
	statePlaceholder     = "$STATE"
	codePlaceholder      = "$CODE"
	cardStatePlaceholder = "$CARD"
)

// FuzzOAuthCallback fuzzes the query of GET /api/oauth/callback (state, code, error and
// anything else) through the whole handler with Azurite and the Atlassian stand-in. Whatever
// the query:
//
//   - the page answers 200 only for the state of a sign-in at the provider step with the
//     provider's code for it and no error parameter (and every such callback is answered 200);
//     anything else is a 400;
//   - only such a callback reaches the provider's token endpoint;
//   - exactly one pending link is parked for the user after a 200 and none otherwise;
//   - a 200 callback replayed is refused and parks nothing more;
//   - the page never shows the state or the provider's code, and never reflects query text
//     that could be markup.
func FuzzOAuthCallback(f *testing.F) {
	e := newAtlEnv(f, 1)
	baselineResp, err := browser.Get(e.pub + "/api/oauth/callback?state=nothing")
	if err != nil {
		f.Fatal(err)
	}
	baseline := readAll(baselineResp)
	for _, q := range []string{
		"state=$STATE&code=$CODE",
		"code=$CODE&state=$STATE",
		"state=$STATE&code=$CODE&error=access_denied",
		"state=$STATE&error=access_denied&error_description=The+user+said+no",
		"state=$STATE&error=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"state=$STATE&code=wrong-code",
		"state=$STATE&code=",
		"state=$STATE&code=$CODE$CODE",
		"state=$CARD&code=$CODE",
		"state=$STATE&state=other&code=$CODE",
		"state=other&state=$STATE&code=$CODE",
		"state=$STATE;code=$CODE",
		"state=$STATE%00&code=$CODE",
		"state=" + strings.Repeat("A", 129) + "&code=x",
		"code=$CODE", "", "state=", "state=%zz&code=$CODE", "state=<b>&code=\"'><img>",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		u := newChatUser("fuzz")
		orig := query // failure messages quote this, not the state and code it stands for
		var fresh, code, card string
		if strings.Contains(query, statePlaceholder) || strings.Contains(query, codePlaceholder) || strings.Contains(query, cardStatePlaceholder) {
			if strings.Contains(query, cardStatePlaceholder) {
				// A card the user has not opened: its state is still at the card step.
				cu, _ := url.Parse(startURL(t, e.say(t, 0, u, "connect jira")))
				card = cu.Query().Get("state")
			}
			start := startURL(t, e.say(t, 0, u, "connect jira"))
			resp, _ := get(t, start)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("start: %d", resp.StatusCode)
			}
			cb, err := e.atl.AuthorizeAs(standin.Alice, resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			cu, _ := url.Parse(cb)
			fresh, code = cu.Query().Get("state"), cu.Query().Get("code")
			if fresh == "" || code == "" {
				t.Fatalf("the provider's callback has no state or code: %s", cb)
			}
			query = strings.NewReplacer(statePlaceholder, fresh, codePlaceholder, code, cardStatePlaceholder, card).Replace(query)
		}
		target, err := url.Parse(e.pub + "/api/oauth/callback?" + query)
		if err != nil || strings.ContainsAny(query, " \t\r\n#") {
			return // not a request a browser can send
		}
		q := target.Query()
		want200 := fresh != "" && q.Get("state") == fresh && q.Get("code") == code && q.Get("error") == ""

		calls := e.atl.TokenCalls()
		status, body := e.fetchCallback(t, target.String())
		if n := e.atl.TokenCalls() - calls; n != 0 && (fresh == "" || q.Get("state") != fresh || q.Get("code") == "" || q.Get("error") != "") {
			t.Fatalf("%d code exchanges reached the provider for %q", n, orig)
		}
		if status != http.StatusOK && status != http.StatusBadRequest {
			t.Fatalf("callback answered %d for %q", status, orig)
		}
		if (status == http.StatusOK) != want200 {
			t.Fatalf("callback answered %d for %q (want 200: %v)", status, orig, want200)
		}
		for _, secret := range []string{fresh, code, card} {
			if secret != "" && strings.Contains(body, secret) {
				t.Fatalf("the page shows the state or the provider's code")
			}
		}
		for _, vs := range q {
			for _, v := range vs {
				if len(v) >= 4 && strings.ContainsAny(v, `<>"'`) && strings.Contains(body, v) && !strings.Contains(baseline, v) {
					t.Fatalf("the page reflects %q", v)
				}
			}
		}
		parked := e.takeLinks(t, u)
		if want := map[bool]int{true: 1, false: 0}[status == http.StatusOK]; parked != want {
			t.Fatalf("callback %d parked %d pending links, want %d", status, parked, want)
		}
		if status == http.StatusOK {
			again, _ := e.fetchCallback(t, target.String())
			if again != http.StatusBadRequest || e.takeLinks(t, u) != 0 {
				t.Fatalf("a replayed callback answered %d or parked a link", again)
			}
		}
	})
}

// fetchCallback loads a callback URL and returns its status and page.
func (e *atlEnv) fetchCallback(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(resp)
}

// takeLinks removes and counts u's pending links of the Atlassian connector.
func (e *atlEnv) takeLinks(t *testing.T, u chatUser) int {
	t.Helper()
	ps, err := e.apps[0].Store.TakeParked(context.Background(), u.key(), "oauth2link/atlassian")
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
