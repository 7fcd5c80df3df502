package tokenstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// The expiry that counts is the sealed one: pushing the clear-text Exp forward does not keep a
// row alive.
func TestClearTextExpiryCannotExtendARow(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := e.store(noL1, func(o *tokenstore.Options) { o.Now = c.Now; o.TokenTTL = time.Hour })
	if err := s.PutToken(ctx, alice, jira, sampleToken("a")); err != nil {
		t.Fatal(err)
	}
	r := e.onlyTokenRow(alice)
	r["Exp"] = time.Now().Add(10 * 365 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.0000000Z")
	e.rawPut("users", r)
	c.Advance(2 * time.Hour)
	if _, err := s.GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestPurgeExpiredRemovesAbandonedRows(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := e.store(func(o *tokenstore.Options) { o.Now = c.Now })
	if _, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimExchange(ctx, alice, "x", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, alice, jira, sampleToken("kept")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("nothing expired yet: purged %d, %v", n, err)
	}
	c.Advance(time.Hour)
	n, err := s.PurgeExpired(ctx)
	if err != nil || n != 3 { // sign-in state, its index, exchange record
		t.Fatalf("purged %d, %v; want 3", n, err)
	}
	if _, err := s.GetToken(ctx, alice, jira); err != nil {
		t.Fatalf("live token purged: %v", err)
	}
}

// The L1 is bounded in age: another instance's write becomes visible once the entry ages out.
func TestL1EntriesAgeOut(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	a := e.store(func(o *tokenstore.Options) { o.Now = c.Now; o.L1MaxAge = 10 * time.Second })
	b := e.store(func(o *tokenstore.Options) { o.Now = c.Now })
	if err := a.PutToken(ctx, alice, jira, sampleToken("one")); err != nil {
		t.Fatal(err)
	}
	if err := b.PutToken(ctx, alice, jira, sampleToken("two")); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.GetToken(ctx, alice, jira); got.AccessToken != "access-one" {
		t.Fatalf("within max age a served %q from the table, want its L1 entry", got.AccessToken)
	}
	c.Advance(11 * time.Second)
	if got, err := a.GetToken(ctx, alice, jira); err != nil || got.AccessToken != "access-two" {
		t.Fatalf("after max age: %q, %v", got.AccessToken, err)
	}
}

// A lease left by an instance that died mid-refresh delays others only until it lapses.
func TestAbandonedRefreshLeaseLapses(t *testing.T) {
	e := newEnv(t)
	s := e.store(func(o *tokenstore.Options) { o.RefreshLease = 300 * time.Millisecond })
	if err := s.PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	r := e.onlyTokenRow(alice)
	leaseUntil := time.Now().Add(300 * time.Millisecond)
	r["LeaseUntil"] = leaseUntil.UTC().Format("2006-01-02T15:04:05.0000000Z")
	r["LeaseUntil@odata.type"] = "Edm.DateTime"
	r["LeaseOwner"] = "crashed-instance"
	e.rawPut("users", r)

	var calls atomic.Int64
	var calledAt time.Time
	got, err := e.store().FreshToken(ctx, alice, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		calls.Add(1)
		calledAt = time.Now()
		return tokenstore.Token{AccessToken: "b", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}, nil
	})
	if err != nil || got.AccessToken != "b" || calls.Load() != 1 {
		t.Fatalf("got %q, %v, %d refreshes", got.AccessToken, err, calls.Load())
	}
	// Measured against the lease itself, not the call's start, so a slow machine cannot
	// make the wait look short.
	if early := leaseUntil.Sub(calledAt); early > 0 {
		t.Fatalf("refreshed %s before another instance's lease ended", early)
	}
	// A caller whose context ends while waiting gets its context error, not a token.
	if err := s.PutToken(ctx, bob, jira, tokenstore.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	rb := e.onlyTokenRow(bob)
	rb["LeaseUntil"] = time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.0000000Z")
	rb["LeaseUntil@odata.type"] = "Edm.DateTime"
	rb["LeaseOwner"] = "busy-instance"
	e.rawPut("users", rb)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.store().FreshToken(short, bob, jira, time.Minute, func(context.Context, tokenstore.Token) (tokenstore.Token, error) {
		t.Error("refreshed under someone else's live lease")
		return tokenstore.Token{}, nil
	}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}
