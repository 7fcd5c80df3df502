package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/app"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/testenv"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// fakeClock is the one clock the handler instances and the Atlassian stand-in share, so a
// test can step past an access token's expiry without waiting for it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// atlEnv is the handler (one or more instances sharing one token store) with the channel,
// Entra, Azurite and the Atlassian stand-in, configured only through ordinary settings.
type atlEnv struct {
	clk   *fakeClock
	st    *stack.Stack
	ch    *channel.Server // the stack's channel, or an unauthenticated one in anonymous mode
	anon  bool
	atl   *standin.Server
	apps  []*app.App
	srvs  []*httptest.Server
	logs  *logcheck.Buffer
	pub   string
	world standin.World
	table *countingTransport // Table Storage round trips of every instance
	az    *azurite.Server    // the token store's Table Storage
	// settings are the handler's settings beyond the stack's (for a handler process).
	settings map[string]string

	mu       sync.Mutex
	inflight map[string]bool // ids of activities being posted
}

// chatUser is a Teams user: an Entra identity with a personal conversation with the bot.
type chatUser struct {
	name, fromID, aad, conv string
}

func newChatUser(name string) chatUser {
	return chatUser{name: name, fromID: "29:" + name, aad: uuid.NewString(), conv: "a:conv-" + name + "-" + uuid.NewString()[:8]}
}

func (u chatUser) key() tokenstore.UserKey {
	return tokenstore.UserKey{TenantID: stack.TenantID, ObjectID: u.aad}
}

func newAtlEnv(t testing.TB, instances int) *atlEnv { return newAtlEnvMode(t, instances, false) }

// newAtlEnvMode with anonymous=true runs the handler as make dev does: BOT_ALLOW_ANONYMOUS,
// no bot identity, activities without tokens or Entra ids (the Agents Playground).
func newAtlEnvMode(t testing.TB, instances int, anonymous bool) *atlEnv {
	t.Helper()
	return newAtlEnvWith(t, instances, anonymous, nil, nil)
}

// newAtlEnvWith is newAtlEnvMode with extra settings, and a wrapper around each instance's
// outbound transport (nil: none).
func newAtlEnvWith(t testing.TB, instances int, anonymous bool, extra map[string]string, wrap func(i int, rt http.RoundTripper) http.RoundTripper) *atlEnv {
	t.Helper()
	// The log check is registered first, so it runs last: after every server has stopped.
	logs := &logcheck.Buffer{}
	logcheck.Watch(t, logs.String)
	az := azurite.Start(t)
	st := stack.New()
	t.Cleanup(st.Close)
	t.Setenv("IDENTITY_ENDPOINT", st.Entra.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", st.Entra.IdentityHeader)

	e := &atlEnv{clk: &fakeClock{t: time.Now()}, st: st, ch: st.Channel, anon: anonymous, logs: logs, world: standin.DefaultWorld(), inflight: map[string]bool{}, az: az}
	logcheck.WatchReplies(t, func() []map[string]any { return e.ch.Sent() }) // e.ch: the anonymous channel, if any
	for range instances {
		e.srvs = append(e.srvs, httptest.NewUnstartedServer(nil))
	}
	// Every instance sits behind the same public URL in a deployment; here the first one's.
	e.pub = "http://" + e.srvs[0].Listener.Addr().String()
	e.atl = standin.Start(standin.Options{RedirectURIs: []string{e.pub + "/api/oauth/callback"}, Now: e.clk.Now})
	t.Cleanup(e.atl.Close)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(testenv.SharedCA().PEM())
	pool.AppendCertsFromPEM(e.atl.CertificatePEM())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64,
	}}
	e.table = &countingTransport{base: hc.Transport, host: hostOf(az.ConnectionString())}
	hc.Transport = e.table
	settings := map[string]string{
		"TOKENSTORE_CONNECTION_STRING": az.ConnectionString(),
		"TOKENSTORE_DEV_KEY":           devKey(),
		"BOT_PUBLIC_URL":               e.pub,
		"ATLASSIAN_CLIENT_ID":          e.atl.ClientID(),
		"ATLASSIAN_CLIENT_SECRET":      e.atl.ClientSecret(),
		"ATLASSIAN_AUTH_URL":           e.atl.URL,
		"ATLASSIAN_API_URL":            e.atl.URL,
	}
	// A generic OAuth 2.0 connector, played by the same stand-in, goes through the same flow.
	settings["OAUTH2_CONNECTORS"] = `[{"name":"acme","displayName":"Acme API","authURL":"` + e.atl.URL + `/authorize","tokenURL":"` + e.atl.URL +
		`/oauth/token","apiBaseURL":"` + e.atl.URL + `","scopes":["read:me","offline_access"],"clientID":"` + e.atl.ClientID() +
		`","clientSecretName":"acme-secret","authParams":{"audience":"api.atlassian.com","prompt":"consent"}}]`
	settings["OAUTH2_DEV_SECRETS"] = `{"acme-secret":"` + e.atl.ClientSecret() + `"}`
	for k, v := range extra {
		settings[k] = v
	}
	e.settings = settings
	getenv := st.Getenv(settings)
	if anonymous {
		e.ch = channel.New()
		t.Cleanup(e.ch.Close)
		settings["BOT_ALLOW_ANONYMOUS"] = "true"
		getenv = func(k string) string { return settings[k] }
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	for i, srv := range e.srvs {
		ihc := hc
		if wrap != nil {
			ihc = &http.Client{Timeout: hc.Timeout, Transport: wrap(i, hc.Transport)}
		}
		a, err := app.New(context.Background(), cfg, app.Options{HTTPClient: ihc, Log: slog.New(slog.NewJSONHandler(e.logs, nil)), Now: e.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = a.Handler
		srv.Start()
		t.Cleanup(srv.Close)
		e.apps = append(e.apps, a)
	}
	return e
}

// send posts an activity from u to instance i with a valid channel token and returns what the
// bot sent in reply to it, plus proactive messages to u's conversation sent meanwhile.
func (e *atlEnv) send(t *testing.T, i int, u chatUser, act map[string]any) (int, []channel.Recorded) {
	t.Helper()
	id, _ := act["id"].(string) // set: the channel sends that activity again
	if id == "" {
		id = uuid.NewString()
	}
	act["id"] = id
	act["serviceUrl"] = e.ch.ServiceURL
	act["channelId"] = "msteams"
	act["from"] = map[string]any{"id": u.fromID, "name": u.name, "aadObjectId": u.aad}
	act["recipient"] = map[string]any{"id": "28:bot", "name": "onbehalf"}
	act["conversation"] = map[string]any{"id": u.conv, "conversationType": "personal", "tenantId": stack.TenantID}
	if e.anon {
		// The Playground: no verified identity at all.
		act["from"] = map[string]any{"id": u.fromID, "name": u.name}
		act["conversation"] = map[string]any{"id": u.conv, "conversationType": "personal"}
	}
	body, _ := json.Marshal(act)
	before := len(e.ch.Recorded())
	e.mu.Lock()
	e.inflight[id] = true
	e.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, e.srvs[i].URL+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	now := e.clk.Now()
	if !e.anon {
		req.Header.Set("Authorization", "Bearer "+e.st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID, NotBefore: now.Add(-time.Minute), Expiry: now.Add(time.Hour)}))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Work the handler goes on with after answering (announcements, resumed questions).
	for _, a := range e.apps {
		a.Background.Wait(context.Background())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.inflight, id)
	var out []channel.Recorded
	for _, r := range e.ch.Recorded()[before:] {
		// Replies to this activity, proactive messages, and answers to questions parked
		// earlier in u's conversation — never replies to other turns still running.
		if r.ConversationID == u.conv && (r.ActivityID == id || !e.inflight[r.ActivityID]) {
			out = append(out, r)
		}
	}
	return resp.StatusCode, out
}

func (e *atlEnv) say(t *testing.T, i int, u chatUser, text string) []channel.Recorded {
	t.Helper()
	status, recs := e.send(t, i, u, map[string]any{"type": "message", "text": text})
	if status != http.StatusOK {
		t.Fatalf("%s %q: status %d; log:\n%s", u.name, text, status, e.logs.String())
	}
	return recs
}

func (e *atlEnv) submit(t *testing.T, u chatUser, command string) []channel.Recorded {
	t.Helper()
	_, recs := e.send(t, 0, u, map[string]any{"type": "message", "value": map[string]any{"command": command}})
	return recs
}

func (e *atlEnv) verifyState(t *testing.T, u chatUser, code string) (int, []channel.Recorded) {
	t.Helper()
	return e.send(t, 0, u, map[string]any{"type": "invoke", "name": "signin/verifyState", "value": map[string]any{"state": code}})
}

func dump(recs []channel.Recorded) string {
	var b strings.Builder
	for _, r := range recs {
		js, _ := json.Marshal(r.Activity)
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String()
}

var startURLRE = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/api/oauth/start\?state=[A-Za-z0-9_-]+`)

func startURL(t *testing.T, recs []channel.Recorded) string {
	t.Helper()
	u := startURLRE.FindString(dump(recs))
	if u == "" {
		t.Fatalf("no sign-in card in:\n%s", dump(recs))
	}
	return u
}

// browser does not follow redirects, so each hop can be checked.
var browser = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authorize follows the card's link as the Atlassian account and returns the callback URL the
// provider sends the browser to.
func (e *atlEnv) authorize(t *testing.T, start, account string) string {
	t.Helper()
	resp, _ := get(t, start)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: status %d", resp.StatusCode)
	}
	cb, err := e.atl.AuthorizeAs(account, resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

var codeRE = regexp.MustCompile(`link ([0-9]{8})`)

// callback loads the callback page and returns its status and one-time code ("" if none).
func callback(t *testing.T, cb string) (int, string) {
	t.Helper()
	resp, body := get(t, cb)
	if resp.StatusCode == http.StatusOK {
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'nonce-") || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("callback page headers: CSP %q, Cache-Control %q", csp, resp.Header.Get("Cache-Control"))
		}
	}
	m := codeRE.FindStringSubmatch(body)
	if m == nil {
		return resp.StatusCode, ""
	}
	logcheck.Issue("link code", m[1])
	return resp.StatusCode, m[1]
}

// link connects u as the Atlassian account: the card, the browser round trip, and the
// confirmation from u's own session (Teams' verifyState, or the typed code).
func (e *atlEnv) link(t *testing.T, u chatUser, account string, typed bool) []channel.Recorded {
	t.Helper()
	status, code := callback(t, e.authorize(t, startURL(t, e.say(t, 0, u, "connect jira")), account))
	if status != http.StatusOK || code == "" {
		t.Fatalf("callback: status %d, no code; log:\n%s", status, e.logs.String())
	}
	var recs []channel.Recorded
	from := len(e.ch.Recorded())
	if typed {
		recs = e.say(t, 0, u, "link "+code)
	} else {
		st, r := e.verifyState(t, u, code)
		if st != http.StatusOK {
			t.Fatalf("verifyState: status %d", st)
		}
		recs = r
	}
	name := map[string]string{standin.Alice: "Alice Example", standin.Bob: "Bob Example"}[account]
	// With a work queue the announcement comes from a worker, a moment later.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(dump(recs), "Connected to Jira as "+name+".") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		recs = nil
		for _, r := range e.ch.Recorded()[from:] {
			if r.ConversationID == u.conv {
				recs = append(recs, r)
			}
		}
	}
	if !strings.Contains(dump(recs), "Connected to Jira as "+name+".") {
		t.Fatalf("no connected message for %s:\n%s", u.name, dump(recs))
	}
	return recs
}

func (e *atlEnv) connected(t *testing.T, u chatUser) bool {
	t.Helper()
	_, err := e.apps[0].Store.GetToken(context.Background(), u.key(), tokenstore.TokenKey{Connector: "atlassian"})
	if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func (e *atlEnv) issue(key string) standin.Issue {
	for _, i := range e.world.Issues {
		if i.Key == key {
			return i
		}
	}
	panic("no issue " + key)
}

func TestAtlassianLinkAskAndAnswerAsTheUser(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	proj1 := e.issue("PROJ-1")

	// The first question without a link asks to connect and waits.
	recs := e.say(t, 0, ada, "jira PROJ-1")
	if !strings.Contains(dump(recs), "application/vnd.microsoft.card.signin") {
		t.Fatalf("want a Teams sign-in card:\n%s", dump(recs))
	}
	if strings.Contains(dump(recs), proj1.Summary) {
		t.Fatal("answered before linking")
	}

	// Ada links as Alice through Teams (verifyState). Alice's grant covers two sites, so the
	// parked question is answered by asking once which site to use.
	recs = e.link(t, ada, standin.Alice, false)
	if !strings.Contains(dump(recs), "jira site "+standin.AcmeSite+" jira PROJ-1") {
		t.Fatalf("the parked question did not come back with a site choice:\n%s", dump(recs))
	}
	recs = e.submit(t, ada, "jira site "+standin.AcmeSite+" jira PROJ-1")
	if d := dump(recs); !strings.Contains(d, "acme.atlassian.net") || !strings.Contains(d, proj1.Summary) {
		t.Fatalf("choosing the site did not answer the question:\n%s", d)
	}
	// Remembered: no second choice.
	if d := dump(e.say(t, 0, ada, "jira PROJ-2")); !strings.Contains(d, e.issue("PROJ-2").Summary) || strings.Contains(d, "several sites") {
		t.Fatalf("site not remembered:\n%s", d)
	}

	// Bo links as Bob by typing the code (outside Teams' window).
	e.link(t, bo, standin.Bob, true)

	t.Run("same question in parallel, different correct answers", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := ada
				if i%2 == 1 {
					u = bo
				}
				d := dump(e.say(t, 0, u, "jira PROJ-1"))
				switch {
				case u == ada && !strings.Contains(d, proj1.Summary):
					t.Errorf("Ada did not get PROJ-1:\n%s", d)
				case u == bo && (strings.Contains(d, proj1.Summary) || !strings.Contains(d, "Jira issue PROJ-1 does not exist, or you do not have permission to see it.")):
					t.Errorf("Bo's answer:\n%s", d)
				}
			}()
		}
		wg.Wait()
	})

	t.Run("Bo never obtains Ada's issues or pages", func(t *testing.T) {
		secrets := []string{proj1.Summary, e.issue("PROJ-2").Summary, "Payment service runbook", "Restart the", "GLX-1"}
		cmds := []string{
			"jira PROJ-1", "jira proj-1", "jira search payment leaks memory", "jira search PROJ-1", "my jira issues",
			"confluence search payment runbook", "confluence page 1001",
			"confluence page https://acme.atlassian.net/wiki/spaces/ENG/pages/1001/Payment+service+runbook",
			"jira site " + standin.GlobexSite + " jira GLX-1", "connections",
		}
		var all strings.Builder
		for _, c := range cmds {
			all.WriteString(dump(e.say(t, 0, bo, c)))
		}
		for _, s := range secrets {
			if strings.Contains(all.String(), s) {
				t.Errorf("Bo saw %q", s)
			}
		}
		if !strings.Contains(all.String(), "Confluence page 1001 does not exist, or you do not have permission to see it.") ||
			!strings.Contains(all.String(), "That is not one of your Atlassian sites.") {
			t.Errorf("refusals not stated plainly:\n%s", all.String())
		}
		// Bob's own work is there.
		if d := dump(e.say(t, 0, bo, "my jira issues")); !strings.Contains(d, "Disk alert on build agents") {
			t.Errorf("Bob's issues missing:\n%s", d)
		}
	})

	t.Run("connections and disconnect", func(t *testing.T) {
		d := dump(e.say(t, 0, ada, "connections"))
		if !strings.Contains(d, "Connected as Alice Example") || !strings.Contains(d, `"command":"disconnect jira"`) {
			t.Fatalf("connections:\n%s", d)
		}
		d = dump(e.submit(t, bo, "disconnect jira"))
		if !strings.Contains(d, "Disconnected Jira and Confluence") || e.connected(t, bo) {
			t.Fatalf("disconnect:\n%s", d)
		}
		if d := dump(e.say(t, 0, bo, "connections")); !strings.Contains(d, "Not connected") || !strings.Contains(d, `"command":"connect jira"`) {
			t.Fatalf("connections after disconnect:\n%s", d)
		}
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); strings.Contains(d, "Disk alert") || startURLRE.FindString(d) == "" {
			t.Fatalf("a disconnected user was answered:\n%s", d)
		}
		if d := dump(e.say(t, 0, ada, "signout jira")); !strings.Contains(d, "forgotten") || e.connected(t, ada) {
			t.Fatalf("signout jira:\n%s", d)
		}
	})

	if strings.Contains(e.logs.String(), "at-") || strings.Contains(e.logs.String(), "rt-") {
		t.Error("a token appears in the log")
	}
}

func TestAtlassianLinkAttacksStoreNothing(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	nothingStored := func(t *testing.T) {
		t.Helper()
		if e.connected(t, ada) || e.connected(t, bo) {
			t.Fatal("a connection was stored")
		}
	}

	t.Run("forged state", func(t *testing.T) {
		for _, u := range []string{"/api/oauth/callback?state=forged&code=abc", "/api/oauth/start?state=forged", "/api/oauth/callback?code=abc"} {
			if st, code := callback(t, e.pub+u); st != http.StatusBadRequest || code != "" {
				t.Errorf("%s: status %d, code %q", u, st, code)
			}
		}
		nothingStored(t)
	})

	t.Run("replayed state", func(t *testing.T) {
		start := startURL(t, e.say(t, 0, ada, "connect jira"))
		// A link scanner's HEAD does not burn the state.
		if resp, err := browser.Head(start); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("HEAD start: %v %v", resp, err)
		}
		cb := e.authorize(t, start, standin.Alice)
		if resp, _ := get(t, start); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("start link used twice: status %d", resp.StatusCode)
		}
		st, code := callback(t, cb)
		if st != http.StatusOK || code == "" {
			t.Fatalf("first callback: %d", st)
		}
		if st, again := callback(t, cb); st != http.StatusBadRequest || again != "" {
			t.Fatalf("replayed callback: status %d, code %q", st, again)
		}
		nothingStored(t)
		// The original, confirmed by its own user, still works exactly once.
		if d := dump(e.say(t, 0, ada, "link "+code)); !strings.Contains(d, "Connected to Jira as Alice Example.") {
			t.Fatalf("confirm:\n%s", d)
		}
		if d := dump(e.say(t, 0, ada, "link "+code)); !strings.Contains(d, "does not match") {
			t.Fatalf("code reused:\n%s", d)
		}
		e.say(t, 0, ada, "disconnect jira")
		nothingStored(t)
	})

	t.Run("expired state", func(t *testing.T) {
		start := startURL(t, e.say(t, 0, ada, "connect jira"))
		resp, _ := get(t, start)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("start: %d", resp.StatusCode)
		}
		e.clk.Advance(oauth2.LinkTTL + time.Minute)
		cb, err := e.atl.AuthorizeAs(standin.Alice, resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if st, code := callback(t, cb); st != http.StatusBadRequest || code != "" {
			t.Fatalf("expired state: status %d, code %q", st, code)
		}
		// An unused card link expires too.
		start = startURL(t, e.say(t, 0, ada, "connect jira"))
		e.clk.Advance(oauth2.LinkTTL + time.Minute)
		if resp, _ := get(t, start); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("expired start link: %d", resp.StatusCode)
		}
		nothingStored(t)
	})

	t.Run("link started by A completed from B's session", func(t *testing.T) {
		// Ada's sign-in link reaches Bo, who signs in to Atlassian as Bob.
		start := startURL(t, e.say(t, 0, ada, "connect jira"))
		st, code := callback(t, e.authorize(t, start, standin.Bob))
		if st != http.StatusOK || code == "" {
			t.Fatalf("callback: %d", st)
		}
		if d := dump(e.say(t, 0, bo, "link "+code)); !strings.Contains(d, "does not match") {
			t.Fatalf("Bo typed the code:\n%s", d)
		}
		if st, recs := e.verifyState(t, bo, code); st != http.StatusNotFound {
			t.Fatalf("Bo's Teams client: status %d", st)
		} else if strings.Contains(dump(recs), "Connected") {
			t.Fatalf("Bo's Teams client linked:\n%s", dump(recs))
		}
		nothingStored(t)
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); strings.Contains(d, "Disk alert") {
			t.Fatal("Bo was answered without linking")
		}
	})

	t.Run("code bound to another PKCE challenge: only the starter's confirmation links", func(t *testing.T) {
		start := startURL(t, e.say(t, 0, ada, "connect jira"))
		resp, _ := get(t, start)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		// An attacker's own authorization (its own challenge), delivered with Ada's state.
		q := loc.Query()
		sum := sha256.Sum256([]byte(oauth2.NewVerifier()))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		loc.RawQuery = q.Encode()
		cb, err := e.atl.AuthorizeAs(standin.Bob, loc.String())
		if err != nil {
			t.Fatal(err)
		}
		// Atlassian Cloud documents no PKCE parameters, so the code is redeemed (the stand-in
		// does not pretend otherwise); what stops the attack is that nothing is stored until
		// the sign-in is confirmed from the chat that started it.
		st, code := callback(t, cb)
		if st != http.StatusOK || code == "" {
			t.Fatalf("callback: status %d, code %q", st, code)
		}
		nothingStored(t)
		if d := dump(e.say(t, 0, bo, "link "+code)); !strings.Contains(d, "does not match") {
			t.Fatalf("Bo typed the code:\n%s", d)
		}
		nothingStored(t)
	})
}

func TestAtlassianTokensRefreshOnceAndFailPlainly(t *testing.T) {
	e := newAtlEnv(t, 2)
	bo := newChatUser("bo")
	e.link(t, bo, standin.Bob, true)
	ops7 := e.issue("OPS-7").Summary
	if d := dump(e.say(t, 1, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
		t.Fatalf("second instance:\n%s", d)
	}
	spent, err := e.apps[0].Store.GetToken(context.Background(), bo.key(), tokenstore.TokenKey{Connector: "atlassian"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("2 instances x 50 turns across an expiry refresh exactly once", func(t *testing.T) {
		e.clk.Advance(61 * time.Minute) // Atlassian access tokens last one hour
		calls := e.atl.TokenCalls()
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if d := dump(e.say(t, i%2, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
					t.Errorf("turn %d:\n%s", i, d)
				}
			}()
		}
		wg.Wait()
		if n := e.atl.Refreshes(standin.Bob); n != 1 {
			t.Errorf("%d refreshes at Atlassian, want exactly 1", n)
		}
		if n := e.atl.TokenCalls() - calls; n != 1 {
			t.Errorf("%d token endpoint calls, want 1 (no invalid_grant)", n)
		}
		if e.atl.Revoked(standin.Bob) {
			t.Error("the token family was revoked")
		}
	})

	t.Run("401 gets one forced refresh", func(t *testing.T) {
		before := e.atl.Refreshes(standin.Bob)
		e.atl.Inject(standin.Fault{Status: http.StatusUnauthorized})
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
			t.Fatalf("after a 401:\n%s", d)
		}
		if n := e.atl.Refreshes(standin.Bob) - before; n != 1 {
			t.Errorf("%d refreshes after a 401, want 1", n)
		}
	})

	t.Run("after a refresh elsewhere, the old pair is not used past its leeway", func(t *testing.T) {
		// Atlassian revokes the spent refresh token and its access token 10 minutes after a
		// refresh; the instance that did not refresh must move to the new pair, not fail.
		before, calls := e.atl.Refreshes(standin.Bob), e.atl.TokenCalls()
		e.clk.Advance(11 * time.Minute)
		for i := range 4 {
			if d := dump(e.say(t, i%2, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
				t.Fatalf("instance %d after the leeway:\n%s", i%2, d)
			}
		}
		if n := e.atl.Refreshes(standin.Bob) - before; n != 0 {
			t.Errorf("%d refreshes, want 0 (the new pair is stored)", n)
		}
		if n := e.atl.TokenCalls() - calls; n != 0 {
			t.Errorf("%d token endpoint calls, want 0", n)
		}
	})

	t.Run("429 and 5xx are retried within a bound, then explained", func(t *testing.T) {
		e.atl.Inject(standin.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"})
		began := time.Now()
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
			t.Fatalf("short Retry-After not honoured:\n%s", d)
		}
		if waited := time.Since(began); waited < 900*time.Millisecond {
			t.Errorf("answered after %s: Retry-After: 1 was not waited for", waited)
		}
		e.atl.Inject(standin.Fault{Status: http.StatusTooManyRequests, RetryAfter: "120"})
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); !strings.Contains(d, "Atlassian is limiting requests right now. Try again in 2m0s.") {
			t.Fatalf("long Retry-After:\n%s", d)
		}
		e.atl.Inject(standin.Fault{Status: http.StatusServiceUnavailable, Times: -1})
		hits := e.atl.FaultHits()
		began = time.Now()
		d := dump(e.say(t, 0, bo, "jira OPS-7"))
		n := e.atl.FaultHits() - hits
		e.atl.Clear()
		if !strings.Contains(d, "Atlassian is not answering right now. Try again in a few minutes.") {
			t.Fatalf("outage:\n%s", d)
		}
		if n != 3 {
			t.Errorf("%d attempts during the outage, want 3", n)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("outage answer took %s", took)
		}
	})

	t.Run("a revoked family asks to reconnect once, with no loop", func(t *testing.T) {
		// Someone replays the spent refresh token after the reuse leeway: Atlassian revokes
		// the whole family, including the access token the bot holds.
		e.clk.Advance(11 * time.Minute)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {e.atl.ClientID()}, "client_secret": {e.atl.ClientSecret()}, "refresh_token": {spent.RefreshToken}}
		resp, err := e.atl.Client().PostForm(e.atl.URL+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !e.atl.Revoked(standin.Bob) {
			t.Fatal("the stand-in did not revoke the family")
		}
		calls := e.atl.TokenCalls()
		d := dump(e.say(t, 0, bo, "jira OPS-7"))
		if !strings.Contains(d, "Your Atlassian connection has expired or was revoked.") || startURLRE.FindString(d) == "" {
			t.Fatalf("first turn after revocation:\n%s", d)
		}
		if e.connected(t, bo) {
			t.Error("the dead link is still stored")
		}
		for i := range 3 {
			d := dump(e.say(t, i%2, bo, "jira OPS-7"))
			if strings.Contains(d, "expired or was revoked") || startURLRE.FindString(d) == "" {
				t.Fatalf("turn %d repeats the notice or does not offer to connect:\n%s", i, d)
			}
		}
		if n := e.atl.TokenCalls() - calls; n != 1 {
			t.Errorf("%d token endpoint calls after revocation, want 1", n)
		}
		// Linking again answers the waiting question.
		if d := dump(e.link(t, bo, standin.Bob, true)); !strings.Contains(d, ops7) {
			t.Fatalf("parked question not answered after reconnecting:\n%s", d)
		}
	})

	// Atlassian answers 401 "scope does not match" when the grant does not cover a request; a
	// fresh token does not change that, and the link itself still works.
	t.Run("a token refused after a forced refresh explains and keeps the link", func(t *testing.T) {
		before := e.atl.Refreshes(standin.Bob)
		e.atl.Inject(standin.Fault{Status: http.StatusUnauthorized, Times: 2})
		d := dump(e.say(t, 0, bo, "jira OPS-7"))
		if !strings.Contains(d, "does not include this product or site") || strings.Contains(d, ops7) {
			t.Fatalf("401 twice:\n%s", d)
		}
		if n := e.atl.Refreshes(standin.Bob) - before; n != 1 {
			t.Errorf("%d refreshes, want exactly 1", n)
		}
		if !e.connected(t, bo) {
			t.Error("a working link was deleted")
		}
		if d := dump(e.say(t, 0, bo, "jira OPS-7")); !strings.Contains(d, ops7) {
			t.Fatalf("the link no longer answers:\n%s", d)
		}
	})
}

// The anonymous edge (make dev ANONYMOUS=1, with the Atlassian settings): in anonymous mode two Playground users link the two
// test accounts and each sees only their own Jira; the link still needs the typed code.
func TestAtlassianSandboxAnonymousUsersAreKeptApart(t *testing.T) {
	e := newAtlEnvMode(t, 1, true)
	u1, u2 := newChatUser("playground-1"), newChatUser("playground-2")
	recs := e.say(t, 0, u1, "connect jira")
	if d := dump(recs); !strings.Contains(d, "Action.OpenUrl") || strings.Contains(d, "card.signin") {
		t.Fatalf("the Playground gets an Adaptive Card with Action.OpenUrl:\n%s", d)
	}
	// A code from u1's sign-in typed by u2 links nothing.
	status, code := callback(t, e.authorize(t, startURL(t, recs), standin.Alice))
	if status != http.StatusOK {
		t.Fatalf("callback %d", status)
	}
	if d := dump(e.say(t, 0, u2, "link "+code)); !strings.Contains(d, "does not match") {
		t.Fatalf("another Playground user confirmed:\n%s", d)
	}
	if d := dump(e.say(t, 0, u1, "link "+code)); !strings.Contains(d, "Connected to Jira as Alice Example.") {
		t.Fatalf("u1 confirm:\n%s", d)
	}
	e.link(t, u2, standin.Bob, true)
	e.submit(t, u1, "jira site "+standin.AcmeSite)

	proj1, ops7 := e.issue("PROJ-1").Summary, e.issue("OPS-7").Summary
	d1, d2 := dump(e.say(t, 0, u1, "my jira issues")), dump(e.say(t, 0, u2, "my jira issues"))
	if !strings.Contains(d1, proj1) || strings.Contains(d1, ops7) || !strings.Contains(d2, ops7) || strings.Contains(d2, proj1) {
		t.Fatalf("users not kept apart:\n%s\n---\n%s", d1, d2)
	}
	if d := dump(e.say(t, 0, u2, "jira PROJ-1")); strings.Contains(d, proj1) {
		t.Fatal("Bob saw PROJ-1")
	}
	// signout all forgets the anonymous user's rows.
	if d := dump(e.say(t, 0, u1, "signout all")); !strings.Contains(d, "forgotten") {
		t.Fatalf("signout all:\n%s", d)
	}
	if d := dump(e.say(t, 0, u1, "jira PROJ-1")); strings.Contains(d, proj1) {
		t.Fatal("answered after signout all")
	}
}

// A generic connector links through the same pages and confirmation, and hands out an
// authorized client per (user, connector) that calls the API as that user.
func TestGenericConnectorLinksAndAuthorizesPerUser(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	for _, c := range []struct {
		u       chatUser
		account string
	}{{ada, standin.Alice}, {bo, standin.Bob}} {
		status, code := callback(t, e.authorize(t, startURL(t, e.say(t, 0, c.u, "connect acme")), c.account))
		if status != http.StatusOK {
			t.Fatalf("callback %d", status)
		}
		st, recs := e.verifyState(t, c.u, code)
		if st != http.StatusOK || !strings.Contains(dump(recs), "Connected to Acme API.") {
			t.Fatalf("confirm: %d\n%s", st, dump(recs))
		}
	}
	d := dump(e.say(t, 0, ada, "connections"))
	if !strings.Contains(d, "Acme API") || !strings.Contains(d, `"command":"disconnect acme"`) || !strings.Contains(d, `"command":"connect jira"`) {
		t.Fatalf("connections:\n%s", d)
	}
	for _, c := range []struct {
		u    chatUser
		want string
	}{{ada, "Alice Example"}, {bo, "Bob Example"}} {
		hc, err := e.apps[0].OAuth.HTTPClient(c.u.key(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(e.atl.URL + "/me")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), c.want) {
			t.Errorf("%s's client got %s", c.u.name, b)
		}
		// The user's token never leaves the connector's API origin.
		if _, err := hc.Get("https://example.com/"); err == nil {
			t.Error("the authorized client called another origin")
		}
	}
	if d := dump(e.say(t, 0, bo, "disconnect acme")); !strings.Contains(d, "Disconnected Acme API") {
		t.Fatalf("disconnect:\n%s", d)
	}
	hc, _ := e.apps[0].OAuth.HTTPClient(bo.key(), "acme")
	if _, err := hc.Get(e.atl.URL + "/me"); !errors.Is(err, oauth2.ErrNotConnected) {
		t.Fatalf("after disconnect: err = %v, want ErrNotConnected", err)
	}
}

// "jira site" without an id: a user with one site gets it chosen, a user with two gets the
// choice card, never a bare "Which site?".
func TestAtlassianJiraSiteWithoutID(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	e.say(t, 0, bo, "connect jira")
	e.link(t, bo, standin.Bob, false)
	if d := dump(e.say(t, 0, bo, "jira site")); !strings.Contains(d, "I will use acme.atlassian.net for you from now on.") || strings.Contains(d, "Which site") {
		t.Fatalf("one site: %s", d)
	}
	e.say(t, 0, ada, "connect jira")
	e.link(t, ada, standin.Alice, false)
	d := dump(e.say(t, 0, ada, "jira site"))
	if !strings.Contains(d, "jira site "+standin.AcmeSite) || !strings.Contains(d, "jira site "+standin.GlobexSite) {
		t.Fatalf("two sites: want the choice card, got %s", d)
	}
}

// A HEAD on the card's link (a link scanner, a browser's prefetch) is refused and burns
// nothing: the user's own click still starts the sign-in.
func TestAtlassianHeadDoesNotBurnTheLink(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada := newChatUser("ada")
	start := startURL(t, e.say(t, 0, ada, "connect jira"))
	req, _ := http.NewRequest(http.MethodHead, start, nil)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
		t.Fatalf("HEAD: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp, _ := get(t, start); resp.StatusCode != http.StatusFound {
		t.Fatalf("the click after a HEAD: %d, want the redirect to Atlassian", resp.StatusCode)
	}
}
