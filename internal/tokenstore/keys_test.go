package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// users makes n distinct users.
func users(n int) []tokenstore.UserKey {
	out := make([]tokenstore.UserKey, n)
	for i := range out {
		out[i] = tokenstore.UserKey{TenantID: alice.TenantID, ObjectID: fmt.Sprintf("cccccccc-0000-0000-0000-%012d", i)}
	}
	return out
}

func TestKeyRotationHasNoFailedReadsAndReSealsOnWrite(t *testing.T) {
	e := newEnv(t)
	writer := e.store()
	reader := e.store(noL1) // every read goes to Table Storage and opens the row
	us := users(12)
	for i, u := range us {
		if err := writer.PutToken(ctx, u, jira, sampleToken(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}

	var reads, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				reads.Add(1)
				if _, err := reader.GetToken(ctx, us[i%len(us)], jira); err != nil {
					failed.Add(1)
					t.Errorf("read during rotation: %v", err)
				}
			}
		}()
	}

	// Rotate: a new secret version; once the keyrings' cache expires, writes use it.
	v2 := e.kv.SetSecret(e.keyName, newKeyValue())
	e.kclock.Advance(2 * time.Minute)
	for _, u := range us {
		if _, err := writer.UpdateToken(ctx, u, jira, func(cur *tokenstore.Token) (*tokenstore.Token, error) {
			n := *cur
			n.AccessToken += "-rotated"
			return &n, nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || reads.Load() < 50 {
		t.Fatalf("%d of %d reads failed during rotation", failed.Load(), reads.Load())
	}
	for _, u := range us {
		if r := e.onlyTokenRow(u); r["KeyVer"] != v2 {
			t.Errorf("row of %s still sealed under %v after its write, want %s", u, r["KeyVer"], v2)
		}
	}
	// The old version can now be disabled without anyone noticing.
	e.kv.SetEnabled(e.keyName, e.v1, false)
	e.kclock.Advance(2 * time.Minute)
	for i, u := range us {
		got, err := reader.GetToken(ctx, u, jira)
		if err != nil || got.AccessToken != fmt.Sprintf("access-%d-rotated", i) {
			t.Fatalf("after disabling v1: %q, %v", got.AccessToken, err)
		}
	}
}

func TestRemovedKeyVersionMeansSignInNeeded(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	if err := s.PutToken(ctx, alice, jira, sampleToken("a")); err != nil {
		t.Fatal(err)
	}
	e.kv.SetSecret(e.keyName, newKeyValue())
	e.kv.SetEnabled(e.keyName, e.v1, false)
	e.kclock.Advance(2 * time.Minute)

	s2 := e.store()
	_, err := s2.GetToken(ctx, alice, jira)
	if !errors.Is(err, tokenstore.ErrSignInNeeded) || !errors.Is(err, keyring.ErrKeyUnavailable) {
		t.Fatalf("GetToken err = %v, want ErrSignInNeeded (key unavailable)", err)
	}
	_, err = s2.FreshToken(ctx, alice, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		t.Fatal("refresh called with an unopenable token")
		return cur, nil
	})
	if !errors.Is(err, tokenstore.ErrSignInNeeded) {
		t.Fatalf("FreshToken err = %v, want ErrSignInNeeded", err)
	}
	// Signing in again writes under the new version and works.
	if err := s2.PutToken(ctx, alice, jira, sampleToken("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store().GetToken(ctx, alice, jira); err != nil || got.AccessToken != "access-again" {
		t.Fatalf("after new sign-in: %q, %v", got.AccessToken, err)
	}

	// The whole secret deleted: writes cannot seal, reads cannot open; both say sign-in needed.
	e.kv.DeleteSecret(e.keyName)
	e.kclock.Advance(2 * time.Minute)
	if err := s2.PutToken(ctx, bob, jira, sampleToken("b")); !errors.Is(err, tokenstore.ErrSignInNeeded) {
		t.Fatalf("write with no key: err = %v", err)
	}
}

func TestKeyVaultDownCachedKeysKeepWorking(t *testing.T) {
	e := newEnv(t)
	s := e.store(noL1)
	if err := s.PutToken(ctx, alice, jira, sampleToken("a")); err != nil {
		t.Fatal(err)
	}
	e.kv.SetDown(true)
	e.kclock.Advance(10 * time.Minute) // well past the key cache TTL
	if got, err := s.GetToken(ctx, alice, jira); err != nil || got.AccessToken != "access-a" {
		t.Fatalf("read with vault down: %q, %v", got.AccessToken, err)
	}
	if err := s.PutToken(ctx, bob, jira, sampleToken("b")); err != nil {
		t.Fatalf("write with vault down: %v", err)
	}
	if _, err := s.GetToken(ctx, bob, jira); err != nil {
		t.Fatal(err)
	}
	// A new instance has nothing cached: it cannot open anything, and says so as an outage,
	// not as "sign in again".
	cold := e.store(noL1)
	_, err := cold.GetToken(ctx, alice, jira)
	if !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokenstore.ErrSignInNeeded) {
		t.Fatalf("cold instance with vault down: err = %v, want ErrUnavailable", err)
	}
	e.kv.SetDown(false)
	// It asks the vault again only after a short back-off (keyring's retryAfterFailure), and
	// then reads.
	if _, err := cold.GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("cold instance within the back-off: err = %v, want ErrUnavailable", err)
	}
	e.kclock.Advance(11 * time.Second)
	if _, err := cold.GetToken(ctx, alice, jira); err != nil {
		t.Fatalf("after the vault is back: %v", err)
	}
}

func TestAzuriteStoppedMidRunIsUnavailableThenRowsReadBack(t *testing.T) {
	az := azurite.Start(t) // its own server: this test stops it
	e := newEnvOn(t, az)
	s := e.store(noL1)
	us := users(5)
	for i, u := range us {
		if err := s.PutToken(ctx, u, jira, sampleToken(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	state, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian", PKCEVerifier: "v"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	if err := az.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	checks := map[string]error{}
	_, checks["GetToken"] = s.GetToken(ctx, us[0], jira)
	checks["PutToken"] = s.PutToken(ctx, us[1], jira, sampleToken("new"))
	_, checks["UpdateToken"] = s.UpdateToken(ctx, us[2], jira, func(c *tokenstore.Token) (*tokenstore.Token, error) { return c, nil })
	_, checks["ConsumeSignIn"] = s.ConsumeSignIn(ctx, state)
	_, checks["ForgetUser"] = s.ForgetUser(ctx, us[3])
	checks["ClaimExchange"] = s.ClaimExchange(ctx, us[4], "x", time.Minute)
	for op, err := range checks {
		if !errors.Is(err, tokenstore.ErrUnavailable) {
			t.Errorf("%s with Azurite stopped: err = %v, want ErrUnavailable", op, err)
		}
	}
	t.Logf("six operations failed in %s", time.Since(start))

	if err := az.Restart(); err != nil {
		t.Fatal(err)
	}
	fresh := e.store()
	for i, u := range us {
		for _, st := range []*tokenstore.Store{s, fresh} {
			got, err := st.GetToken(ctx, u, jira)
			if err != nil || got.AccessToken != fmt.Sprintf("access-%d", i) {
				t.Fatalf("after restart, user %d: %q, %v", i, got.AccessToken, err)
			}
		}
	}
	if st, err := fresh.ConsumeSignIn(ctx, state); err != nil || st.PKCEVerifier != "v" {
		t.Fatalf("sign-in state after restart: %+v, %v", st, err)
	}
}
