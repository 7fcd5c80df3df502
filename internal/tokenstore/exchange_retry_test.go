package tokenstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Only successes are remembered under an exchange id: after a failure, Teams' retry with the
// same id (after the user consented) is claimed afresh — by exactly one of several concurrent
// retries — while a succeeded exchange stays claimed.
func TestFailedExchangeIsClaimedAgainByOne(t *testing.T) {
	e := newEnv(t)
	s1, s2 := e.store(), e.store()
	if err := s1.ClaimExchange(ctx, alice, "retry", time.Minute); err != nil {
		t.Fatal(err)
	}
	failed := tokenstore.ExchangeOutcome{State: tokenstore.ExchangeFailed, FailureDetail: "consent", Status: 412}
	if err := s1.CompleteExchange(ctx, alice, "retry", failed); err != nil {
		t.Fatal(err)
	}
	if out, err := s2.ExchangeResult(ctx, alice, "retry"); err != nil || out != failed {
		t.Fatalf("duplicates read %+v %v, want the recorded failure with its status", out, err)
	}
	var mu sync.Mutex
	var wins, dups int
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func(st *tokenstore.Store) {
			defer wg.Done()
			err := st.ClaimExchange(ctx, alice, "retry", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, tokenstore.ErrDuplicate):
				dups++
			default:
				t.Errorf("claim: %v", err)
			}
		}([]*tokenstore.Store{s1, s2}[i%2])
	}
	wg.Wait()
	if wins != 1 || dups != 5 {
		t.Fatalf("retries after a failure: %d claimed, %d duplicates; want 1 and 5", wins, dups)
	}
	if out, err := s1.ExchangeResult(ctx, alice, "retry"); err != nil || out.State != tokenstore.ExchangePending {
		t.Fatalf("the retry's record: %+v %v, want pending", out, err)
	}
	if err := s2.CompleteExchange(ctx, alice, "retry", tokenstore.ExchangeOutcome{State: tokenstore.ExchangeSucceeded, Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := s1.ClaimExchange(ctx, alice, "retry", time.Minute); !errors.Is(err, tokenstore.ErrDuplicate) {
		t.Fatalf("a succeeded exchange was claimed again: %v", err)
	}
}

// Instances' clocks differ by minutes at times: an instance whose clock runs three minutes
// ahead does not take a pending exchange over from the instance that claimed it a moment ago
// (two exchanges of one sign-in would race for the same parked requests).
func TestPendingExchangeIsNotTakenOverByAnInstanceWithAFastClock(t *testing.T) {
	e := newEnv(t)
	s1 := e.store()
	fast := e.store(func(o *tokenstore.Options) { o.Now = func() time.Time { return time.Now().Add(3 * time.Minute) } })
	if err := s1.ClaimExchange(ctx, alice, "skew", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := fast.ClaimExchange(ctx, alice, "skew", 2*time.Minute); !errors.Is(err, tokenstore.ErrDuplicate) {
		t.Fatalf("the fast-clock instance claimed a pending exchange: %v", err)
	}
	// A claim whose holder is long gone (past its lifetime and the clock allowance) is taken over.
	late := e.store(func(o *tokenstore.Options) {
		o.Now = func() time.Time { return time.Now().Add(2*time.Minute + tokenstore.ClockSkew + time.Second) }
	})
	if err := late.ClaimExchange(ctx, alice, "skew", 2*time.Minute); err != nil {
		t.Fatalf("an abandoned claim was not taken over: %v", err)
	}
}

// An instance whose clock runs ahead reads a claim made a moment ago as expired, but must not
// delete it: the instance that claimed it still records its outcome there, for the duplicates.
func TestAFastClockDoesNotDeleteAnotherInstancesPendingClaim(t *testing.T) {
	e := newEnv(t)
	s1 := e.store()
	fast := e.store(func(o *tokenstore.Options) { o.Now = func() time.Time { return time.Now().Add(3 * time.Minute) } })
	if err := s1.ClaimExchange(ctx, alice, "kept", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := fast.ExchangeResult(ctx, alice, "kept"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("the fast clock read %v, want not found (expired by its clock)", err)
	}
	if err := s1.CompleteExchange(ctx, alice, "kept", tokenstore.ExchangeOutcome{State: tokenstore.ExchangeSucceeded, Status: 200}); err != nil {
		t.Fatalf("the claim was deleted under its owner: %v", err)
	}
}
