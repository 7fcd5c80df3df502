package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// pausingTransport holds the first DELETE it sees until release is closed, after telling
// paused; every other request goes straight through.
type pausingTransport struct {
	next    http.RoundTripper
	once    sync.Once
	paused  chan struct{}
	release chan struct{}
}

func (p *pausingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodDelete {
		first := false
		p.once.Do(func() { first = true })
		if first {
			close(p.paused)
			<-p.release
		}
	}
	return p.next.RoundTrip(r)
}

// A parked request has one taker. Instance B has read the row and is about to delete it when
// instance A takes it and parks it again (as a wrong link code does): B's delete, conditioned
// on what it read, fails, so B takes nothing and the row A parked again survives for its
// next taker.
func TestParkedRequestHasOneTakerWhenTheDeleteRaces(t *testing.T) {
	e := newEnv(t)
	a := e.store()
	pt := &pausingTransport{next: http.DefaultTransport, paused: make(chan struct{}), release: make(chan struct{})}
	b := e.store(func(o *tokenstore.Options) { o.HTTPClient = &http.Client{Transport: pt} })
	if _, err := a.Park(ctx, alice, tokenstore.Parked{ID: "req-1", Connector: "race", Payload: []byte("v1")}, time.Hour); err != nil {
		t.Fatal(err)
	}

	type result struct {
		got []tokenstore.Parked
		err error
	}
	bDone := make(chan result, 1)
	go func() {
		got, err := b.TakeParked(ctx, alice, "race")
		bDone <- result{got, err}
	}()
	select {
	case <-pt.paused:
	case <-time.After(10 * time.Second):
		t.Fatal("instance B never tried to delete the row")
	}
	got, err := a.TakeParked(ctx, alice, "race")
	if err != nil || len(got) != 1 || string(got[0].Payload) != "v1" {
		t.Fatalf("instance A took %+v, %v", got, err)
	}
	if _, err := a.Park(ctx, alice, tokenstore.Parked{ID: "req-1", Connector: "race", Payload: []byte("v2")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	close(pt.release)
	r := <-bDone
	if r.err != nil {
		t.Fatalf("instance B: %v", r.err)
	}
	if len(r.got) != 0 {
		t.Fatalf("instance B also took the request A had taken: %q", r.got[0].Payload)
	}
	again, err := e.store().TakeParked(ctx, alice, "race")
	if err != nil || len(again) != 1 || string(again[0].Payload) != "v2" {
		t.Fatalf("the request parked again was lost or changed: %+v, %v", again, err)
	}
}

// Two instances with four takers each race for the same parked requests, round after round:
// every request is handed out exactly once.
func TestParkedRequestsAreTakenOnceByConcurrentInstances(t *testing.T) {
	e := newEnv(t)
	stores := []*tokenstore.Store{e.store(), e.store()}
	for round := range 5 {
		const n = 6
		for i := range n {
			p := tokenstore.Parked{Connector: "race", Payload: []byte(fmt.Sprintf("r%d-%d", round, i))}
			if _, err := stores[0].Park(ctx, alice, p, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		taken := map[string]int{}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := stores[g%2].TakeParked(ctx, alice, "race")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, p := range got {
					taken[string(p.Payload)]++
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if k := fmt.Sprintf("r%d-%d", round, i); taken[k] != 1 {
				t.Fatalf("round %d: request %s taken %d times, want once", round, k, taken[k])
			}
		}
	}
}

// The partition is the user's tenant and object id together: the same object id in another
// tenant is another user, who neither reads nor forgets the first one's rows.
func TestSameObjectIDInAnotherTenantIsAnotherUser(t *testing.T) {
	e := newEnv(t)
	s := e.store(noL1)
	other := tokenstore.UserKey{TenantID: "22222222-2222-2222-2222-222222222222", ObjectID: alice.ObjectID}
	if err := s.PutToken(ctx, alice, jira, sampleToken("alice")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store(noL1).GetToken(ctx, other, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("the other tenant's user read %q (err %v)", got.AccessToken, err)
	}
	if _, err := s.ForgetUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store(noL1).GetToken(ctx, alice, jira); err != nil || got.AccessToken != "access-alice" {
		t.Fatalf("forgetting the other tenant's user removed Alice's token: %q, %v", got.AccessToken, err)
	}
}

// A sign-in state whose owner column no longer names the user it was sealed for does not
// open: the state is spent and nothing of it is returned.
func TestSignInStateWithAnotherOwnerIsRefused(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	state, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian", PKCEVerifier: "verifier-xyz"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rows := e.rows("signin")
	if len(rows) != 1 {
		t.Fatalf("%d sign-in rows, want 1", len(rows))
	}
	row := rows[0]
	if row["User"] != alice.Partition() {
		t.Fatalf("the sign-in row's owner column is %v, want Alice's partition", row["User"])
	}
	row["User"] = bob.Partition()
	e.rawPut("signin", row)

	got, err := s.ConsumeSignIn(ctx, state)
	if !errors.Is(err, tokenstore.ErrTampered) || !errors.Is(err, tokenstore.ErrSignInNeeded) {
		t.Fatalf("err = %v, want ErrSignInNeeded caused by ErrTampered", err)
	}
	if !reflect.DeepEqual(got, tokenstore.SignInState{}) {
		t.Fatalf("returned %+v with the error", got)
	}
	if _, err := s.ConsumeSignIn(ctx, state); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("the refused state can be consumed again: %v", err)
	}
}

// Concurrent callers in one instance that need the same expired token share one refresh flow:
// one read, one lease, one write in all, rather than every caller reading the row and
// contending for the lease.
func TestConcurrentRefreshesInOneInstanceShareOneFlow(t *testing.T) {
	e := newEnv(t)
	ct, withCount := counting()
	s := e.store(withCount, noL1)
	if err := s.PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "old", RefreshToken: "r1", Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int32
	refresh := func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		refreshes.Add(1)
		time.Sleep(300 * time.Millisecond) // the provider's answer; every caller arrives meanwhile
		return tokenstore.Token{AccessToken: "new", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}, nil
	}
	before := ct.n.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := s.FreshToken(ctx, alice, jira, time.Minute, refresh)
			if err != nil || tok.AccessToken != "new" {
				t.Errorf("FreshToken: %q, %v", tok.AccessToken, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	got := ct.n.Load() - before
	t.Logf("20 concurrent callers: %d refresh(es), %d Table round trips", refreshes.Load(), got)
	if refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, want 1", refreshes.Load())
	}
	if got != 3 {
		t.Fatalf("%d Table round trips for 20 concurrent callers, want 3 (read, lease, write)", got)
	}
}
