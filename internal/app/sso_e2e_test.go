package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/app"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
	"github.com/onbehalf/onbehalf/internal/testenv/tokenservice"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

var (
	alice = entra.User{ObjectID: "a11ce000-0000-4000-8000-00000000000a", Name: "Alice Example", UPN: "alice@contoso.example"}
	bob   = entra.User{ObjectID: "b0b00000-0000-4000-8000-00000000000b", Name: "Bob Example", UPN: "bob@contoso.example"}
)

type ssoHarness struct {
	*harness
	cfg   *config.Config
	ts    *tokenservice.Server
	graph *graphuser.Server
	table *countingTransport
}

// countingTransport counts requests to one host (Table Storage round trips) and can make
// that host unreachable (down).
type countingTransport struct {
	base http.RoundTripper
	host string
	mu   sync.Mutex
	n    int
	down bool
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == c.host {
		c.mu.Lock()
		c.n++
		down := c.down
		c.mu.Unlock()
		if down {
			return nil, errors.New("connection refused (storage outage)")
		}
	}
	return c.base.RoundTrip(r)
}

func (c *countingTransport) setDown(down bool) { c.mu.Lock(); c.down = down; c.mu.Unlock() }

func (c *countingTransport) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// newSSOHarness runs the handler with a real Azurite token store against the Entra, channel,
// token-service and Graph stand-ins; Alice and Bob are users of the tenant.
func newSSOHarness(t testing.TB, extra ...map[string]string) *ssoHarness {
	t.Helper()
	// The log check is registered first, so it runs last: after every server has stopped.
	logs := &logcheck.Buffer{}
	logcheck.Watch(t, logs.String)
	st := stack.New()
	t.Cleanup(st.Close)
	logcheck.WatchReplies(t, st.Channel.Sent)
	az := azurite.Start(t)
	sso := st.StartSSO("sso")
	t.Cleanup(sso.Close)
	ts, g := sso.TokenService, sso.Graph
	for _, u := range []entra.User{alice, bob} {
		st.Entra.AddUser(u)
		first := strings.Fields(u.Name)[0]
		g.AddUser(u.ObjectID, graphuser.UserData{
			DisplayName: u.Name, Mail: u.UPN, UPN: u.UPN, JobTitle: first + "'s job",
			Messages: []graphuser.Message{
				{ID: "m1", Subject: "Quarterly report for " + first, From: "cfo@contoso.example", BodyPreview: "Numbers only " + first + " may see", WebLink: "https://outlook.example/" + first, Received: time.Now().Add(-time.Hour)},
				{ID: "m2", Subject: "Lunch", From: "friend@contoso.example", BodyPreview: "Pizza?", Received: time.Now()},
			},
			Files: []graphuser.DriveItem{{ID: "f1", Name: first + "-plan.docx", WebURL: "https://files.example/" + first, LastModified: time.Now(), Size: 1000}},
		})
	}
	setIdentityEnv(t, st)
	settings := sso.Env()
	settings["TOKENSTORE_CONNECTION_STRING"] = az.ConnectionString()
	settings["TOKENSTORE_DEV_KEY"] = devKey()
	for _, e := range extra {
		for k, v := range e {
			settings[k] = v
		}
	}
	cfg, err := config.Load(st.Getenv(settings))
	if err != nil {
		t.Fatal(err)
	}
	client := st.HTTPClient()
	table := &countingTransport{base: client.Transport, host: hostOf(az.ConnectionString())}
	client.Transport = table
	a, err := app.New(context.Background(), cfg, app.Options{HTTPClient: client, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	return &ssoHarness{harness: &harness{st: st, app: a, srv: srv, logs: logs}, cfg: cfg, ts: ts, graph: g, table: table}
}

func setIdentityEnv(t testing.TB, st *stack.Stack) {
	t.Setenv("IDENTITY_ENDPOINT", st.Entra.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", st.Entra.IdentityHeader)
}

func hostOf(connStr string) string {
	for _, part := range strings.Split(connStr, ";") {
		if v, ok := strings.CutPrefix(part, "TableEndpoint="); ok {
			v = strings.TrimPrefix(strings.TrimPrefix(v, "http://"), "https://")
			return strings.SplitN(v, "/", 2)[0]
		}
	}
	return ""
}

func (h *ssoHarness) client(u entra.User) *teamsclient.Client {
	return teamsclient.New(h.srv.URL+"/api/messages", h.st.Channel, h.st.Entra, u, stack.BotAppID)
}

func texts(recs []channel.Recorded) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Text())
		if atts, ok := r.Activity["attachments"]; ok {
			fmt.Fprintf(&b, "%v", atts)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// signIn asks whoami and completes the silent sign-in, returning the replies.
func (h *ssoHarness) signIn(t *testing.T, c *teamsclient.Client) {
	t.Helper()
	ctx := ctxTimeout(t, 15*time.Second)
	if r, err := c.Say(ctx, "whoami"); err != nil || r.Status != 200 {
		t.Fatalf("whoami: %v %+v\n%s", err, r, h.logs.String())
	}
	res, err := c.ExchangeSSO(ctx, 1, entra.SSOOptions{})
	if err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("exchange: %v %+v\n%s", err, res, h.logs.String())
	}
	if _, err := c.WaitReplies(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

// A message needing Graph → OAuthCard → token exchange (three Teams clients at once) → one
// exchange, one OBO, the parked request answered once, every client answered 200.
func TestSSOSilentSignInAnswersParkedRequestOnce(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	ctx := ctxTimeout(t, 20*time.Second)

	if r, err := c.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("whoami: %v %+v", err, r)
	}
	rep, err := c.WaitReplies(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	card, err := c.LastOAuthCard()
	if err != nil || !card.HasExchangeResource || card.ExchangeURI != "api://botid-"+stack.BotAppID || card.ConnectionName != "sso" {
		t.Fatalf("want an OAuthCard with the token exchange resource, got %+v (%v)\n%s", card, err, texts(rep))
	}

	res, err := c.ExchangeSSO(ctx, 3, entra.SSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != http.StatusOK || r.Body["id"] != card.ExchangeID {
			t.Fatalf("client %d got %d %+v, want 200 with the exchange id\n%s", i, r.Status, r.Body, h.logs.String())
		}
	}
	rep, err = c.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	rep = c.Replies()
	if len(rep) != 2 {
		t.Fatalf("want the card and exactly one answer, got %d:\n%s", len(rep), texts(rep))
	}
	if !strings.Contains(texts(rep[1:]), "Alice Example") || strings.Contains(texts(rep), "Bob") {
		t.Fatalf("the parked whoami was not answered with Alice's profile:\n%s", texts(rep[1:]))
	}
	if n := h.st.Entra.OBOCount("https://graph.microsoft.com"); n != 1 {
		t.Fatalf("%d OBO requests for three duplicate exchanges, want 1", n)
	}
	if n := h.ts.Count("exchange"); n != 1 {
		t.Fatalf("%d token-service exchanges, want 1", n)
	}
}

// Consent required → 412 to every duplicate and no chat message; the user then signs in with
// the card's button and consents there, Teams reports the magic code the sign-in page showed
// (signin/verifyState), and the parked request completes.
func TestSSOConsentRequired(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	ctx := ctxTimeout(t, 20*time.Second)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)

	c.Say(ctx, "mail quarterly")
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	res, err := c.ExchangeSSO(ctx, 3, entra.SSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != http.StatusPreconditionFailed || r.Body["failureDetail"] == nil || r.Body["failureDetail"] == "" {
			t.Fatalf("client %d got %d %+v, want 412 with failureDetail", i, r.Status, r.Body)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(c.Replies()); n != 1 {
		t.Fatalf("the 412 path sent chat messages (%d activities, want only the card):\n%s", n, texts(c.Replies()))
	}

	card, _ := c.LastOAuthCard()
	resp, err := testenv.SharedCA().Client().Get(card.SignInLink + "&oid=" + alice.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="magic">(\d{6})</code>`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	r, err := c.Invoke(ctx, "signin/verifyState", map[string]any{"state": string(m[1])})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("verifyState: %v %+v\n%s", err, r, h.logs.String())
	}
	rep, err := c.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(texts(rep[1:]), "Quarterly report for Alice") {
		t.Fatalf("after consent the parked mail search was not answered:\n%s", texts(rep))
	}
}

// Tokens that are not the sender's valid SSO token for this bot are refused and nothing is
// stored or exchanged.
func TestSSOTokenRefusals(t *testing.T) {
	h := newSSOHarness(t)
	cases := []struct {
		name   string
		opts   entra.SSOOptions
		user   entra.User // whose token; the sender is always Alice
		reason string     // in the log line
	}{
		{"oid is not the sender", entra.SSOOptions{}, bob, "another user than the sender"},
		{"audience is another app's client id", entra.SSOOptions{Audience: "c0ffee00-0000-4000-8000-00000000beef"}, alice, "audience is not"},
		{"audience is another bot's identifier URI", entra.SSOOptions{Audience: "api://botid-c0ffee00-0000-4000-8000-00000000beef"}, alice, "audience is not"},
		{"another tenant", entra.SSOOptions{Tenant: "99999999-0000-4000-8000-000000000009"}, alice, "is not allowed"},
		{"no access_as_user", entra.SSOOptions{Scope: "User.Read"}, alice, "scope access_as_user missing"},
		{"expired", entra.SSOOptions{Expiry: time.Now().Add(-10 * time.Minute)}, alice, "expired"},
		{"foreign signer", entra.SSOOptions{ForeignSigner: true}, alice, "signing key"},
		{"not a Teams client", entra.SSOOptions{AZP: "c0ffee00-0000-4000-8000-00000000beef"}, alice, "not a pre-authorized Teams client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client(alice)
			ctx := ctxTimeout(t, 15*time.Second)
			logStart := len(h.logs.String())
			c.Say(ctx, "whoami")
			if _, err := c.WaitReplies(ctx, 1); err != nil {
				t.Fatal(err)
			}
			card, _ := c.LastOAuthCard()
			tok := h.st.Entra.MintSSOToken(tc.user, withApp(tc.opts))
			r, err := c.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": card.ExchangeID, "connectionName": "sso", "token": tok})
			if err != nil || r.Status != http.StatusBadRequest || r.Body["failureDetail"] == nil || r.Body["id"] != card.ExchangeID {
				t.Fatalf("got %v %+v, want 400 with failureDetail (412 is only for consent)", err, r)
			}
			time.Sleep(100 * time.Millisecond)
			if len(c.Replies()) != 1 {
				t.Fatalf("refused token caused chat messages:\n%s", texts(c.Replies()))
			}
			if added := h.logs.String()[logStart:]; !strings.Contains(added, "SSO token refused: "+tc.reason) &&
				!(strings.Contains(added, "SSO token refused") && strings.Contains(added, tc.reason)) {
				t.Fatalf("the log does not give the reason %q:\n%s", tc.reason, added)
			}
		})
	}
	if n := h.ts.Count("exchange"); n != 0 {
		t.Fatalf("%d refused tokens reached the token service", n)
	}
	if n := h.st.Entra.OBOCount("https://graph.microsoft.com"); n != 0 {
		t.Fatalf("%d OBO requests with refused tokens", n)
	}
	if _, err := h.app.Store.GetToken(context.Background(), userKey(alice), tokenstore.TokenKey{Connector: "entra/graph"}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("a token was stored for refused exchanges (err %v)", err)
	}

	t.Run("malformed value and another connection are 400", func(t *testing.T) {
		c := h.client(alice)
		ctx := ctxTimeout(t, 5*time.Second)
		if r, _ := c.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": "x"}); r.Status != http.StatusBadRequest {
			t.Fatalf("malformed: %d", r.Status)
		}
		tok := h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{}))
		if r, _ := c.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": "x", "connectionName": "other", "token": tok}); r.Status != http.StatusBadRequest {
			t.Fatalf("other connection: %d", r.Status)
		}
	})
}

func userKey(u entra.User) tokenstore.UserKey {
	return tokenstore.UserKey{TenantID: stack.TenantID, ObjectID: u.ObjectID}
}

func withApp(o entra.SSOOptions) entra.SSOOptions {
	o.AppID = stack.BotAppID
	return o
}

// 100 messages within an hour cost one OBO per resource; after the token expires a new user
// assertion is fetched silently (no card).
func TestSSOReusesOBOTokenAndRenewsSilently(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	h.signIn(t, c)
	ctx := ctxTimeout(t, 30*time.Second)
	for i := range 100 {
		if r, err := c.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
			t.Fatalf("message %d: %v %+v", i, err, r)
		}
	}
	if n := h.st.Entra.OBOCount("https://graph.microsoft.com"); n != 1 {
		t.Fatalf("%d OBO requests for 101 messages, want 1", n)
	}
	if _, err := c.WaitReplies(ctx, 102); err != nil {
		t.Fatal(err)
	}

	// Two hours later: the stored token has expired.
	h.app.SSO.M.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	before := len(c.Replies())
	if r, err := c.Say(ctx, "files"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("files: %v %+v\n%s", err, r, h.logs.String())
	}
	rep, _ := c.WaitReplies(ctx, before+1)
	if _, err := c.LastOAuthCard(); err == nil && len(rep) > 0 && strings.Contains(texts(rep[before:]), "card.oauth") {
		t.Fatalf("a sign-in card was shown after expiry:\n%s", texts(rep[before:]))
	}
	if !strings.Contains(texts(rep[before:]), "Alice-plan.docx") {
		t.Fatalf("files not answered silently after expiry:\n%s\n%s", texts(rep[before:]), h.logs.String())
	}
	if n := h.st.Entra.OBOCount("https://graph.microsoft.com"); n != 2 {
		t.Fatalf("%d OBO requests, want 2 (one renewal)", n)
	}
}

// Two users in parallel never see each other's results.
func TestSSOUsersNeverSeeEachOther(t *testing.T) {
	h := newSSOHarness(t)
	ca, cb := h.client(alice), h.client(bob)
	h.signIn(t, ca)
	h.signIn(t, cb)
	ctx := ctxTimeout(t, 30*time.Second)
	var wg sync.WaitGroup
	for i := range 10 {
		for _, c := range []*teamsclient.Client{ca, cb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := []string{"whoami", "mail quarterly", "files"}[i%3]
				if r, err := c.Say(ctx, cmd); err != nil || r.Status != http.StatusOK {
					t.Errorf("%s: %v %+v", cmd, err, r)
				}
			}()
		}
	}
	wg.Wait()
	for _, tc := range []struct {
		c          *teamsclient.Client
		own, other string
	}{{ca, "Alice", "Bob"}, {cb, "Bob", "Alice"}} {
		all := texts(tc.c.Replies())
		if !strings.Contains(all, tc.own+"-plan.docx") || !strings.Contains(all, "Quarterly report for "+tc.own) {
			t.Errorf("%s's answers are missing their own data:\n%s", tc.own, all)
		}
		if strings.Contains(all, tc.other) {
			t.Errorf("%s saw %s's data:\n%s", tc.own, tc.other, all)
		}
	}
}

func TestSSOSignOutAndFailures(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	h.signIn(t, c)
	ctx := ctxTimeout(t, 15*time.Second)

	c.Say(ctx, "signout")
	rep, _ := c.WaitReplies(ctx, 3)
	if !strings.Contains(texts(rep[2:]), "forgotten all your sign-ins") || h.ts.Count("SignOut") != 1 {
		t.Fatalf("signout: %s (token-service sign-outs %d)", texts(rep[2:]), h.ts.Count("SignOut"))
	}
	c.Say(ctx, "whoami")
	c.WaitReplies(ctx, 4)
	if _, err := c.LastOAuthCard(); err != nil || len(c.Replies()) != 4 {
		t.Fatalf("after signout, whoami should ask to sign in again:\n%s", texts(c.Replies()))
	}

	r, _ := c.Invoke(ctx, "signin/failure", map[string]any{"code": "resourcematchfailed", "message": "Resource match failed"})
	rep, _ = c.WaitReplies(ctx, 5)
	if r.Status != http.StatusOK || !strings.Contains(texts(rep[4:]), "doctor") {
		t.Fatalf("signin/failure not explained: %d %s", r.Status, texts(rep[4:]))
	}
	if !strings.Contains(h.logs.String(), "resourcematchfailed") {
		t.Fatal("the operator cannot find the failure's cause in the log")
	}

	r, _ = c.Invoke(ctx, "signin/verifyState", map[string]any{"state": "000000"})
	rep, _ = c.WaitReplies(ctx, 6)
	if r.Status != http.StatusNotFound || !strings.Contains(texts(rep[5:]), "did not complete") {
		t.Fatalf("a wrong magic code: %d %s", r.Status, texts(rep[5:]))
	}
}

func alice0() entra.SSOOptions { return entra.SSOOptions{} }

// Table round trips per message once signed in: a warm message (token in this instance's L1)
// costs only the write of its one audit record (whoami makes one Graph call); a cold one
// (another instance, or the L1 entry aged out) costs one read more.
func TestSSOTableRoundTripsPerMessage(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	h.signIn(t, c)
	ctx := ctxTimeout(t, 10*time.Second)
	before := h.table.count()
	for range 10 {
		c.Say(ctx, "whoami")
	}
	h.app.AuditWrites.Wait(ctx) // the audit records are written after the answer
	warm := h.table.count() - before
	t.Logf("warm: %d Table requests for 10 messages", warm)
	if warm != 10 {
		t.Fatalf("warm messages cost %d Table round trips, want 10 (one audit record each)", warm)
	}

	// A second instance (its own, empty L1) shares the table: its first message reads the
	// sealed OBO token once, the next ones are warm again. No new OBO is needed.
	client := h.st.HTTPClient()
	client.Transport = h.table
	second, err := app.New(ctx, h.cfg, app.Options{HTTPClient: client, Log: slog.New(slog.NewJSONHandler(h.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(second.Handler)
	defer srv2.Close()
	c.Endpoint = srv2.URL + "/api/messages"
	h.app.AuditWrites.Wait(ctx)
	before = h.table.count()
	c.Say(ctx, "whoami")
	second.AuditWrites.Wait(ctx)
	cold := h.table.count() - before
	before = h.table.count()
	for range 5 {
		c.Say(ctx, "whoami")
	}
	second.AuditWrites.Wait(ctx)
	warmAgain := h.table.count() - before
	t.Logf("cold: %d Table requests for the first message on a new instance; then %d for 5 more", cold, warmAgain)
	if cold != 2 || warmAgain != 5 {
		t.Fatalf("cold message: %d round trips (want 2: the token read, the audit record); warm after it: %d (want 5: the audit records)", cold, warmAgain)
	}
	if n := h.st.Entra.OBOCount("https://graph.microsoft.com"); n != 1 {
		t.Fatalf("the second instance did %d OBOs in all, want the stored token reused (1)", n)
	}
}

// In a group chat or channel, commands that show a user's own data refuse and point to a 1:1
// chat: nobody else in the conversation may read them. help still works there.
func TestUserDataStaysOutOfSharedConversations(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	h.signIn(t, c)
	ctx := ctxTimeout(t, 10*time.Second)
	before := len(c.Replies())
	graphCalls := h.graph.Calls(alice.ObjectID)
	for i, text := range []string{"mail quarterly", "whoami", "help"} {
		act := c.Activity("message")
		act["text"] = text
		conv := act["conversation"].(map[string]any)
		conv["conversationType"] = []string{"groupChat", "channel", "groupChat"}[i]
		conv["isGroup"] = true
		if r, err := c.Post(ctx, act); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s: %v %+v", text, err, r)
		}
	}
	rep, _ := c.WaitReplies(ctx, before+3)
	got := texts(rep[before:])
	if strings.Contains(got, "Quarterly report") || strings.Contains(got, "Alice Example") || h.graph.Calls(alice.ObjectID) != graphCalls {
		t.Fatalf("a shared conversation got Alice's data:\n%s", got)
	}
	if strings.Count(got, "only in a 1:1 chat") != 2 || !strings.Contains(got, "Here is what I can do") {
		t.Fatalf("want two refusals and help:\n%s", got)
	}
}

// Teams obtains a v1.0 token when the app registration does not ask for v2 (issuer
// sts.windows.net, appid, audience = the identifier URI); it signs the user in as well.
func TestSSOAcceptsV1Tokens(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	ctx := ctxTimeout(t, 10*time.Second)
	c.Say(ctx, "whoami")
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	res, err := c.ExchangeSSO(ctx, 1, entra.SSOOptions{V1: true})
	if err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("v1 exchange: %v %+v\n%s", err, res, h.logs.String())
	}
	rep, _ := c.WaitReplies(ctx, 2)
	if !strings.Contains(texts(rep), "Alice Example") {
		t.Fatalf("not answered after a v1 sign-in:\n%s", texts(rep))
	}
}

// The token service is asked by the channel's user id, and the result is stored under the
// Entra user: an activity whose two ids disagree gets neither user's data.
func TestSSOAssertionMustBelongToTheCaller(t *testing.T) {
	h := newSSOHarness(t)
	ca := h.client(alice)
	h.signIn(t, ca)
	ctx := ctxTimeout(t, 10*time.Second)
	mixed := h.client(bob)
	act := mixed.Activity("message")
	act["text"] = "whoami"
	act["from"] = map[string]any{"id": "29:" + alice.ObjectID, "name": "Bob Example", "aadObjectId": bob.ObjectID}
	mixed.Post(ctx, act)
	time.Sleep(200 * time.Millisecond)
	if got := texts(mixed.Replies()); strings.Contains(got, "Alice Example") {
		t.Fatalf("Bob's activity got Alice's profile:\n%s", got)
	}
	if _, err := h.app.Store.GetToken(ctx, userKey(bob), tokenstore.TokenKey{Connector: "entra/graph"}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("a token was stored for Bob from Alice's assertion (err %v)", err)
	}
	if !strings.Contains(h.logs.String(), "belongs to another user than the caller") {
		t.Fatalf("the refusal is not in the log:\n%s", h.logs.String())
	}
}
