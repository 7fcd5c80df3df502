package entra_test

import (
	"context"
	"errors"
	"testing"

	"github.com/onbehalf/onbehalf/internal/entra"
	tenv "github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

var user = tenv.User{ObjectID: "a11ce000-0000-4000-8000-00000000000a", Name: "Alice", UPN: "alice@contoso.example"}

func newClient(t *testing.T) (*stack.Stack, *entra.Client) {
	t.Helper()
	st := stack.New()
	t.Cleanup(st.Close)
	st.Entra.AddUser(user)
	t.Setenv("IDENTITY_ENDPOINT", st.Entra.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", st.Entra.IdentityHeader)
	c, err := entra.NewClient(entra.ClientConfig{AuthorityHost: st.Entra.URL, TenantID: stack.TenantID, ClientID: stack.BotAppID,
		ManagedIdentityClientID: st.MIClientID, HTTPClient: st.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

var graphScopes = []string{"https://graph.microsoft.com/User.Read"}

// What MSAL Go's own OBO cache does, checked before deciding not to rely on it
// (PROTOCOL.md, "MSAL Go"): it reuses a result only for the very same assertion, so a later
// turn — which has a new assertion from the token service — always goes back to Entra. The bot
// therefore keeps OBO results itself, sealed in the token store per user and resource.
// (OBOCount counts user tokens issued for a resource, whether by OBO or by MSAL redeeming the
// refresh token it cached for that assertion.)
func TestMSALOnBehalfOfCache(t *testing.T) {
	st, c := newClient(t)
	ctx := context.Background()
	a1 := st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: stack.BotAppID})
	a2 := st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: stack.BotAppID})

	t1, err := c.OnBehalfOf(ctx, a1, graphScopes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OnBehalfOf(ctx, a1, graphScopes); err != nil {
		t.Fatal(err)
	}
	if n := st.Entra.OBOCount("https://graph.microsoft.com"); n != 1 {
		t.Fatalf("same assertion twice: %d OBO requests, want 1 (MSAL's cache)", n)
	}
	t2, err := c.OnBehalfOf(ctx, a2, graphScopes)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Entra.OBOCount("https://graph.microsoft.com"); n != 2 || t1.AccessToken == t2.AccessToken {
		t.Fatalf("a new assertion for the same user: %d OBO requests, want 2 — MSAL does not reuse across assertions", n)
	}

	// MSAL's external cache (WithCache) does not hold OBO results at all:
	// internal/testenv/entra/msalcache_test.go pins that.
}

func TestOnBehalfOfErrorsNeedingTheUser(t *testing.T) {
	st, c := newClient(t)
	ctx := context.Background()

	st.Entra.RequireConsent(user.ObjectID, "https://graph.microsoft.com", true)
	_, err := c.OnBehalfOf(ctx, st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: stack.BotAppID}), graphScopes)
	var oe *entra.OBOError
	if !errors.Is(err, entra.ErrConsentRequired) || !errors.As(err, &oe) || oe.AADSTS != "AADSTS65001" {
		t.Fatalf("consent: got %v", err)
	}
	st.Entra.RequireConsent(user.ObjectID, "https://graph.microsoft.com", false)

	st.Entra.ClaimsChallenge(user.ObjectID, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`)
	_, err = c.OnBehalfOf(ctx, st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: stack.BotAppID}), graphScopes)
	if !errors.Is(err, entra.ErrInteractionRequired) || !errors.As(err, &oe) || oe.Claims == "" {
		t.Fatalf("claims challenge: got %v", err)
	}
	st.Entra.ClaimsChallenge(user.ObjectID, "")

	// An assertion for another app is rejected by Entra.
	_, err = c.OnBehalfOf(ctx, st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: "c0ffee00-0000-4000-8000-00000000beef"}), graphScopes)
	if !errors.Is(err, entra.ErrAssertionRejected) {
		t.Fatalf("foreign assertion: got %v", err)
	}
}

// MSAL's OBO cache is dropped every 500 calls, so it cannot grow without bound: the same
// assertion is served from memory until then, and asks Entra again after.
func TestOBOCacheIsBounded(t *testing.T) {
	st, c := newClient(t)
	a := st.Entra.MintSSOToken(user, tenv.SSOOptions{AppID: stack.BotAppID})
	for i := range 500 {
		if _, err := c.OnBehalfOf(context.Background(), a, graphScopes); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := st.Entra.OBOCount("https://graph.microsoft.com"); n != 1 {
		t.Fatalf("%d token requests for 500 calls with one assertion, want 1", n)
	}
	if _, err := c.OnBehalfOf(context.Background(), a, graphScopes); err != nil {
		t.Fatal(err)
	}
	if n := st.Entra.OBOCount("https://graph.microsoft.com"); n != 2 {
		t.Fatalf("the 501st call was still served from the old cache (%d token requests)", n)
	}
}
