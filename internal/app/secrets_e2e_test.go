package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// noSecretsIn fails when the log holds a token, code or secret a stand-in issued. The harnesses
// run the same check when a test ends; these tests run it at the point they are about.
func noSecretsIn(t *testing.T, log string) {
	t.Helper()
	for _, s := range logcheck.Find(log) {
		t.Errorf("found in the log: %s", s.Kind)
	}
}

// Channel tokens let whoever reads them post as the channel for about an hour: neither an
// accepted one nor a refused one is written to the request log.
func TestChannelTokensNeverReachTheLog(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel
	accepted := ch.Mint(channel.TokenOptions{Audience: stack.BotAppID})
	if resp := h.post(t, "Bearer "+accepted, ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
		t.Fatalf("a valid token was refused: %d", resp.StatusCode)
	}
	inv := ch.Activity("invoke", "")
	inv["name"] = "composeExtension/unknownThing"
	if resp := h.post(t, "Bearer "+ch.Mint(channel.TokenOptions{Audience: stack.BotAppID}), inv); resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("unknown invoke with a valid token: %d", resp.StatusCode)
	}
	refused := ch.Mint(channel.TokenOptions{Audience: "c0ffee00-0000-4000-8000-00000000beef"})
	if resp := h.post(t, "Bearer "+refused, ch.Activity("message", "help")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token for another bot was accepted: %d", resp.StatusCode)
	}
	if _, err := ch.WaitFor(ctxTimeout(t, 5*time.Second), func(r []channel.Recorded) bool { return len(r) >= 1 }); err != nil {
		t.Fatal(err)
	}
	noSecretsIn(t, h.logs.String())
}

// SSO tokens are the user's identity for an hour: none is logged, whether it is refused, or
// valid but its exchange fails at the token service, or valid but the on-behalf-of call that
// follows fails.
func TestSSOTokensNeverReachTheLog(t *testing.T) {
	h := newSSOHarness(t)
	ctx := ctxTimeout(t, 30*time.Second)
	exchange := func(t *testing.T, opts entra.SSOOptions, owner entra.User) int {
		t.Helper()
		c := h.client(alice)
		c.Say(ctx, "whoami")
		if _, err := c.WaitReplies(ctx, 1); err != nil {
			t.Fatal(err)
		}
		card, err := c.LastOAuthCard()
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Invoke(ctx, "signin/tokenExchange", map[string]any{
			"id": card.ExchangeID, "connectionName": card.ConnectionName, "token": h.st.Entra.MintSSOToken(owner, withApp(opts)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	t.Run("refused: another user's token", func(t *testing.T) {
		if st := exchange(t, entra.SSOOptions{}, bob); st == http.StatusOK {
			t.Fatal("another user's token signed Alice in")
		}
	})
	t.Run("refused: expired", func(t *testing.T) {
		if st := exchange(t, entra.SSOOptions{Expiry: time.Now().Add(-10 * time.Minute)}, alice); st == http.StatusOK {
			t.Fatal("an expired token was accepted")
		}
	})
	t.Run("valid, but the token service cannot exchange it", func(t *testing.T) {
		h.ts.Misconfigure(true)
		defer h.ts.Misconfigure(false)
		if st := exchange(t, entra.SSOOptions{}, alice); st == http.StatusOK {
			t.Fatal("the exchange failed at the token service, yet the invoke succeeded")
		}
	})
	t.Run("valid, but on-behalf-of needs consent", func(t *testing.T) {
		h.st.Entra.RequireConsent(alice.ObjectID, "https://graph.microsoft.com", true)
		defer h.st.Entra.RequireConsent(alice.ObjectID, "https://graph.microsoft.com", false)
		if st := exchange(t, entra.SSOOptions{}, alice); st == http.StatusOK {
			t.Fatal("on-behalf-of needed consent, yet the invoke succeeded")
		}
	})
	if _, err := h.app.Store.GetToken(context.Background(), userKey(alice), tokenstore.TokenKey{Connector: "entra/graph"}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("a failed sign-in stored a token (err %v)", err)
	}
	noSecretsIn(t, h.logs.String())
}
