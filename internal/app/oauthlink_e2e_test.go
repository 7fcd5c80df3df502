package app_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

// The card's link is only the way to the start page: its state, brought straight to the
// callback with a code, is refused before any code reaches the provider, and it cannot be used
// afterwards either. Someone holding the card link cannot skip the start page.
func TestCallbackRefusesTheCardLinksState(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada := newChatUser("ada")
	start := startURL(t, e.say(t, 0, ada, "connect jira"))
	u, err := url.Parse(start)
	if err != nil {
		t.Fatal(err)
	}
	cardState := u.Query().Get("state")

	// A real code of the provider, for the same client and redirect, obtained by the holder
	// of the link with an authorization request of their own (their own PKCE challenge).
	sum := sha256.Sum256([]byte(oauth2.NewVerifier()))
	own := e.atl.URL + "/authorize?" + url.Values{
		"audience": {"api.atlassian.com"}, "client_id": {e.atl.ClientID()}, "scope": {"read:jira-work offline_access"},
		"redirect_uri": {e.pub + "/api/oauth/callback"}, "state": {cardState}, "response_type": {"code"}, "prompt": {"consent"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	cb, err := e.atl.AuthorizeAs(standin.Alice, own)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cb, "code=") {
		t.Fatalf("the stand-in gave no code: %s", cb)
	}
	calls := e.atl.TokenCalls()
	if st, code := callback(t, cb); st != http.StatusBadRequest || code != "" {
		t.Fatalf("the card's state at the callback: status %d, code %q; want 400 and no code", st, code)
	}
	if n := e.atl.TokenCalls() - calls; n != 0 {
		t.Fatalf("%d code exchanges reached the provider for a state still at the card step", n)
	}
	if !strings.Contains(e.logs.String(), "state used at the wrong step") {
		t.Errorf("the refusal's reason is not in the log:\n%s", e.logs.String())
	}
	// The refused attempt used the state up: the card link no longer starts a sign-in.
	if resp, _ := get(t, start); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the card link still works after its state was tried at the callback: %d", resp.StatusCode)
	}
	if e.connected(t, ada) {
		t.Fatal("a connection was stored")
	}
}

// A pending link is confirmed only from the conversation it was started in: the same user
// typing the code (or Teams sending it) from another of their conversations links nothing,
// is told so, and the link still completes from the original conversation.
func TestLinkConfirmationFromAnotherConversationOfTheSameUserIsRefused(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada := newChatUser("ada")
	elsewhere := ada
	elsewhere.conv = ada.conv + "-other" // the same Entra user, another 1:1 conversation

	status, code := callback(t, e.authorize(t, startURL(t, e.say(t, 0, ada, "connect jira")), standin.Alice))
	if status != http.StatusOK || code == "" {
		t.Fatalf("callback: status %d, no code", status)
	}
	if d := dump(e.say(t, 0, elsewhere, "link "+code)); !strings.Contains(d, "does not match") || strings.Contains(d, "Connected") {
		t.Fatalf("typed in another conversation:\n%s", d)
	}
	if st, recs := e.verifyState(t, elsewhere, code); st != http.StatusNotFound || !strings.Contains(dump(recs), "in another chat") {
		t.Fatalf("Teams' verifyState from another conversation: status %d\n%s", st, dump(recs))
	}
	if e.connected(t, ada) {
		t.Fatal("a link was confirmed from another conversation")
	}
	if d := dump(e.say(t, 0, ada, "link "+code)); !strings.Contains(d, "Connected to Jira as Alice Example.") {
		t.Fatalf("the original conversation could not confirm after the refusals:\n%s", d)
	}
}

// Teams' verifyState and the typed code can arrive together (on two instances): the pending
// link is taken by one of them, so the account is linked once and announced once, and the
// other is told the code matched nothing.
func TestLinkConfirmedOnceWhenVerifyStateAndTypedCodeRace(t *testing.T) {
	e := newAtlEnv(t, 2)
	ada := newChatUser("ada")
	for round := range 8 {
		status, code := callback(t, e.authorize(t, startURL(t, e.say(t, 0, ada, "connect jira")), standin.Alice))
		if status != http.StatusOK || code == "" {
			t.Fatalf("round %d: callback status %d, no code", round, status)
		}
		before := len(e.ch.Recorded())
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, act := range []map[string]any{
			{"type": "invoke", "name": "signin/verifyState", "value": map[string]any{"state": code}},
			{"type": "message", "text": "link " + code},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				e.send(t, i, ada, act)
			}()
		}
		close(start)
		wg.Wait()
		var connected, refused int
		for _, r := range e.ch.Recorded()[before:] {
			if r.ConversationID != ada.conv {
				continue
			}
			switch txt := r.Text(); {
			case strings.Contains(txt, "Connected to Jira as Alice Example."):
				connected++
			case strings.Contains(txt, "does not match") || strings.Contains(txt, "could not be confirmed"):
				refused++
			}
		}
		if connected != 1 || refused != 1 {
			t.Fatalf("round %d: %d connected and %d refused messages, want one of each:\n%s", round, connected, refused, dump(e.ch.Recorded()[before:]))
		}
		if d := dump(e.say(t, 0, ada, "disconnect jira")); !strings.Contains(d, "Disconnected") {
			t.Fatalf("round %d: disconnect:\n%s", round, d)
		}
	}
}
