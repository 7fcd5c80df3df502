package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/app"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

func (h *harness) token() string {
	return "Bearer " + h.st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID})
}

func TestHTTPEdge(t *testing.T) {
	h := newHarness(t, nil)
	valid := h.token()
	act, _ := json.Marshal(h.st.Channel.Activity("message", "help"))
	cases := []struct {
		name   string
		method string
		ctype  string
		body   []byte
		want   int
	}{
		{"wrong method", http.MethodGet, "application/json", nil, http.StatusMethodNotAllowed},
		{"wrong content type", http.MethodPost, "text/plain", act, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", act, http.StatusUnsupportedMediaType},
		{"body over the limit", http.MethodPost, "application/json", bytes.Repeat([]byte(" "), 300<<10), http.StatusRequestEntityTooLarge},
		{"malformed JSON", http.MethodPost, "application/json", []byte(`{"type":"message",`), http.StatusBadRequest},
		{"activity without conversation", http.MethodPost, "application/json", []byte(`{"type":"message","serviceUrl":"https://x","channelId":"msteams"}`), http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.st.Channel.Reset()
			req, _ := http.NewRequest(tc.method, h.srv.URL+"/api/messages", bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			req.Header.Set("Authorization", valid)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Fatalf("405 without Allow: POST")
			}
			time.Sleep(10 * time.Millisecond)
			if n := len(h.st.Channel.Recorded()); n != 0 {
				t.Fatalf("bot replied %d times to a refused request", n)
			}
		})
	}
}

func TestChannelRetryIsProcessedOnce(t *testing.T) {
	h := newHarness(t, nil)
	act := h.st.Channel.Activity("message", "help")
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp := h.post(t, h.token(), act); resp.StatusCode != http.StatusOK {
				t.Errorf("re-delivery got %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond)
	if n := len(h.st.Channel.Recorded()); n != 1 {
		t.Fatalf("the same activity id was answered %d times, want once", n)
	}
}

func TestInvokesAndWelcome(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel

	inv := ch.Activity("invoke", "")
	inv["name"] = "composeExtension/unknownThing"
	body, _ := json.Marshal(inv)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", h.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("unknown invoke answered %d, want 501", resp.StatusCode)
	}

	up := ch.Activity("conversationUpdate", "")
	up["membersAdded"] = []map[string]any{{"id": "29:user-1"}, {"id": "28:bot"}}
	if resp := h.post(t, h.token(), up); resp.StatusCode != http.StatusOK {
		t.Fatalf("conversationUpdate got %d", resp.StatusCode)
	}
	userOnly := ch.Activity("conversationUpdate", "")
	userOnly["membersAdded"] = []map[string]any{{"id": "29:user-2"}}
	h.post(t, h.token(), userOnly)
	time.Sleep(50 * time.Millisecond)
	rec := ch.Recorded()
	if len(rec) != 1 || !strings.Contains(rec[0].Text(), "help") {
		t.Fatalf("want exactly one welcome (when the bot is added), got %d: %+v", len(rec), rec)
	}

	ch.Reset()
	h.post(t, h.token(), ch.Activity("message", "what is the weather"))
	rec, _ = ch.WaitFor(ctxTimeout(t, 3*time.Second), func(r []channel.Recorded) bool { return len(r) > 0 })
	if len(rec) != 1 || !strings.Contains(rec[0].Text(), "help") {
		t.Fatalf("an unknown command should point at help, got %+v", rec)
	}
}

// The bot's own token comes from the managed identity's federated assertion and is reused.
func TestBotTokenIsReusedUntilNearExpiry(t *testing.T) {
	h := newHarness(t, nil)
	for range 10 {
		if resp := h.post(t, h.token(), h.st.Channel.Activity("message", "help")); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d; log:\n%s", resp.StatusCode, h.logs.String())
		}
	}
	if n := h.st.Entra.Count("client_credentials"); n != 1 {
		t.Fatalf("client-credentials requests = %d for 10 replies, want 1", n)
	}
	if n := h.st.Entra.Count("managed_identity"); n != 1 {
		t.Fatalf("managed-identity requests = %d, want 1", n)
	}
}

// Without the managed identity's federated credential, the app cannot get a token at all.
func TestWrongManagedIdentityCannotAuthenticate(t *testing.T) {
	h := newHarness(t, map[string]string{"BOT_MANAGED_IDENTITY_CLIENT_ID": "e1e10000-0000-4000-8000-0000000000ff"})
	resp := h.post(t, h.token(), h.st.Channel.Activity("message", "help"))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 (no bot token)", resp.StatusCode)
	}
	if len(h.st.Channel.Recorded()) != 0 {
		t.Fatal("a reply reached the connector without a bot token")
	}
}

func TestConnectorFaults(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel

	ch.FailNext(channel.Fault{Status: 429, RetryAfter: "1"}, channel.Fault{Status: 503})
	start := time.Now()
	if resp := h.post(t, h.token(), ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d after retryable faults; log:\n%s", resp.StatusCode, h.logs.String())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("Retry-After: 1 not honoured (took %v)", waited)
	}
	if n := len(ch.Recorded()); n != 1 {
		t.Fatalf("want one delivered reply after retries, got %d", n)
	}

	ch.Reset()
	ch.FailNext(channel.Fault{Status: 403, Code: "BotNotInConversationRoster"})
	h.post(t, h.token(), ch.Activity("message", "help"))
	if !strings.Contains(h.logs.String(), "not installed for this user") {
		t.Fatalf("403 BotNotInConversationRoster not reported clearly; log:\n%s", h.logs.String())
	}
}

// Anonymous mode (local development) processes unauthenticated activities and sends no token.
func TestAnonymousModeLocal(t *testing.T) {
	ch := channel.New()
	t.Cleanup(ch.Close)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs logcheck.Buffer
	logcheck.Watch(t, logs.String)
	logcheck.WatchReplies(t, ch.Sent)
	a, err := app.New(context.Background(), cfg, app.Options{HTTPClient: stack.New().HTTPClient(), Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	h := &harness{srv: srv, logs: &logs}
	if resp := h.post(t, "", ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec, err := ch.WaitFor(ctxTimeout(t, 3*time.Second), func(r []channel.Recorded) bool { return len(r) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if rec[0].Authorization != "" {
		t.Fatal("anonymous mode sent a bearer token")
	}
}

// An activity whose serviceUrl is anything but a plain https origin and path is refused with
// 400 before anything runs, even when the channel token's serviceurl claim carries the same
// URL: no reply, the URL is not trusted, the activity id is not remembered, and the log says
// why without repeating the URL.
func TestServiceURLShapesAreRefusedBeforeAnythingRuns(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel
	host := strings.TrimPrefix(strings.TrimSuffix(ch.ServiceURL, "/amer/"), "https://")
	cases := []struct {
		name, serviceURL, reason string
	}{
		{"query", ch.ServiceURL + "?region=amer", "serviceUrl carries a query"},
		{"empty query", ch.ServiceURL + "?", "serviceUrl carries a query"},
		{"fragment", ch.ServiceURL + "#amer", "serviceUrl carries a fragment"},
		{"userinfo", "https://bot:hunter2@" + host + "/amer/", "serviceUrl carries userinfo"},
		{"http outside local", "http://" + host + "/amer/", "serviceUrl is not https"},
		{"http to loopback outside local mode", "http://localhost:" + strings.Split(host, ":")[1] + "/amer/", "serviceUrl is not https"},
		{"empty host", "https:///amer/", "serviceUrl has no host"},
		{"opaque", "https:" + host + "/amer/", "serviceUrl is not a hierarchical URL"},
		{"empty port", "https://" + strings.Split(host, ":")[0] + ":/amer/", "serviceUrl has an empty port"},
		{"dot segments", ch.ServiceURL + "../emea/", "serviceUrl contains dot segments"},
		{"percent-encoding", ch.ServiceURL + "%2e%2e/", "serviceUrl carries percent-encoded characters"},
		{"whitespace", ch.ServiceURL + " ", "serviceUrl contains whitespace"},
		{"backslash", ch.ServiceURL + `x\y/`, "serviceUrl contains a backslash"},
		{"another scheme", "ftp://" + host + "/amer/", "serviceUrl is not an https URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch.Reset()
			act := ch.Activity("message", "help")
			act["serviceUrl"] = tc.serviceURL
			tok := "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, ServiceURL: tc.serviceURL})
			if resp := h.post(t, tok, act); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; log:\n%s", resp.StatusCode, h.logs.String())
			}
			if h.app.Connector.Trusted(tc.serviceURL) {
				t.Fatal("the refused serviceUrl became trusted")
			}
			logs := h.logs.String()
			if !strings.Contains(logs, tc.reason) {
				t.Fatalf("the log does not say %q:\n%s", tc.reason, logs)
			}
			if strings.Contains(logs, "hunter2") {
				t.Fatal("the serviceUrl's userinfo was written to the log")
			}
			// Nothing was remembered: the same activity id with the channel's real serviceUrl is
			// answered.
			act["serviceUrl"] = ch.ServiceURL
			if resp := h.post(t, h.token(), act); resp.StatusCode != http.StatusOK {
				t.Fatalf("redelivery with the real serviceUrl got %d", resp.StatusCode)
			}
			rec, err := ch.WaitFor(ctxTimeout(t, 5*time.Second), func(r []channel.Recorded) bool { return len(r) > 0 })
			if err != nil {
				t.Fatal(err)
			}
			if len(rec) != 1 || rec[0].ActivityID != act["id"] {
				t.Fatalf("want exactly the one reply to the good delivery, got %+v", rec)
			}
		})
	}

	t.Run("trailing slash differences are accepted", func(t *testing.T) {
		ch.Reset()
		act := ch.Activity("message", "help")
		act["serviceUrl"] = strings.TrimSuffix(ch.ServiceURL, "/")
		if resp := h.post(t, h.token(), act); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200; log:\n%s", resp.StatusCode, h.logs.String())
		}
	})
}

// In local anonymous mode the Playground's http://localhost connector is reachable, and http to
// any other host is still refused.
func TestAnonymousModeServiceURLOnlyLoopbackHTTP(t *testing.T) {
	var mu sync.Mutex
	var got []string
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"1"}`))
	}))
	t.Cleanup(local.Close)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs logcheck.Buffer
	logcheck.Watch(t, logs.String)
	a, err := app.New(context.Background(), cfg, app.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	h := &harness{srv: srv, logs: &logs}
	ch := channel.New()
	t.Cleanup(ch.Close)

	act := ch.Activity("message", "help")
	act["serviceUrl"] = "http://onbehalf.example/_connector"
	if resp := h.post(t, "", act); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("http to a remote host: status %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "only https is allowed there") {
		t.Fatalf("no clear reason in the log:\n%s", logs.String())
	}

	act = ch.Activity("message", "help")
	act["serviceUrl"] = strings.Replace(local.URL, "127.0.0.1", "localhost", 1) + "/_connector"
	if resp := h.post(t, "", act); resp.StatusCode != http.StatusOK {
		t.Fatalf("loopback http: status %d, want 200; log:\n%s", resp.StatusCode, logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.HasPrefix(got[0], "POST /_connector/v3/conversations/") {
		t.Fatalf("the reply did not reach the local connector: %v", got)
	}
}

// The channel rotates its signing key right after the bot fetched its keys: the first activity
// signed with the new key is answered, not refused.
func TestRotatedChannelKeyIsAcceptedAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel
	if resp := h.post(t, h.token(), ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d before the rotation; log:\n%s", resp.StatusCode, h.logs.String())
	}
	ch.Rotate()
	ch.Reset()
	act := ch.Activity("message", "help")
	if resp := h.post(t, h.token(), act); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first activity signed with the rotated-in key got %d; log:\n%s", resp.StatusCode, h.logs.String())
	}
	rec, err := ch.WaitFor(ctxTimeout(t, 5*time.Second), func(r []channel.Recorded) bool { return len(r) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if rec[0].ActivityID != act["id"] {
		t.Fatalf("reply %+v is not to the activity", rec[0])
	}
}
