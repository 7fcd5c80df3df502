package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/samlapp"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

const samlEntityID = "https://s4h.contoso.example/saml"

type samlHarness struct {
	*ssoHarness
	app *samlapp.Server
}

// newSAMLHarness runs the handler with one SAML application, "sap": an SAP-like service
// provider trusting the Entra stand-in, whose data differs per user.
func newSAMLHarness(t testing.TB) *samlHarness {
	t.Helper()
	sp := samlapp.Start(samlapp.Config{
		EntityID: samlEntityID, ClientID: "ONBEHALF_BOT", ClientSecret: "sap-s3cret",
		Data: map[string][]string{
			alice.UPN: {"Sales order 4711 for Alice", "Alice's travel request"},
			bob.UPN:   {"Sales order 4712 for Bob", "Bob's purchase requisition"},
		},
	})
	t.Cleanup(sp.Close)
	apps := fmt.Sprintf(`[{"name":"sap","display":"SAP S/4HANA","entityId":%q,"tokenUrl":%q,"apiBaseUrl":%q,"clientId":"ONBEHALF_BOT","clientSecretName":"sap-client-secret","nameId":"upn"}]`,
		samlEntityID, sp.TokenURL, sp.APIURL)
	h := newSSOHarness(t, map[string]string{"SAML_APPS": apps, "OAUTH2_DEV_SECRETS": `{"sap-client-secret":"sap-s3cret"}`})
	h.st.Entra.AddSAMLApp(entra.SAMLApp{EntityID: samlEntityID, ReplyURLs: []string{sp.TokenURL}, NameID: "upn"})
	// An administrator granted the bot consent to the enterprise app (README, "In Entra ID").
	h.st.Entra.SetPermissions(stack.BotAppID, samlEntityID, "user_impersonation")
	sp.TrustIdP("https://sts.windows.net/"+h.st.Entra.Tenant+"/", h.st.Entra.SAMLSigningCertificate())
	return &samlHarness{ssoHarness: h, app: sp}
}

// samlSignIn asks the app for the user's data the first time: the sign-in card, the silent
// exchange, then the parked request is answered.
func (h *samlHarness) samlSignIn(t *testing.T, c *teamsclient.Client) string {
	t.Helper()
	ctx := ctxTimeout(t, 15*time.Second)
	before := len(c.Replies())
	if r, err := c.Say(ctx, "saml sap /me"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("saml: %v %+v", err, r)
	}
	if _, err := c.WaitReplies(ctx, before+1); err != nil {
		t.Fatal(err)
	}
	if res, err := c.ExchangeSSO(ctx, 1, entra.SSOOptions{}); err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("exchange: %v %+v\n%s", err, res, h.logs.String())
	}
	rep, err := c.WaitReplies(ctx, before+2)
	if err != nil {
		t.Fatalf("%v\n%s", err, h.logs.String())
	}
	return texts(rep[before+1:])
}

// askSAML sends one message and returns the next reply's text.
func askSAML(t *testing.T, c *teamsclient.Client, text string) string {
	t.Helper()
	ctx := ctxTimeout(t, 15*time.Second)
	before := len(c.Replies())
	if r, err := c.Say(ctx, text); err != nil || r.Status != http.StatusOK {
		t.Fatalf("%s: %v %+v", text, err, r)
	}
	rep, err := c.WaitReplies(ctx, before+1)
	if err != nil {
		t.Fatal(err)
	}
	return texts(rep[before:])
}

// noSAMLSecretsLogged fails if any assertion Entra issued, any application token, or any
// SAML XML appears in the handler's log.
func (h *samlHarness) noSAMLSecretsLogged(t *testing.T) {
	t.Helper()
	logs := h.logs.String()
	if logs == "" {
		t.Fatal("the handler logged nothing: the check would be empty")
	}
	secrets := append(h.st.Entra.IssuedSAML(), h.app.IssuedTokens()...)
	if len(secrets) == 0 {
		t.Fatal("nothing was issued: the check would be empty")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) || strings.Contains(logs, s[:40]) {
			t.Fatalf("a SAML assertion or application token is in the log")
		}
	}
	// "<Assertion" in base64url and in XML.
	for _, frag := range []string{"PEFzc2VydGlvbi", "<Assertion", "\\u003cAssertion", "sap-s3cret"} {
		if strings.Contains(logs, frag) {
			t.Fatalf("the log contains %q", frag)
		}
	}
}

// Alice and Bob query the same SAML application in parallel; each gets their own data only.
func TestSAMLAppUsersGetTheirOwnData(t *testing.T) {
	h := newSAMLHarness(t)
	ca, cb := h.client(alice), h.client(bob)
	if got := h.samlSignIn(t, ca); !strings.Contains(got, "Sales order 4711 for Alice") {
		t.Fatalf("Alice's first answer:\n%s\n%s", got, h.logs.String())
	}
	if got := h.samlSignIn(t, cb); !strings.Contains(got, "Sales order 4712 for Bob") {
		t.Fatalf("Bob's first answer:\n%s", got)
	}
	ctx := ctxTimeout(t, 30*time.Second)
	var wg sync.WaitGroup
	for range 10 {
		for _, c := range []*teamsclient.Client{ca, cb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r, err := c.Say(ctx, "saml sap /me"); err != nil || r.Status != http.StatusOK {
					t.Errorf("saml: %v %+v", err, r)
				}
			}()
		}
	}
	wg.Wait()
	for _, c := range []*teamsclient.Client{ca, cb} {
		if _, err := c.WaitReplies(ctx, 12); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		c          *teamsclient.Client
		own, other string
	}{{ca, "Alice", "Bob"}, {cb, "Bob", "Alice"}} {
		all := texts(tc.c.Replies())
		if n := strings.Count(all, "Sales order"); n != 11 || !strings.Contains(all, tc.own+"'s") {
			t.Errorf("%s's answers are missing their own data (%d answers):\n%s", tc.own, n, all)
		}
		if strings.Contains(all, tc.other) {
			t.Errorf("%s saw %s's data:\n%s", tc.own, tc.other, all)
		}
	}
	if n := h.st.Entra.SAMLCount(samlEntityID); n != 2 {
		t.Errorf("%d SAML assertions for two users, want 2", n)
	}
	h.noSAMLSecretsLogged(t)
}

// 100 requests within the token's life: one OBO and one RFC 7522 exchange.
func TestSAMLAppOneExchangeForManyRequests(t *testing.T) {
	h := newSAMLHarness(t)
	c := h.client(alice)
	h.samlSignIn(t, c)
	ctx := ctxTimeout(t, 60*time.Second)
	for i := range 100 {
		if r, err := c.Say(ctx, "saml sap /me"); err != nil || r.Status != http.StatusOK {
			t.Fatalf("message %d: %v %+v", i, err, r)
		}
	}
	if _, err := c.WaitReplies(ctx, 102); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(texts(c.Replies()), "Sales order 4711 for Alice"); n != 101 {
		t.Fatalf("%d answers with Alice's data, want 101", n)
	}
	if n, m := h.st.Entra.SAMLCount(samlEntityID), h.app.Exchanges(); n != 1 || m != 1 {
		t.Fatalf("%d OBO (SAML) requests and %d RFC 7522 exchanges for 101 requests, want 1 and 1", n, m)
	}
	if n := h.app.APICalls(); n != 101 {
		t.Fatalf("%d API calls, want 101", n)
	}
	h.noSAMLSecretsLogged(t)
}

// The application refuses each bad assertion, and the bot says why; the next good one works.
func TestSAMLAppRefusalsAreExplained(t *testing.T) {
	h := newSAMLHarness(t)
	c := h.client(alice)
	if got := h.samlSignIn(t, c); !strings.Contains(got, "Alice") {
		t.Fatalf("first answer:\n%s", got)
	}
	for _, tc := range []struct {
		name    string
		break_  func()
		restore func()
		refusal string // what the application logged as its reason ("" when it was not asked)
		reply   string
	}{
		{"assertion for another audience",
			func() { h.app.ExpectAudience("https://other.contoso.example/saml") }, func() { h.app.ExpectAudience(samlEntityID) },
			"audience", "made out for another application"},
		{"expired",
			func() { h.app.Skew(2 * time.Hour) }, func() { h.app.Skew(0) },
			"expired", "had expired by its clock"},
		{"replayed",
			func() { h.st.Entra.SetSAMLFault(entra.SAMLReplay, "") }, func() { h.st.Entra.SetSAMLFault(entra.SAMLFaultNone, "") },
			"replay", "presented twice"},
		{"signed by another key",
			func() { h.st.Entra.SetSAMLFault(entra.SAMLForeignKey, "") }, func() { h.st.Entra.SetSAMLFault(entra.SAMLFaultNone, "") },
			"signature", "signature did not verify"},
		{"tampered after signing",
			func() { h.st.Entra.SetSAMLFault(entra.SAMLTampered, "") }, func() { h.st.Entra.SetSAMLFault(entra.SAMLFaultNone, "") },
			"signature", "signature did not verify"},
		{"NameID of another user",
			func() { h.st.Entra.SetSAMLFault(entra.SAMLOtherUser, bob.UPN) }, func() { h.st.Entra.SetSAMLFault(entra.SAMLFaultNone, "") },
			"", "sign-in for someone else"},
		{"NameID the application does not know",
			func() { h.app.SetUserData(alice.UPN, nil) }, func() { h.app.SetUserData(alice.UPN, []string{"Sales order 4711 for Alice"}) },
			"unknown user", "does not know your account"},
		{"user not assigned to the enterprise app",
			func() {
				h.st.Entra.AddSAMLApp(entra.SAMLApp{EntityID: samlEntityID, ReplyURLs: []string{h.app.TokenURL}, AssignmentRequired: true, Assigned: []string{bob.ObjectID}})
			},
			func() {
				h.st.Entra.AddSAMLApp(entra.SAMLApp{EntityID: samlEntityID, ReplyURLs: []string{h.app.TokenURL}})
			},
			"", "not assigned to **SAP S/4HANA**"},
		{"consent missing in Entra",
			func() { h.st.Entra.RequireConsent(alice.ObjectID, samlEntityID, true) }, func() { h.st.Entra.RequireConsent(alice.ObjectID, samlEntityID, false) },
			"", "I need your permission to use SAP S/4HANA"},
		{"application down",
			func() { h.app.SetDown(true) }, func() { h.app.SetDown(false) },
			"", "not answering right now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusals := len(h.app.Refusals())
			tc.break_()
			h.app.RevokeTokens() // the next request needs a new exchange
			got := askSAML(t, c, "saml sap /me")
			tc.restore()
			t.Logf("reply: %s", strings.TrimSpace(got))
			if !strings.Contains(got, tc.reply) || strings.Contains(got, "Sales order") {
				t.Fatalf("reply %q, want it to say %q and show no data\n%s", got, tc.reply, h.logs.String())
			}
			rs := h.app.Refusals()[refusals:]
			switch {
			case tc.refusal == "" && len(rs) > 0:
				t.Fatalf("the application was asked and refused: %v", rs)
			case tc.refusal != "" && (len(rs) != 1 || !strings.Contains(rs[0], tc.refusal)):
				t.Fatalf("application refusals %v, want one about %q", rs, tc.refusal)
			}
			if got := askSAML(t, c, "saml sap /me"); !strings.Contains(got, "Sales order 4711 for Alice") {
				t.Fatalf("no recovery once fixed: %q\n%s", got, h.logs.String())
			}
		})
	}
	if strings.Contains(texts(c.Replies()), "Bob") {
		t.Fatalf("Alice saw Bob's data:\n%s", texts(c.Replies()))
	}
	h.noSAMLSecretsLogged(t)
}

// The saml command runs only in a personal chat: in a group chat it refuses before any token
// is obtained.
func TestSAMLCommandIsPersonalOnly(t *testing.T) {
	h := newSAMLHarness(t)
	c := h.client(alice)
	h.samlSignIn(t, c)
	ctx := ctxTimeout(t, 10*time.Second)
	before, calls := len(c.Replies()), h.app.APICalls()
	act := c.Activity("message")
	act["text"] = "saml sap /me"
	conv := act["conversation"].(map[string]any)
	conv["conversationType"], conv["isGroup"] = "groupChat", true
	if r, err := c.Post(ctx, act); err != nil || r.Status != http.StatusOK {
		t.Fatalf("%v %+v", err, r)
	}
	rep, err := c.WaitReplies(ctx, before+1)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(rep[before:]); strings.Contains(got, "Sales order") || h.app.APICalls() != calls || !strings.Contains(got, "only in a 1:1 chat") {
		t.Fatalf("the command answered in a group chat: %s", got)
	}
}

// connections lists the SAML application: connected after first use, until its token expires;
// signout forgets the application's token and the next use signs in again silently.
func TestSAMLAppInConnectionsAndSignOut(t *testing.T) {
	h := newSAMLHarness(t)
	c := h.client(alice)
	if got := askSAML(t, c, "api sap /me"); !strings.Contains(got, "ask `saml sap /me`") || h.st.Entra.SAMLCount(samlEntityID) != 0 {
		t.Fatalf("api with a SAML application: %s", got)
	}
	if got := askSAML(t, c, "connections"); !strings.Contains(got, "SAP S/4HANA (SAML)") || !strings.Contains(got, "Signs you in through Microsoft Entra ID") {
		t.Fatalf("connections before use:\n%s", got)
	}
	h.samlSignIn(t, c)
	if got := askSAML(t, c, "connections"); !strings.Contains(got, "Connected until") || !strings.Contains(got, "signout sap") {
		t.Fatalf("connections after use:\n%s", got)
	}
	if got := askSAML(t, c, "signout sap"); !strings.Contains(strings.ToLower(got), "sap") {
		t.Fatalf("signout: %s", got)
	}
	if got := askSAML(t, c, "connections"); strings.Contains(got, "Connected until") {
		t.Fatalf("still connected after signout:\n%s", got)
	}
	if got := askSAML(t, c, "saml sap /me"); !strings.Contains(got, "Sales order 4711 for Alice") {
		t.Fatalf("no silent sign-in after signout:\n%s\n%s", got, h.logs.String())
	}
	if n := h.app.Exchanges(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
}

// BenchmarkSAMLAppWarmCall is "saml sap /me" once the user's application token is stored:
// channel-token validation, the token store (L1), one API call to the application, a reply.
// It reports the exchanges per call (0 once warm).
func BenchmarkSAMLAppWarmCall(b *testing.B) {
	h := newSAMLHarness(b)
	c := h.client(alice)
	ctx := context.Background()
	c.Say(ctx, "saml sap /me")
	time.Sleep(50 * time.Millisecond)
	if res, err := c.ExchangeSSO(ctx, 1, entra.SSOOptions{}); err != nil || res[0].Status != http.StatusOK {
		b.Fatalf("sign-in: %v %+v", err, res)
	}
	if _, err := c.WaitReplies(ctx, 2); err != nil {
		b.Fatal(err)
	}
	before := h.app.Exchanges()
	benchSay(b, c, "saml sap /me")
	b.ReportMetric(float64(h.app.Exchanges()-before)/float64(b.N), "exchanges/op")
	b.ReportMetric(float64(h.table.count())/float64(b.N), "table-requests/op")
}
