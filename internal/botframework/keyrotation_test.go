package botframework_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// A key the channel publishes right after the keys were fetched is usable for the very first
// activity signed with it: the unknown kid waits for the next fetch instead of being refused.
func TestRotatedKeyIsAcceptedRightAfterAFetch(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client()}
	auth := &botframework.Authenticator{AppID: appID, Channel: keys}
	act := &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}
	ctx := context.Background()
	if _, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID}), act); err != nil {
		t.Fatal(err)
	}
	base := ch.KeyFetches()

	ch.Rotate()
	start := time.Now()
	c, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID}), act)
	if err != nil {
		t.Fatalf("the first activity signed with the rotated-in key was refused: %v", err)
	}
	if c.Issuer != channel.Issuer {
		t.Fatalf("claims %+v", c)
	}
	if took := time.Since(start); took > 7*time.Second {
		t.Fatalf("accepting the new key took %v, want at most the 5 s refetch interval", took)
	}
	if got := ch.KeyFetches() - base; got != 1 {
		t.Fatalf("%d key fetches for the rotation, want 1", got)
	}
}

// Forged kids cannot make the validator hammer the issuer: however many arrive, fetches start
// at most once per MinRefetchInterval and concurrent waiters share one fetch; the forged tokens
// are all refused; a key published meanwhile is found by the next shared fetch.
func TestUnknownKidsFetchAtMostOncePerInterval(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	const interval = 300 * time.Millisecond
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), MinRefetchInterval: interval}
	auth := &botframework.Authenticator{AppID: appID, Channel: keys}
	act := &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}
	ctx := context.Background()
	signer := ch.AddUnpublishedKey()
	randomKid := func() *channel.Key {
		return &channel.Key{ID: "ch-forged-" + uuid.NewString(), Private: signer.Private, Endorsements: []string{"msteams"}}
	}

	// A burst of 50 random kids right after a fetch: one shared fetch, all refused.
	burst := make([]string, 50)
	for i := range burst {
		burst[i] = "Bearer " + ch.Mint(channel.TokenOptions{Audience: appID, Key: randomKid()})
	}
	if err := keys.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	base := ch.KeyFetches()
	var wg sync.WaitGroup
	for _, tok := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := auth.Authenticate(ctx, tok, act)
			if !errors.Is(err, botframework.ErrUnauthorized) {
				t.Errorf("forged kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := ch.KeyFetches() - base; got != 1 {
		t.Fatalf("%d fetches for a burst of 50 unknown kids, want 1 shared fetch", got)
	}

	// A steady stream of random kids for about 1.5 s: no more than one fetch per interval.
	base = ch.KeyFetches()
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID, Key: randomKid()}), act); err == nil {
				t.Error("a forged kid was accepted")
			}
		}()
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if got, most := ch.KeyFetches()-base, int(elapsed/interval)+1; got > most {
		t.Fatalf("%d fetches in %v of forged kids, want at most %d (one per %v)", got, elapsed, most, interval)
	}

	// Twenty concurrent tokens signed with a key the issuer has just published: all accepted,
	// through one fetch.
	fresh := ch.AddUnpublishedKey()
	ch.Publish(fresh)
	signed := make([]string, 20)
	for i := range signed {
		signed[i] = "Bearer " + ch.Mint(channel.TokenOptions{Audience: appID, Key: fresh, Claims: map[string]any{"jti": uuid.NewString()}})
	}
	base = ch.KeyFetches()
	for _, tok := range signed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := auth.Authenticate(ctx, tok, act); err != nil {
				t.Errorf("newly published key refused: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := ch.KeyFetches() - base; got != 1 {
		t.Fatalf("%d fetches for 20 concurrent tokens with one new key, want 1", got)
	}
}

// A caller that gives up while waiting for the next fetch leaves at once, and the fetch it was
// waiting for still serves the others.
func TestUnknownKidWaitEndsWithTheCaller(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), MinRefetchInterval: time.Hour}
	if err := keys.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := keys.PublicKey(ctx, "ch-unknown"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the wait outlived the caller by %v", took)
	}
}

// Keys past MaxAge are refreshed on use without making the caller wait: a key the issuer has
// withdrawn stops working, and while the issuer is unreachable the cached keys keep working.
func TestStaleKeysAreRefreshedWithoutWaiting(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), Now: clock, MaxAge: time.Hour}
	ctx := context.Background()
	kept, withdrawn := ch.Keys[1].ID, ch.Keys[0].ID
	if err := keys.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	ch.Rotate() // withdraws Keys[0]
	now = now.Add(2 * time.Hour)
	base := ch.KeyFetches()
	start := time.Now()
	if _, err := keys.PublicKey(ctx, withdrawn); !errors.Is(err, botframework.ErrUnknownKey) {
		t.Fatalf("a withdrawn key still works after MaxAge: %v", err)
	}
	if _, err := keys.PublicKey(ctx, kept); err != nil {
		t.Fatalf("a published key stopped working: %v", err)
	}
	if got := ch.KeyFetches() - base; got != 1 {
		t.Fatalf("%d fetches to refresh stale keys, want 1", got)
	}

	ch.Close() // the issuer becomes unreachable
	now = now.Add(2 * time.Hour)
	if _, err := keys.PublicKey(ctx, kept); err != nil {
		t.Fatalf("a cached key stopped working while the issuer is unreachable: %v", err)
	}
	if _, err := keys.PublicKey(ctx, kept); err != nil {
		t.Fatalf("second use during the outage: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stale refreshes made callers wait %v", took)
	}
}
