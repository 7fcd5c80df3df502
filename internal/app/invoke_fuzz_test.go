package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// carol never receives a genuine SSO token in the fuzz target: nothing can sign her in.
var carol = entra.User{ObjectID: "ca401000-0000-4000-8000-00000000000c", Name: "Carol Example", UPN: "carol@contoso.example"}

// Placeholders in fuzzed invoke values, replaced by genuine SSO tokens minted in this run.
const (
	aliceTokenPlaceholder = "$ALICE"
	bobTokenPlaceholder   = "$BOB"
)

var invokeNames = []string{"signin/tokenExchange", "signin/verifyState", "signin/failure"}

// FuzzSignInInvokes sends fuzzed values of the three sign-in invokes through the whole handler
// (genuine channel tokens, the Entra, token-service and Graph stand-ins, Azurite). Whatever the
// value:
//
//   - signin/tokenExchange from Alice answers 200, 400 or 412 with the value's id and the
//     bot's connection name; 200 only for a genuine SSO token of Alice's on the bot's
//     connection with an id; a 400 for anything else reaches neither the token service nor
//     Entra's OBO endpoint (nothing changes);
//   - signin/verifyState from Carol answers 200 only for "CancelledByUser", else 400 or 404;
//   - signin/failure from Carol answers 200 and tells her something, never Teams' message;
//   - no answer (beyond the id it must echo), reply or log line holds an SSO token (logcheck
//     fails the run otherwise).
func FuzzSignInInvokes(f *testing.F) {
	h := newSSOHarness(f)
	h.st.Entra.AddUser(carol)
	// A genuine exchange must succeed, or the properties below are vacuous.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := h.client(alice).Invoke(ctx, "signin/tokenExchange", map[string]any{"id": "genuine", "connectionName": "sso", "token": h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{}))})
		cancel()
		if err != nil || r.Status != http.StatusOK {
			f.Fatalf("a genuine token exchange: %v %+v", err, r)
		}
	}
	for _, s := range []struct {
		name  uint8
		value string
	}{
		{0, `{"id":"x1","connectionName":"sso","token":"$ALICE"}`},
		{0, `{"id":"x1","connectionName":"sso","token":"$BOB"}`},
		{0, `{"id":"x2","connectionName":"other","token":"$ALICE"}`},
		{0, `{"id":"","connectionName":"sso","token":"$ALICE"}`},
		{0, `{"id":"x3","connectionName":"sso","token":"$ALICE.x"}`},
		{0, `{"id":"x4","connectionName":"sso","token":"eyJhbGciOiJub25lIn0.eyJvaWQiOiJhIn0."}`},
		{0, `{"id":"x5","connectionName":"sso"}`},
		{0, `{"id":7,"connectionName":"sso","token":"$ALICE"}`},
		{0, `{"ID":"x6","CONNECTIONNAME":"sso","Token":"$ALICE"}`},
		{0, `[]`}, {0, `null`}, {0, `"$ALICE"`}, {0, `not json`},
		{1, `{"state":"CancelledByUser"}`}, {1, `{"state":"123456"}`}, {1, `{"state":""}`}, {1, `{"state":["a"]}`}, {1, `{}`},
		{2, `{"code":"resourcematchfailed","message":"The bot's OAuth connection does not match"}`},
		{2, `{"code":"userconsentrequired","message":"x"}`},
		{2, `{"code":"[click](https://evil.example)","message":"secret-looking message text 12345"}`},
		{2, `{"code":"**bold** <b>x</b>","message":""}`}, {2, `{}`}, {2, `5`},
	} {
		f.Add(s.name, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, which uint8, value []byte) {
		name := invokeNames[int(which)%len(invokeNames)]
		aliceTok := h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{}))
		bobTok := h.st.Entra.MintSSOToken(bob, withApp(entra.SSOOptions{}))
		raw := strings.NewReplacer(aliceTokenPlaceholder, aliceTok, bobTokenPlaceholder, bobTok).Replace(string(value))
		var v any = raw // not JSON: sent as a JSON string
		if json.Valid([]byte(raw)) {
			v = json.RawMessage(raw)
		}
		user := carol
		if name == "signin/tokenExchange" {
			user = alice
		}
		c := h.client(user)
		exchanges, obos := h.ts.Count("exchange"), h.st.Entra.OBOCount("https://graph.microsoft.com")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := c.Invoke(ctx, name, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The answer echoes the value's id, as the protocol requires, whatever the client put in
		// it; nothing else in it, and no chat message, may carry a token.
		rest := map[string]any{}
		for k, v := range r.Body {
			if k != "id" {
				rest[k] = v
			}
		}
		body, _ := json.Marshal(rest)
		for _, tok := range []string{aliceTok, bobTok} {
			if strings.Contains(string(body), tok) || strings.Contains(texts(c.Replies()), tok) {
				t.Fatalf("%s: an SSO token came back in the answer or a reply", name)
			}
		}
		switch name {
		case "signin/tokenExchange":
			var ev struct {
				ID             string `json:"id"`
				ConnectionName string `json:"connectionName"`
				Token          string `json:"token"`
			}
			_ = json.Unmarshal([]byte(raw), &ev)
			if r.Status != http.StatusOK && r.Status != http.StatusBadRequest && r.Status != http.StatusPreconditionFailed {
				t.Fatalf("exchange answered %d", r.Status)
			}
			if r.Body["id"] != ev.ID || r.Body["connectionName"] != "sso" {
				t.Fatalf("exchange answer %v does not carry the value's id %q and the bot's connection", r.Body, ev.ID)
			}
			genuine := ev.Token == aliceTok && ev.ConnectionName == "sso" && ev.ID != ""
			if r.Status == http.StatusOK && !genuine {
				t.Fatalf("exchange accepted a value without Alice's genuine token on the bot's connection: %s", value)
			}
			if r.Status == http.StatusBadRequest && !genuine {
				if h.ts.Count("exchange") != exchanges || h.st.Entra.OBOCount("https://graph.microsoft.com") != obos {
					t.Fatalf("a refused exchange reached the token service or OBO: %s", value)
				}
			}
		case "signin/verifyState":
			var sv struct {
				State any `json:"state"`
			}
			_ = json.Unmarshal([]byte(raw), &sv)
			switch r.Status {
			case http.StatusOK:
				if sv.State != "CancelledByUser" {
					t.Fatalf("verifyState signed Carol in with %s", value)
				}
			case http.StatusBadRequest, http.StatusNotFound:
			default:
				t.Fatalf("verifyState answered %d", r.Status)
			}
		case "signin/failure":
			if r.Status != http.StatusOK {
				t.Fatalf("failure answered %d", r.Status)
			}
			replies := c.Replies()
			if len(replies) == 0 {
				t.Fatalf("signin/failure told the user nothing")
			}
			// The reply must not depend on Teams' message: the same code without it gets the
			// same words.
			var fv map[string]any
			if json.Unmarshal([]byte(raw), &fv) == nil && fv != nil {
				if _, has := fv["message"]; has {
					delete(fv, "message")
					c2 := h.client(user)
					if r2, err := c2.Invoke(ctx, name, fv); err != nil || r2.Status != http.StatusOK || texts(c2.Replies()) != texts(replies) {
						t.Fatalf("the reply depends on Teams' message:\n%s\nwithout it:\n%s", texts(replies), texts(c2.Replies()))
					}
				}
			}
		}
	})
}
