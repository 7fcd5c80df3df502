package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/internal/testenv/rotatingissuer"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// oauthRefresh is how a connector would refresh: x/oauth2 against the provider's token
// endpoint, mapping invalid_grant to "sign-in needed".
func oauthRefresh(iss *rotatingissuer.Issuer, calls *atomic.Int64) tokenstore.RefreshFunc {
	conf := oauth2.Config{ClientID: iss.ClientID(), Endpoint: oauth2.Endpoint{TokenURL: iss.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	return func(ctx context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		calls.Add(1)
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: cur.RefreshToken}).Token()
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return tokenstore.Token{}, fmt.Errorf("provider refused the refresh token: %w", tokenstore.ErrSignInNeeded)
		}
		if err != nil {
			return tokenstore.Token{}, err
		}
		return tokenstore.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, Expiry: tok.Expiry}, nil
	}
}

// Two instances (separate L1s) × 50 goroutines keep asking for a valid token across several
// expiries of a rotating refresh token whose reuse revokes the whole family. Each expiry must
// cost exactly one refresh, and no caller may see invalid_grant or an invalid token.
func TestRotatingRefreshExactlyOncePerExpiryAcrossInstances(t *testing.T) {
	e := newEnv(t)
	const (
		accessTTL = time.Second
		minValid  = 300 * time.Millisecond
		run       = 3200 * time.Millisecond
	)
	iss := rotatingissuer.Start(t, rotatingissuer.Options{AccessTTL: accessTTL})
	at, rt, exp := iss.Seed()
	stores := []*tokenstore.Store{e.store(), e.store()}
	if err := stores[0].PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: at, RefreshToken: rt, Expiry: exp}); err != nil {
		t.Fatal(err)
	}

	var calls, served, bad atomic.Int64
	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(s *tokenstore.Store) {
			defer wg.Done()
			refresh := oauthRefresh(iss, &calls)
			for time.Now().Before(deadline) {
				tok, err := s.FreshToken(ctx, alice, jira, minValid, refresh)
				if err != nil {
					bad.Add(1)
					t.Errorf("FreshToken: %v", err)
					return
				}
				if !iss.Valid(tok.AccessToken) {
					bad.Add(1)
					t.Errorf("got an access token the provider does not accept")
					return
				}
				served.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}(stores[i%2])
	}
	wg.Wait()

	st := iss.Stats()
	t.Logf("served %d tokens; %d refreshes; refresh calls %d", served.Load(), len(st.Refreshes), calls.Load())
	if st.InvalidGrants != 0 || st.Reuses != 0 || bad.Load() != 0 {
		t.Fatalf("invalid_grant=%d reuses=%d bad=%d, want none", st.InvalidGrants, st.Reuses, bad.Load())
	}
	if int64(len(st.Refreshes)) != calls.Load() {
		t.Fatalf("refresh function called %d times, issuer saw %d refreshes", calls.Load(), len(st.Refreshes))
	}
	// One refresh per expiry: each happened only once the previous token was within minValid
	// of expiring (never early, never twice for one generation), and there were as many as
	// the run needed.
	for i, r := range st.Refreshes {
		if r.PrevRemaining > minValid+50*time.Millisecond {
			t.Errorf("refresh %d came %s before expiry (> %s): a second refresh of one generation", i, r.PrevRemaining, minValid)
		}
	}
	lo := int(run / accessTTL)
	hi := int(run/(accessTTL-minValid)) + 1
	if n := len(st.Refreshes); n < lo || n > hi {
		t.Fatalf("%d refreshes over %s with %s tokens, want %d..%d", n, run, accessTTL, lo, hi)
	}
}

// A refresh the provider refuses deletes the token and tells every waiting caller to sign in.
func TestRefreshRefusedMeansSignInNeeded(t *testing.T) {
	e := newEnv(t)
	iss := rotatingissuer.Start(t, rotatingissuer.Options{AccessTTL: time.Second})
	_, rt, _ := iss.Seed()
	s := e.store()
	// Stored already expired, with a refresh token the provider will not honour (used once).
	var calls atomic.Int64
	if _, err := oauthRefresh(iss, &calls)(ctx, tokenstore.Token{RefreshToken: rt}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "old", RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.FreshToken(ctx, alice, jira, time.Minute, oauthRefresh(iss, &calls))
	if !errors.Is(err, tokenstore.ErrSignInNeeded) {
		t.Fatalf("err = %v, want ErrSignInNeeded", err)
	}
	if _, err := e.store().GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("dead token kept: err = %v", err)
	}
	// A transient failure keeps the token and releases the lease for the next caller.
	if err := s.PutToken(ctx, bob, jira, tokenstore.Token{AccessToken: "x", RefreshToken: "r", Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("provider timed out")
	_, err = s.FreshToken(ctx, bob, jira, time.Minute, func(context.Context, tokenstore.Token) (tokenstore.Token, error) { return tokenstore.Token{}, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	got, err := e.store().FreshToken(ctx, bob, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		return tokenstore.Token{AccessToken: "y", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}, nil
	})
	if err != nil || got.AccessToken != "y" {
		t.Fatalf("next caller after a failed refresh: %+v, %v (lease not released?)", got, err)
	}
}
