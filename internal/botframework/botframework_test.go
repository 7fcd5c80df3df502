package botframework_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

const appID = "b07a0000-0000-4000-8000-000000000002"

// A flood of tokens with unknown kids causes at most one refetch per interval, and a key
// rotated in at the issuer is picked up by that refetch.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), Now: clock, MinRefetchInterval: time.Minute}
	auth := &botframework.Authenticator{AppID: appID, Channel: keys, Now: clock}
	act := &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}
	ctx := context.Background()

	if _, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID}), act); err != nil {
		t.Fatal(err)
	}
	base := ch.KeyFetches()
	forged := ch.AddUnpublishedKey()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID, Key: forged}), act)
			if !errors.Is(err, botframework.ErrUnauthorized) {
				t.Errorf("forged kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := ch.KeyFetches() - base; got != 0 {
		// The keys were fetched moments ago: unknown kids inside the interval fetch nothing.
		t.Fatalf("%d refetches inside the rate-limit interval, want 0", got)
	}

	// After the interval, an unknown kid triggers exactly one refetch, which finds a key the
	// issuer has rotated in meanwhile.
	now = now.Add(2 * time.Minute)
	forged.Published = true
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := auth.Authenticate(ctx, "Bearer "+ch.Mint(channel.TokenOptions{Audience: appID, Key: forged, Expiry: now.Add(time.Hour), NotBefore: now}), act); err != nil {
				t.Errorf("rotated-in key refused: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := ch.KeyFetches() - base; got != 1 {
		t.Fatalf("%d refetches for 20 concurrent unknown-kid tokens, want 1", got)
	}
}

// The connector sends nothing (and no token) to a serviceUrl that did not arrive in an
// authenticated activity.
func TestConnectorRefusesUntrustedServiceURL(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	c := &botframework.Connector{HTTPClient: testenv.SharedCA().Client()}
	ref := botframework.ConversationReference{ServiceURL: ch.ServiceURL, Conversation: botframework.ConversationAccount{ID: "a:1"}}
	_, err := c.Send(context.Background(), ref, &botframework.Activity{Text: "hi"})
	if !errors.Is(err, botframework.ErrUntrustedServiceURL) {
		t.Fatalf("want ErrUntrustedServiceURL, got %v", err)
	}
	if len(ch.Recorded()) != 0 {
		t.Fatal("something reached the untrusted serviceUrl")
	}
	c.Trust(ch.ServiceURL + "/") // trailing slash differences do not matter
	if _, err := c.Send(context.Background(), ref, &botframework.Activity{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
}

func TestConnectorGivesUpAfterBoundedRetries(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	var waits []time.Duration
	c := &botframework.Connector{HTTPClient: testenv.SharedCA().Client(), MaxRetries: 3, MaxBackoff: 2 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	c.Trust(ch.ServiceURL)
	ch.FailNext(channel.Fault{Status: 503}, channel.Fault{Status: 429, RetryAfter: "30"}, channel.Fault{Status: 502}, channel.Fault{Status: 500})
	ref := botframework.ConversationReference{ServiceURL: ch.ServiceURL, Conversation: botframework.ConversationAccount{ID: "a:1"}}
	_, err := c.Send(context.Background(), ref, &botframework.Activity{Text: "hi"})
	var apiErr *botframework.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Fatalf("want the last 500 after 3 retries, got %v", err)
	}
	if len(waits) != 3 || waits[1] != 2*time.Second {
		t.Fatalf("waits %v: want 3 waits, Retry-After capped at MaxBackoff", waits)
	}
}
