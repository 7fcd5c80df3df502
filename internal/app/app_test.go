package app_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/app"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

type harness struct {
	st   *stack.Stack
	app  *app.App
	srv  *httptest.Server
	logs *logcheck.Buffer
}

// newHarness runs the handler in-process against the stand-ins, configured only through
// its ordinary settings.
func newHarness(t *testing.T, extra map[string]string) *harness {
	t.Helper()
	// The log check is registered first, so it runs last: after every server has stopped.
	logs := &logcheck.Buffer{}
	logcheck.Watch(t, logs.String)
	st := stack.New()
	t.Cleanup(st.Close)
	logcheck.WatchReplies(t, st.Channel.Sent)
	// azidentity reads the App Service managed-identity variables from the process environment.
	t.Setenv("IDENTITY_ENDPOINT", st.Entra.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", st.Entra.IdentityHeader)
	cfg, err := config.Load(st.Getenv(extra))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{HTTPClient: st.HTTPClient(), Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	return &harness{st: st, app: a, srv: srv, logs: logs}
}

func (h *harness) post(t *testing.T, authz string, act any) *http.Response {
	t.Helper()
	body, _ := json.Marshal(act)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// devKey is a fresh token-store key for TOKENSTORE_DEV_KEY, recorded so no log may show it.
func devKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	k := base64.StdEncoding.EncodeToString(key)
	logcheck.Issue("token-store key", k)
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestInboundAuthentication(t *testing.T) {
	h := newHarness(t, nil)
	ch := h.st.Channel
	now := time.Now()
	valid := ch.Mint(channel.TokenOptions{Audience: stack.BotAppID})
	parts := strings.Split(valid, ".")
	payload := map[string]any{"iss": channel.Issuer, "aud": stack.BotAppID, "serviceurl": ch.ServiceURL, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
	payloadJSON, _ := json.Marshal(payload)

	algNone := b64([]byte(`{"alg":"none","typ":"JWT","kid":"`+ch.Keys[0].ID+`"}`)) + "." + b64(payloadJSON) + "."
	pubDER, _ := x509.MarshalPKIXPublicKey(&ch.Keys[0].Private.PublicKey)
	hsInput := b64([]byte(`{"alg":"HS256","typ":"JWT","kid":"`+ch.Keys[0].ID+`"}`)) + "." + b64(payloadJSON)
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + b64(mac.Sum(nil))
	tampered := map[string]any{}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &tampered)
	tampered["aud"] = "c0ffee00-0000-4000-8000-00000000beef"
	tj, _ := json.Marshal(tampered)
	tamperedTok := parts[0] + "." + b64(tj) + "." + parts[2]
	unknown := ch.AddUnpublishedKey()
	// Forged tokens are as much a secret as real ones: the log check at the end knows them.
	logcheck.Issue("forged channel token (alg none)", algNone)
	logcheck.Issue("forged channel token (HS256)", hs256)
	logcheck.Issue("tampered channel token", tamperedTok)

	cases := []struct {
		name  string
		authz string
	}{
		{"no header", ""},
		{"not Bearer", "Basic " + b64([]byte("bot:password"))},
		{"malformed JWT", "Bearer not.a.jwt"},
		{"alg none", "Bearer " + algNone},
		{"HS256 signed with the public key", "Bearer " + hs256},
		{"wrong issuer", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Issuer: "https://api.botframework.evil"})},
		{"wrong audience", "Bearer " + ch.Mint(channel.TokenOptions{Audience: "https://api.botframework.com"})},
		{"expired beyond skew", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Expiry: now.Add(-6 * time.Minute), NotBefore: now.Add(-time.Hour)})},
		{"not yet valid", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, NotBefore: now.Add(6 * time.Minute), Expiry: now.Add(time.Hour)})},
		{"unknown kid", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Key: unknown})},
		{"key not endorsed for the channel", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Key: ch.Keys[1]})},
		{"serviceurl mismatch", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, ServiceURL: "https://smba.evil.example/amer/"})},
		{"no serviceurl claim", "Bearer " + ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Claims: map[string]any{"serviceurl": nil}})},
		{"token for another bot", "Bearer " + ch.Mint(channel.TokenOptions{Audience: "c0ffee00-0000-4000-8000-00000000beef"})},
		{"tampered payload", "Bearer " + tamperedTok},
		{"Entra token from another tenant", "Bearer " + h.st.Entra.Sign(map[string]any{
			"iss": "https://sts.windows.net/99999999-0000-4000-8000-000000000000/", "aud": stack.BotAppID, "azp": "x",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix()})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch.Reset()
			act := ch.Activity("message", "help")
			resp := h.post(t, tc.authz, act)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
			if n := len(ch.Recorded()); n != 0 {
				t.Fatalf("the bot sent %d activities for an unauthenticated request", n)
			}
		})
	}

	logs := h.logs.String()
	for _, tok := range []string{parts[1], parts[2], hs256, algNone} {
		if strings.Contains(logs, tok) {
			t.Fatal("a token (or part of one) was written to the log")
		}
	}
	if !strings.Contains(logs, `"reason":"unauthorized: signing key is not endorsed for channel \"msteams\""`) {
		t.Errorf("the log does not say why a token was refused:\n%s", logs)
	}

	t.Run("valid token gets a reply carrying the bot's token", func(t *testing.T) {
		ch.Reset()
		act := ch.Activity("message", "help")
		resp := h.post(t, "Bearer "+valid, act)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200; log:\n%s", resp.StatusCode, h.logs.String())
		}
		rec, err := ch.WaitFor(ctxTimeout(t, 5*time.Second), func(r []channel.Recorded) bool { return len(r) >= 1 })
		if err != nil {
			t.Fatal(err)
		}
		r := rec[0]
		if r.Method != http.MethodPost || r.ActivityID != act["id"] || !strings.Contains(r.Text(), "help") {
			t.Fatalf("unexpected reply %+v", r)
		}
		// The connector stand-in verified this token (signature, audience, appid) before recording.
		if !strings.HasPrefix(r.Authorization, "Bearer ") {
			t.Fatal("reply carries no bearer token")
		}
	})

	t.Run("within clock skew is accepted", func(t *testing.T) {
		ch.Reset()
		tok := ch.Mint(channel.TokenOptions{Audience: stack.BotAppID, Expiry: now.Add(-2 * time.Minute), NotBefore: now.Add(-time.Hour)})
		if resp := h.post(t, "Bearer "+tok, ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})

	t.Run("the bot's own app-only Entra token is accepted", func(t *testing.T) {
		tok := h.st.Entra.Sign(map[string]any{
			"iss": h.st.Entra.Issuer(), "aud": stack.BotAppID, "azp": stack.BotAppID, "tid": stack.TenantID, "idtyp": "app",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()})
		if resp := h.post(t, "Bearer "+tok, ch.Activity("message", "help")); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200; log:\n%s", resp.StatusCode, h.logs.String())
		}
	})

	// Entra tokens anyone in the tenant can hold must not pass as the channel's: a user's real
	// v2 Teams SSO token (aud = the bot's app id) and another app's client-credentials token.
	for name, claims := range map[string]map[string]any{
		"a user's v2 SSO token": {"aud": stack.BotAppID, "azp": "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "scp": "access_as_user",
			"oid": "a11ce000-0000-4000-8000-00000000000a", "ver": "2.0"},
		"another app's app-only token":  {"aud": stack.BotAppID, "azp": "c0ffee00-0000-4000-8000-00000000beef", "idtyp": "app"},
		"the bot's own delegated token": {"aud": stack.BotAppID, "azp": stack.BotAppID, "scp": "access_as_user"},
	} {
		t.Run("refused: "+name, func(t *testing.T) {
			ch.Reset()
			claims["iss"], claims["tid"] = h.st.Entra.Issuer(), stack.TenantID
			claims["exp"], claims["nbf"] = now.Add(time.Hour).Unix(), now.Add(-time.Minute).Unix()
			act := ch.Activity("message", "help")
			act["serviceUrl"] = "https://attacker.example/" // where the bot's token would go
			if resp := h.post(t, "Bearer "+h.st.Entra.Sign(claims), act); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if h.app.Connector.Trusted("https://attacker.example/") {
				t.Fatal("the attacker's serviceUrl became trusted")
			}
		})
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
