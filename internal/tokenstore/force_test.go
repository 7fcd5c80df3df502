package tokenstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// A forced refresh (after an API refused the stored token) never receives an ordinary read's
// result, which would be the refused token again.
func TestForcedRefreshDoesNotShareAnOrdinaryRead(t *testing.T) {
	e := newEnv(t)
	s := e.store(func(o *tokenstore.Options) { o.L1MaxAge = -1 }) // every read goes to the table
	ctx := context.Background()
	const forever = 100 * 365 * 24 * time.Hour
	for i := range 40 {
		stored := tokenstore.Token{AccessToken: fmt.Sprintf("refused-%d", i), RefreshToken: "rt", Expiry: time.Now().Add(time.Hour)}
		if err := s.PutToken(ctx, alice, jira, stored); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var forced tokenstore.Token
		var ferr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = s.FreshToken(ctx, alice, jira, 2*time.Minute, func(context.Context, tokenstore.Token) (tokenstore.Token, error) {
				return tokenstore.Token{}, fmt.Errorf("an ordinary read must not refresh a valid token")
			})
		}()
		go func() {
			defer wg.Done()
			forced, ferr = s.FreshToken(ctx, alice, jira, forever, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
				return tokenstore.Token{AccessToken: fmt.Sprintf("new-%d", i), RefreshToken: "rt2", Expiry: time.Now().Add(forever + time.Hour)}, nil
			})
		}()
		wg.Wait()
		if ferr != nil || forced.AccessToken == stored.AccessToken {
			t.Fatalf("round %d: forced refresh returned %q (%v), the token an API had refused", i, forced.AccessToken, ferr)
		}
	}
}

// The provider has spent the old refresh token by the time the new one is stored; a storage
// outage at that moment must not lose the new one (reusing the old one would revoke the
// user's grant at Atlassian).
func TestRotatedTokenSurvivesAStorageOutage(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	ctx := context.Background()
	if err := s.PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "old", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	got, err := s.FreshToken(ctx, alice, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		// The provider answers; then Table Storage goes away for a moment.
		e.az.Stop()
		go func() { time.Sleep(500 * time.Millisecond); restarted <- e.az.Restart() }()
		return tokenstore.Token{AccessToken: "new", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}, nil
	})
	if rerr := <-restarted; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil || got.RefreshToken != "rt-2" {
		t.Fatalf("FreshToken: %+v %v", got, err)
	}
	stored, err := e.store().GetToken(ctx, alice, jira) // another instance reads the table
	if err != nil || stored.RefreshToken != "rt-2" {
		t.Fatalf("the rotated refresh token was lost: %+v %v", stored, err)
	}
}

// A turn that gives up while its refresh is under way does not abandon the refresh: the
// provider may already have spent the old refresh token, so the rotated one must be stored.
func TestRefreshCompletesWhenTheCallerGivesUp(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	ctx := context.Background()
	if err := s.PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "old", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	turn, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.FreshToken(turn, alice, jira, time.Minute, func(rctx context.Context, _ tokenstore.Token) (tokenstore.Token, error) {
		time.Sleep(300 * time.Millisecond) // the provider is slow; the turn's deadline passes
		if rctx.Err() != nil {
			return tokenstore.Token{}, rctx.Err()
		}
		return tokenstore.Token{AccessToken: "new", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}, nil
	})
	if err == nil {
		t.Fatal("the turn's deadline should have ended its wait")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		stored, err := e.store().GetToken(ctx, alice, jira)
		if err == nil && stored.RefreshToken == "rt-2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated refresh token was never stored: %+v %v", stored, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
