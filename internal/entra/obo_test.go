package entra_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

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

// recorder is an external MSAL cache that records what MSAL exports to it.
type recorder struct {
	mu      sync.Mutex
	exports [][]byte
}

func (r *recorder) Replace(context.Context, cache.Unmarshaler, cache.ReplaceHints) error { return nil }
func (r *recorder) Export(_ context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	b, err := m.Marshal()
	r.mu.Lock()
	r.exports = append(r.exports, b)
	r.mu.Unlock()
	return err
}

// What MSAL Go's own OBO cache does, checked before deciding not to rely on it
// (PROTOCOL.md, "MSAL Go"): it reuses a result only for the very same assertion, so a later
// turn — which has a new assertion from the token service — always goes back to Entra. The bot
// therefore keeps OBO results itself, sealed in the token store per user and resource.
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

	// With an external cache, OBO results are exported (in clear) — another reason to keep them
	// in the sealed token store rather than hand MSAL's serialized cache to storage.
	rec := &recorder{}
	cred := confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
		mi, err := entra.ManagedIdentityAssertion(st.MIClientID, "", st.HTTPClient())
		if err != nil {
			return "", err
		}
		return mi(ctx)
	})
	cca, err := confidential.New(st.Entra.URL+"/"+stack.TenantID, stack.BotAppID, cred,
		confidential.WithHTTPClient(st.HTTPClient()), confidential.WithInstanceDiscovery(false), confidential.WithCache(rec))
	if err != nil {
		t.Fatal(err)
	}
	res, err := cca.AcquireTokenOnBehalfOf(ctx, a2, graphScopes)
	if err != nil {
		t.Fatal(err)
	}
	exported := false
	for _, b := range rec.exports {
		exported = exported || strings.Contains(string(b), res.AccessToken)
	}
	t.Logf("OBO result exported to an external MSAL cache: %v (%d exports)", exported, len(rec.exports))
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
