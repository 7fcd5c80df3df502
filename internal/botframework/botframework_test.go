package botframework_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

const appID = "b07a0000-0000-4000-8000-000000000002"

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

// Update, delete and typing reach the connector at the paths the REST API defines.
func TestConnectorUpdateDeleteTyping(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	c := &botframework.Connector{HTTPClient: testenv.SharedCA().Client()}
	c.Trust(ch.ServiceURL)
	ref := botframework.ConversationReference{ServiceURL: ch.ServiceURL, ChannelID: "msteams",
		Conversation: botframework.ConversationAccount{ID: "a:conv 1"}, Bot: botframework.ChannelAccount{ID: "28:bot"}, User: botframework.ChannelAccount{ID: "29:u"}}
	ctx := context.Background()
	if err := c.Update(ctx, ref, "act-1", &botframework.Activity{Text: "edited"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, ref, "act-2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Typing(ctx, ref); err != nil {
		t.Fatal(err)
	}
	rec := ch.Recorded()
	if len(rec) != 3 {
		t.Fatalf("recorded %d requests, want 3", len(rec))
	}
	if rec[0].Method != "PUT" || rec[0].ActivityID != "act-1" || rec[0].Text() != "edited" || rec[0].ConversationID != "a:conv 1" {
		t.Errorf("update: %+v", rec[0])
	}
	if rec[0].Activity["from"].(map[string]any)["id"] != "28:bot" || rec[0].Activity["recipient"].(map[string]any)["id"] != "29:u" {
		t.Errorf("update is not addressed from the bot to the user: %+v", rec[0].Activity)
	}
	if rec[1].Method != "DELETE" || rec[1].ActivityID != "act-2" {
		t.Errorf("delete: %+v", rec[1])
	}
	if rec[2].Method != "POST" || rec[2].Type() != "typing" || rec[2].ActivityID != "" {
		t.Errorf("typing: %+v", rec[2])
	}
}

// A token verified once is remembered, but every activity still gets the time, endorsement
// and serviceUrl checks.
func TestVerifiedTokenCacheKeepsPerActivityChecks(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), Now: clock}
	auth := &botframework.Authenticator{AppID: appID, Channel: keys, Now: clock}
	ctx := context.Background()
	tok := "Bearer " + ch.Mint(channel.TokenOptions{Audience: appID, Expiry: now.Add(10 * time.Minute), NotBefore: now.Add(-time.Minute)})
	ok := &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}
	if _, err := auth.Authenticate(ctx, tok, ok); err != nil {
		t.Fatal(err)
	}
	for name, act := range map[string]*botframework.Activity{
		"channel the key is not endorsed for": {ChannelID: "directline", ServiceURL: ch.ServiceURL},
		"another serviceUrl":                  {ChannelID: "msteams", ServiceURL: "https://smba.evil.example/amer/"},
	} {
		if _, err := auth.Authenticate(ctx, tok, act); !errors.Is(err, botframework.ErrUnauthorized) {
			t.Errorf("%s: cached token accepted (%v)", name, err)
		}
	}
	if _, err := auth.Authenticate(ctx, tok, ok); err != nil {
		t.Fatalf("the cached token stopped working: %v", err)
	}
	now = now.Add(16 * time.Minute) // past expiry plus the 5-minute skew
	if _, err := auth.Authenticate(ctx, tok, ok); !errors.Is(err, botframework.ErrUnauthorized) {
		t.Fatalf("an expired cached token was accepted (%v)", err)
	}
}

// A transport failure while completing a magic-code sign-in does not put the code in the error
// (which the edge logs).
func TestTokenServiceErrorsDoNotCarryTheCode(t *testing.T) {
	dead := testenv.SharedCA().NewServer(http.NotFoundHandler())
	base := dead.URL
	dead.Close()
	ts := &botframework.TokenService{BaseURL: base, Tokens: staticToken("bot-token"), HTTPClient: testenv.SharedCA().Client()}
	_, err := ts.GetToken(context.Background(), "29:u", "sso", "msteams", "864213")
	if err == nil || strings.Contains(err.Error(), "864213") || strings.Contains(err.Error(), "bot-token") {
		t.Fatalf("error %v", err)
	}
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// While the issuer fails, repeated requests do not each become an attempt to fetch its keys.
func TestFailingIssuerIsNotHammered(t *testing.T) {
	var hits atomic.Int32
	down := testenv.SharedCA().NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	now := time.Now()
	keys := &botframework.KeySet{MetadataURL: down.URL, HTTPClient: testenv.SharedCA().Client(), Now: func() time.Time { return now }}
	for range 20 {
		if _, err := keys.PublicKey(context.Background(), "forged"); err == nil {
			t.Fatal("a key came from a failing issuer")
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests to a failing issuer for 20 lookups, want 1", n)
	}
	now = now.Add(3 * time.Second)
	keys.PublicKey(context.Background(), "forged")
	if n := hits.Load(); n != 2 {
		t.Fatalf("no retry after the retry interval (%d requests)", n)
	}
}

// The token service and endorsements see the base channel of a composite channel id.
func TestBaseChannel(t *testing.T) {
	for in, want := range map[string]string{
		"msteams": "msteams", "msteams:COPILOT": "msteams", "webchat": "webchat", "": "", "msteams:": "msteams",
	} {
		if got := botframework.BaseChannel(in); got != want {
			t.Errorf("BaseChannel(%q) = %q, want %q", in, got, want)
		}
	}
}

// Each documented token service has its redirect URI and Azure Bot location; the default
// api.botframework.com is the global service; any other host is not a known region.
func TestTokenServiceRegions(t *testing.T) {
	cases := []struct{ url, name, redirect, location string }{
		{"https://api.botframework.com", "global", "https://token.botframework.com/.auth/web/redirect", "global"},
		{"https://token.botframework.com/", "global", "https://token.botframework.com/.auth/web/redirect", "global"},
		{"https://europe.token.botframework.com", "europe", "https://europe.token.botframework.com/.auth/web/redirect", "westeurope"},
		{"https://unitedstates.token.botframework.com", "unitedstates", "https://unitedstates.token.botframework.com/.auth/web/redirect", ""},
		{"https://india.token.botframework.com", "india", "https://india.token.botframework.com/.auth/web/redirect", "centralindia"},
		{"https://token.botframework.azure.us", "usgov", "https://token.botframework.azure.us/.auth/web/redirect", ""},
	}
	for _, c := range cases {
		r, known := botframework.RegionOf(c.url)
		if !known || r.Name != c.name || r.RedirectURI != c.redirect || (c.location != "" && (len(r.BotLocations) != 1 || r.BotLocations[0] != c.location)) {
			t.Errorf("RegionOf(%q) = %+v %v", c.url, r, known)
		}
	}
	if r, known := botframework.RegionOf("https://eu.token.botframework.com"); known || r.RedirectURI != "https://eu.token.botframework.com/.auth/web/redirect" {
		t.Errorf("an undocumented host was taken for a region: %+v %v", r, known)
	}
}
