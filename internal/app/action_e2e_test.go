package app_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

const (
	loginRequest = "application/vnd.microsoft.activity.loginRequest"
	preFailed    = "application/vnd.microsoft.error.preconditionFailed"
	badCode      = "application/vnd.microsoft.error.invalidAuthCode"
)

// A button (Action.Execute) whose command needs Microsoft 365: the first click is answered
// with a login request carrying the SSO resource, Teams sends the action again with the
// user's SSO token, and the answer is the user's own — for Alice and for Bob — in the invoke
// response, with nothing posted to the chat.
func TestCardActionSilentSignIn(t *testing.T) {
	h := newSSOHarness(t)
	ctx := ctxTimeout(t, 30*time.Second)
	for _, u := range []entra.User{alice, bob} {
		c := h.client(u)
		res, err := c.ExecuteSignedIn(ctx, "command", map[string]any{"command": "whoami"}, entra.SSOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 {
			t.Fatalf("%s: want a login request and an answer, got %+v\n%s", u.Name, res, h.logs.String())
		}
		card, ok := res[0].Login()
		if res[0].HTTPStatus != http.StatusOK || !ok || !card.HasExchangeResource || card.ConnectionName != "sso" || card.ExchangeURI != "api://botid-"+stack.BotAppID {
			t.Fatalf("%s: first answer is not a login request with the SSO resource: %+v", u.Name, res[0])
		}
		other := "Bob Example"
		if u.ObjectID == bob.ObjectID {
			other = "Alice Example"
		}
		if res[1].StatusCode != http.StatusOK || !strings.Contains(res[1].Text(), u.Name) || strings.Contains(res[1].Text(), other) {
			t.Fatalf("%s: answer after sign-in: %+v", u.Name, res[1])
		}
		if n := len(c.Replies()); n != 0 {
			t.Fatalf("%s: a card action posted %d messages to the chat:\n%s", u.Name, n, texts(c.Replies()))
		}
	}
}

// Consent needed: the SSO token cannot be exchanged, so the retry is answered with a second
// login request that has only the sign-in link; the user signs in there and consents, Teams
// sends the action with the code the page showed, and it runs. A wrong code is refused with
// invalidAuthCode and changes nothing.
func TestCardActionConsentThenSignInLink(t *testing.T) {
	h := newSSOHarness(t)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)
	ctx := ctxTimeout(t, 30*time.Second)
	c := h.client(bob)
	data := map[string]any{"command": "mail quarterly"}
	res, err := c.ExecuteSignedIn(ctx, "command", data, entra.SSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	card, ok := res[len(res)-1].Login()
	if len(res) != 2 || !ok || card.HasExchangeResource {
		t.Fatalf("want a login request without SSO after the failed exchange, got %+v\n%s", res, h.logs.String())
	}
	if r, err := c.Execute(ctx, "command", data, map[string]any{"state": "000000"}); err != nil || r.StatusCode != http.StatusUnauthorized || r.Type != badCode {
		t.Fatalf("a wrong code: %v %+v", err, r)
	}
	resp, err := testenv.SharedCA().Client().Get(card.SignInLink + "&oid=" + bob.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="magic">(\d{6})</code>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in page: %s", page)
	}
	r, err := c.Execute(ctx, "command", data, map[string]any{"state": string(m[1])})
	if err != nil || r.StatusCode != http.StatusOK || !strings.Contains(r.Text(), "Quarterly report for Bob") || strings.Contains(r.Text(), "Alice") {
		t.Fatalf("after signing in with the link: %v %+v\n%s", err, r, h.logs.String())
	}
}

// A retry whose SSO token is not the clicking user's (Alice's token on Bob's click) is refused
// with preconditionFailed and runs nothing.
func TestCardActionRefusesAnotherUsersToken(t *testing.T) {
	h := newSSOHarness(t)
	ctx := ctxTimeout(t, 30*time.Second)
	cb := h.client(bob)
	first, err := cb.Execute(ctx, "command", map[string]any{"command": "whoami"}, nil)
	card, ok := first.Login()
	if err != nil || !ok {
		t.Fatalf("%v %+v", err, first)
	}
	r, err := cb.Execute(ctx, "command", map[string]any{"command": "whoami"}, map[string]any{"authentication": map[string]any{
		"id": card.ExchangeID, "connectionName": card.ConnectionName, "token": h.st.Entra.MintSSOToken(alice, entra.SSOOptions{AppID: stack.BotAppID}),
	}})
	if err != nil || r.StatusCode != http.StatusPreconditionFailed || r.Type != preFailed || strings.Contains(r.Text(), "Alice") {
		t.Fatalf("another user's token: %v %+v", err, r)
	}
	if h.ts.Count("exchange") != 0 || h.graph.Calls(alice.ObjectID) != 0 {
		t.Fatal("a refused token reached the token service or Graph")
	}
}

// In a group chat a card action's answer never replaces the card everyone sees: with
// targeted messages on it goes to the clicking user alone.
func TestCardActionInGroupChatAnswersPrivately(t *testing.T) {
	h := newSSOHarness(t, map[string]string{"TEAMS_TARGETED_MESSAGES": "true"})
	h.signIn(t, h.client(alice))
	ctx := ctxTimeout(t, 30*time.Second)
	conv := "19:card-action@thread.v2"
	ca := h.client(alice).InGroup(conv, "groupChat")
	cb := h.client(bob).InGroup(conv, "groupChat")
	h.st.Channel.SetMembers(conv, ca.UserID(), cb.UserID())
	r, err := ca.Execute(ctx, "command", map[string]any{"command": "whoami"}, nil)
	if err != nil || r.StatusCode != http.StatusOK || strings.Contains(r.Text(), "Alice") {
		t.Fatalf("the invoke response carries Alice's data or failed: %v %+v", err, r)
	}
	waitSeen(ctx, t, ca, "Alice Example")
	if strings.Contains(texts(cb.Seen()), "Alice") {
		t.Fatalf("Bob sees Alice's answer:\n%s", texts(cb.Seen()))
	}
}

// The compose box searches Microsoft 365 with Teams SSO: the first query is answered
// silentAuth with the sign-in link, Teams reissues it with the user's SSO token, and the
// result is the user's own mail — for Alice and for Bob. With consent missing the reissued
// query is answered 412 (Teams then asks for consent) and nothing is read; once consent is
// given the same query answers. Another user's token is refused.
func TestSearchExtensionWithSSO(t *testing.T) {
	h := newSSOHarness(t)
	ctx := ctxTimeout(t, 30*time.Second)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)
	ca := h.client(alice)
	status, ce, err := ca.SearchSignedIn(ctx, "mailSearch", "quarterly", entra.SSOOptions{})
	if err != nil || status != http.StatusPreconditionFailed || strings.Contains(jsonOf(ce), "Quarterly") {
		t.Fatalf("consent needed: want 412 and nothing read, got %d %s (%v)", status, jsonOf(ce), err)
	}
	h.st.Entra.GrantAdminConsent(stack.BotAppID)
	for _, u := range []entra.User{alice, bob} {
		c := h.client(u)
		first, ce, err := c.Search(ctx, "mailSearch", "quarterly", nil)
		acts, _ := ce["suggestedActions"].(map[string]any)["actions"].([]any)
		if err != nil || first != http.StatusOK || ce["type"] != "silentAuth" || len(acts) != 1 || !strings.HasPrefix(acts[0].(map[string]any)["value"].(string), h.ts.URL) {
			t.Fatalf("%s: first query: %d %s", u.Name, first, jsonOf(ce))
		}
		status, ce, err := c.SearchSignedIn(ctx, "mailSearch", "quarterly", entra.SSOOptions{})
		first2 := strings.Fields(u.Name)[0]
		other := map[string]string{"Alice": "Bob", "Bob": "Alice"}[first2]
		if err != nil || status != http.StatusOK || ce["type"] != "result" || !strings.Contains(jsonOf(ce), "Quarterly report for "+first2) ||
			strings.Contains(jsonOf(ce), "Quarterly report for "+other) {
			t.Fatalf("%s: signed-in query: %d %s\n%s", u.Name, status, jsonOf(ce), h.logs.String())
		}
		if len(c.Replies()) != 0 {
			t.Fatalf("%s: a search posted to the chat", u.Name)
		}
	}
	cb := h.client(bob)
	exchanges := h.ts.Count("exchange")
	_, ce, _ = cb.Search(ctx, "filesSearch", "plan", map[string]any{"authentication": map[string]any{"token": h.st.Entra.MintSSOToken(alice, entra.SSOOptions{AppID: stack.BotAppID})}})
	if strings.Contains(jsonOf(ce), "Alice") || h.ts.Count("exchange") != exchanges {
		t.Fatalf("Alice's token on Bob's query: %s", jsonOf(ce))
	}
}
