package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/sandbox"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// fakeBot records what reaches the handler.
type fakeBot struct {
	mu   sync.Mutex
	acts []map[string]any
	auth []string
}

func (b *fakeBot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var act map[string]any
	_ = json.NewDecoder(r.Body).Decode(&act)
	b.mu.Lock()
	b.acts = append(b.acts, act)
	b.auth = append(b.auth, r.Header.Get("Authorization"))
	b.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func start(t *testing.T) (*sandbox.Sandbox, *fakeBot) {
	t.Helper()
	bot := &fakeBot{}
	srv := httptest.NewServer(bot)
	t.Cleanup(srv.Close)
	sb, err := sandbox.Start(sandbox.Options{Addr: "127.0.0.1:0", BotEndpoint: srv.URL + "/api/messages"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	return sb, bot
}

func post(t *testing.T, u string, act map[string]any, authz string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(act)
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func activity(from, aad, serviceURL string) map[string]any {
	return map[string]any{
		"type": "message", "id": "1", "text": "help", "channelId": "msteams", "serviceUrl": serviceURL,
		"from":         map[string]any{"id": from, "aadObjectId": aad},
		"recipient":    map[string]any{"id": "28:" + stack.BotAppID},
		"conversation": map[string]any{"id": "personal-" + from, "conversationType": "personal", "tenantId": "00000000-0000-0000-0000-0000000000001"},
	}
}

// The identity the handler sees comes from the sandbox's table, never from the Playground;
// the activity is signed by the channel for the bot, with the bridge as serviceUrl.
func TestInboundIdentityFromTheSandboxOnly(t *testing.T) {
	sb, bot := start(t)
	bob, _ := sb.UserByPlaygroundID("sandbox-bob")
	alice, _ := sb.UserByPlaygroundID("sandbox-alice")
	// Bob's Playground claims Alice's object id.
	if resp := post(t, sb.URL+"/api/messages", activity("sandbox-bob", alice.Entra.ObjectID, "http://localhost:56151/_connector"), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := bot.acts[0]
	from := got["from"].(map[string]any)
	if from["aadObjectId"] != bob.Entra.ObjectID || got["conversation"].(map[string]any)["tenantId"] != stack.TenantID {
		t.Fatalf("handler saw from %v, conversation %v", from, got["conversation"])
	}
	if got["serviceUrl"] != sb.ConnectorURL()+"/connector/" || !strings.HasPrefix(sb.ConnectorURL(), "https://127.0.0.1:") {
		t.Fatalf("serviceUrl %v", got["serviceUrl"])
	}
	if !strings.HasPrefix(bot.auth[0], "Bearer ey") {
		t.Fatalf("no channel token: %q", bot.auth[0])
	}
}

// Strangers, and Playgrounds that are not on loopback, get nothing through.
func TestInboundRefusals(t *testing.T) {
	sb, bot := start(t)
	for name, act := range map[string]map[string]any{
		"a colleague without a sandbox identity": activity("colleague-carol", "", "http://localhost:56150/_connector"),
		"the Playground's built-in user":         activity("user-id-0", "00000000-0000-0000-0000-0000000000020", "http://localhost:56150/_connector"),
		"a serviceUrl off this machine":          activity("sandbox-alice", "", "http://attacker.example:56150/_connector"),
		"an https serviceUrl":                    activity("sandbox-alice", "", "https://127.0.0.1:56150/_connector"),
	} {
		if resp := post(t, sb.URL+"/api/messages", act, ""); resp.StatusCode/100 == 2 {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
	}
	if len(bot.acts) != 0 {
		t.Fatalf("the handler received %d refused activities", len(bot.acts))
	}
}

// The bot's replies reach the Playground only with the bot's own token.
func TestOutboundNeedsTheBotToken(t *testing.T) {
	sb, _ := start(t)
	var got []string
	pg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+" auth="+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"m1"}`))
	}))
	defer pg.Close()
	if resp := post(t, sb.URL+"/api/messages", activity("sandbox-alice", "", pg.URL+"/_connector"), ""); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	reply := map[string]any{"type": "message", "text": "hi"}
	target := sb.URL + "/connector/v3/conversations/" + url.PathEscape("personal-sandbox-alice") + "/activities"
	for name, authz := range map[string]string{
		"no token":             "",
		"a channel token":      "Bearer " + sb.Stack.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID}),
		"garbage":              "Bearer not-a-token",
		"another app's bearer": "Basic c2FuZGJveDpzZWNyZXQ=",
	} {
		if resp := post(t, target, reply, authz); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
	}
	if len(got) != 0 {
		t.Fatalf("refused replies reached the Playground: %v", got)
	}
}

// A consent page link works once.
func TestConsentLinkIsSingleUse(t *testing.T) {
	sb, _ := start(t)
	resp, err := http.PostForm(sb.URL+"/signin", url.Values{"id": {"made-up"}, "action": {"accept"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown consent id: %d", resp.StatusCode)
	}
}

// Each Playground types as its own sandbox user.
func TestPlaygroundConfigNamesTheUser(t *testing.T) {
	sb, _ := start(t)
	for _, u := range sb.Users {
		cfg := sb.PlaygroundConfig(u)
		if !strings.Contains(cfg, "currentUser:\n  id: "+u.PlaygroundID+"\n") || !strings.Contains(cfg, "aadObjectId: "+u.Entra.ObjectID) {
			t.Errorf("config for %s:\n%s", u.Entra.Name, cfg)
		}
	}
}

// The handler's settings point the assistant at the sandbox model, and the model answers the
// managed identity only: no token, another principal's token or a token for another audience
// is refused, as Azure refuses a caller without the data-plane role.
func TestSandboxModelAnswersTheManagedIdentityOnly(t *testing.T) {
	sb, _ := start(t)
	env := sb.Env()
	if env["AZURE_OPENAI_ENDPOINT"] != sb.Model.URL || env["AZURE_OPENAI_DEPLOYMENT"] != "sandbox-model" {
		t.Fatalf("assistant settings: %q %q", env["AZURE_OPENAI_ENDPOINT"], env["AZURE_OPENAI_DEPLOYMENT"])
	}
	now := time.Now()
	token := func(aud, oid string) string {
		return sb.Stack.Entra.Sign(map[string]any{"iss": sb.Stack.Entra.Issuer(), "aud": aud, "oid": oid,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	ask := func(authz string) int {
		req, _ := http.NewRequest(http.MethodPost, sb.Model.URL+"/openai/deployments/sandbox-model/chat/completions?api-version=2024-10-21",
			strings.NewReader(`{"messages":[{"role":"user","content":"hello"}]}`))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := sb.Model.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, c := range map[string]struct {
		authz string
		want  int
	}{
		"the managed identity":         {"Bearer " + token("https://cognitiveservices.azure.com", sb.Stack.MIPrincipal), http.StatusOK},
		"no token":                     {"", http.StatusUnauthorized},
		"another principal":            {"Bearer " + token("https://cognitiveservices.azure.com", "0000aaaa-0000-4000-8000-00000000beef"), http.StatusForbidden},
		"a token for another audience": {"Bearer " + token("https://graph.microsoft.com", sb.Stack.MIPrincipal), http.StatusUnauthorized},
	} {
		if got := ask(c.authz); got != c.want {
			t.Errorf("%s: status %d, want %d", name, got, c.want)
		}
	}
}
