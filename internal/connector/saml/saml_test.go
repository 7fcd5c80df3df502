package saml_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/saml"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/testenv"
	tenv "github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/samlapp"
)

const (
	tenant   = "72f988bf-0000-4000-8000-000000000001"
	botID    = "b07a0000-0000-4000-8000-000000000002"
	entityID = "https://s4h.contoso.example/saml"
)

var (
	alice = tenv.User{ObjectID: "a11ce000-0000-4000-8000-00000000000a", Name: "Alice Example", UPN: "alice@contoso.example"}
	bob   = tenv.User{ObjectID: "b0b00000-0000-4000-8000-00000000000b", Name: "Bob Example", UPN: "bob@contoso.example"}
)

type world struct {
	idp  *tenv.Server
	sp   *samlapp.Server
	app  *saml.App
	cfg  saml.Config
	seen *recorder
}

// recorder keeps the bodies of requests to the application's token endpoint.
type recorder struct {
	base  http.RoundTripper
	forms atomic.Pointer[url.Values]
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/oauth2/token") && req.Method == http.MethodPost {
		c := req.Clone(req.Context())
		if req.GetBody != nil {
			b, _ := req.GetBody()
			c.Body = b
			_ = c.ParseForm()
			f := c.PostForm
			r.forms.Store(&f)
		}
	}
	return r.base.RoundTrip(req)
}

func newWorld(t *testing.T, mutate ...func(*saml.Config)) *world {
	t.Helper()
	idp := tenv.New(tenant)
	t.Cleanup(idp.Close)
	idp.AddApp(tenv.App{ClientID: botID, Secrets: []string{"dev-secret"}})
	idp.AddUser(alice)
	idp.AddUser(bob)
	sp := samlapp.Start(samlapp.Config{
		EntityID: entityID, ClientID: "ONBEHALF_BOT", ClientSecret: "sap-s3cret",
		IdPIssuer: "https://sts.windows.net/" + tenant + "/", IdPCertificate: idp.SAMLSigningCertificate(),
		Data: map[string][]string{alice.UPN: {"Alice's order"}, bob.UPN: {"Bob's order"}},
	})
	t.Cleanup(sp.Close)
	idp.AddSAMLApp(tenv.SAMLApp{EntityID: entityID, ReplyURLs: []string{"https://*.contoso.example/acs", sp.TokenURL}})
	idp.SetPermissions(botID, entityID, "user_impersonation") // admin consent for the bot
	rec := &recorder{base: testenv.SharedCA().Client().Transport}
	hc := &http.Client{Transport: rec}
	ec, err := entra.NewClient(entra.ClientConfig{AuthorityHost: idp.URL, TenantID: tenant, ClientID: botID, ClientSecret: "dev-secret", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := saml.ParseApps(`[{"name":"sap","entityId":"` + entityID + `","tokenUrl":"` + sp.TokenURL + `","apiBaseUrl":"` + sp.APIURL + `","clientId":"ONBEHALF_BOT","clientSecretName":"sap"}]`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apps[0]
	for _, m := range mutate {
		m(&cfg)
	}
	secret := func(_ context.Context, name string) (string, error) {
		if name != "sap" {
			return "", errors.New("no such secret")
		}
		return "sap-s3cret", nil
	}
	app, err := cfg.Open(ec, secret, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &world{idp: idp, sp: sp, app: app, cfg: cfg, seen: rec}
}

func (w *world) ssoToken(u tenv.User) string {
	return w.idp.MintSSOToken(u, tenv.SSOOptions{AppID: botID})
}

// call uses an application token the way the API client does.
func (w *world) call(t *testing.T, tok string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.sp.APIURL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := testenv.SharedCA().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestExchangeGivesTheUsersOwnToken(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, u := range []tenv.User{alice, bob} {
		tok, err := w.app.Exchange(ctx, w.ssoToken(u))
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(tok.ExpiresOn) < 50*time.Minute {
			t.Fatalf("token expires %v", tok.ExpiresOn)
		}
		got := w.call(t, tok.AccessToken)
		first := strings.Fields(u.Name)[0]
		if !strings.Contains(got, first+"'s order") || strings.Count(got, "order") != 1 {
			t.Fatalf("%s got %s", u.Name, got)
		}
	}
	// RFC 7522 §2.1: the assertion travels base64url, without padding or line breaks.
	f := w.seen.forms.Load()
	if f == nil || f.Get("grant_type") != saml.SAML2BearerGrant || strings.ContainsAny(f.Get("assertion"), "+/=\n") {
		t.Fatalf("token request %v", f)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		want  error
		why   string // the application's reason
	}{
		{"assertion for another audience", func(w *world) { w.sp.ExpectAudience("https://other.example/saml") }, saml.ErrRefused, "audience"},
		{"expired", func(w *world) { w.sp.Skew(61 * time.Minute) }, saml.ErrRefused, "expired"},
		{"not valid yet", func(w *world) { w.sp.Skew(-10 * time.Minute) }, saml.ErrRefused, "not valid yet"},
		{"subject confirmation expired", func(w *world) { w.idp.SetSAMLFault(tenv.SAMLStaleConfirmation, "") }, saml.ErrRefused, "subject confirmation: expired"},
		{"conditions expired", func(w *world) { w.idp.SetSAMLFault(tenv.SAMLStaleConditions, "") }, saml.ErrRefused, "conditions: expired"},
		{"signed by another key", func(w *world) { w.idp.SetSAMLFault(tenv.SAMLForeignKey, "") }, saml.ErrRefused, "signature"},
		{"tampered after signing", func(w *world) { w.idp.SetSAMLFault(tenv.SAMLTampered, "") }, saml.ErrRefused, "signature"},
		{"another issuer", func(w *world) { w.sp.TrustIdP("https://sts.windows.net/other/", w.idp.SAMLSigningCertificate()) }, saml.ErrRefused, "issuer"},
		{"recipient is not the token endpoint", func(w *world) {
			w.idp.AddSAMLApp(tenv.SAMLApp{EntityID: entityID, ReplyURLs: []string{"https://s4h.contoso.example/acs"}})
		}, saml.ErrRefused, "recipient"},
		{"unknown user", func(w *world) { w.sp.SetUserData(alice.UPN, nil) }, saml.ErrRefused, "unknown user"},
		{"NameID of another user", func(w *world) { w.idp.SetSAMLFault(tenv.SAMLOtherUser, bob.UPN) }, saml.ErrWrongUser, ""},
		{"user not assigned", func(w *world) {
			w.idp.AddSAMLApp(tenv.SAMLApp{EntityID: entityID, ReplyURLs: []string{w.sp.TokenURL}, AssignmentRequired: true, Assigned: []string{bob.ObjectID}})
		}, entra.ErrNotAssigned, ""},
		{"consent missing", func(w *world) { w.idp.RequireConsent(alice.ObjectID, entityID, true) }, entra.ErrConsentRequired, ""},
		{"no consent granted to the bot", func(w *world) { w.idp.RevokeAdminConsent(botID) }, entra.ErrConsentRequired, ""},
		{"enterprise app missing", func(w *world) {
			w.idp.AddSAMLApp(tenv.SAMLApp{EntityID: "https://renamed.example/saml", ReplyURLs: []string{w.sp.TokenURL}})
		}, nil, ""},
		{"application down", func(w *world) { w.sp.SetDown(true) }, saml.ErrUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.name == "enterprise app missing" {
				w = newWorld(t, func(c *saml.Config) { c.EntityID = "https://missing.example/saml" })
			}
			tc.setup(w)
			tok, err := w.app.Exchange(context.Background(), w.ssoToken(alice))
			if err == nil {
				t.Fatalf("exchange succeeded (%d chars)", len(tok.AccessToken))
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			rs := w.sp.Refusals()
			switch {
			case tc.why == "" && len(rs) > 0:
				t.Fatalf("the application was asked: %v", rs)
			case tc.why != "" && (len(rs) != 1 || !strings.Contains(rs[0], tc.why)):
				t.Fatalf("refusals %v, want one about %q", rs, tc.why)
			}
			if w.sp.Exchanges() != 0 {
				t.Fatal("the application issued a token")
			}
		})
	}
}

// A replayed assertion is refused: the application remembers assertion IDs until they expire.
func TestReplayRefused(t *testing.T) {
	w := newWorld(t)
	if _, err := w.app.Exchange(context.Background(), w.ssoToken(alice)); err != nil {
		t.Fatal(err)
	}
	w.idp.SetSAMLFault(tenv.SAMLReplay, "")
	_, err := w.app.Exchange(context.Background(), w.ssoToken(alice))
	if !errors.Is(err, saml.ErrRefused) || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replay: %v", err)
	}
	if w.sp.Exchanges() != 1 {
		t.Fatalf("%d tokens issued", w.sp.Exchanges())
	}
}

// Servers that want the standard base64 alphabet get it; the stand-in (RFC 7522) refuses it.
func TestAssertionEncodingBase64(t *testing.T) {
	w := newWorld(t, func(c *saml.Config) { c.AssertionEncoding = "base64" })
	_, err := w.app.Exchange(context.Background(), w.ssoToken(alice))
	f := w.seen.forms.Load()
	if f == nil || !strings.HasSuffix(f.Get("assertion"), "=") && !strings.ContainsAny(f.Get("assertion"), "+/") {
		t.Fatalf("assertion not in standard base64: %v", f)
	}
	if !errors.Is(err, saml.ErrRefused) {
		t.Fatalf("the RFC 7522 stand-in accepted standard base64: %v", err)
	}
}

// Wrong client credentials at the application are the administrator's to fix.
func TestClientRejected(t *testing.T) {
	w := newWorld(t, func(c *saml.Config) { c.ClientID = "SOMEONE_ELSE" })
	if _, err := w.app.Exchange(context.Background(), w.ssoToken(alice)); !errors.Is(err, saml.ErrClientRejected) {
		t.Fatalf("error %v", err)
	}
}

func TestParseApps(t *testing.T) {
	good := `[{"name":"sap","entityId":"spn:S4H_100","tokenUrl":"https://s4h.example/sap/bc/sec/oauth2/token","apiBaseUrl":"https://s4h.example/sap/opu/odata","clientId":"C","clientSecretName":"s"}]`
	apps, err := saml.ParseApps(good)
	if err != nil || apps[0].NameID != saml.NameIDUPN || apps[0].AssertionEncoding != "base64url" || apps[0].Display != "sap" {
		t.Fatalf("%+v %v", apps, err)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"not JSON", `{`, "JSON array"},
		{"unknown field", `[{"name":"sap","secret":"x"}]`, "unknown field"},
		{"bad name", strings.Replace(good, `"sap"`, `"SAP!"`, 1), "name must be"},
		{"reserved name", strings.Replace(good, `"sap"`, `"graph"`, 1), "reserved"},
		{"http token URL", strings.Replace(good, "https://s4h.example/sap/bc", "http://s4h.example/sap/bc", 1), "tokenUrl must be an absolute https URL"},
		{"no entity id", strings.Replace(good, `"spn:S4H_100"`, `""`, 1), "entityId"},
		{"no secret name", strings.Replace(good, `"clientSecretName":"s"`, `"clientSecretName":""`, 1), "clientSecretName"},
		{"bad nameId", strings.Replace(good, `"clientId"`, `"nameId":"email","clientId"`, 1), "nameId must be"},
		{"bad encoding", strings.Replace(good, `"clientId"`, `"assertionEncoding":"hex","clientId"`, 1), "assertionEncoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := saml.ParseApps(tc.json, "graph")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// An Entity ID without a URI scheme is requested as spn:{id}/.default.
func TestSPNEntityID(t *testing.T) {
	var scope atomic.Value
	srv := testenv.SharedCA().NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		scope.Store(r.PostForm.Get("scope"))
		http.Error(w, `{"error":"invalid_request","error_description":"AADSTS900144: stop"}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	ec, err := entra.NewClient(entra.ClientConfig{AuthorityHost: srv.URL, TenantID: tenant, ClientID: botID, ClientSecret: "x", HTTPClient: testenv.SharedCA().Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ec.OnBehalfOfSAML(context.Background(), "user.jwt", "S4H_100")
	if got := scope.Load(); got != "spn:S4H_100/.default" {
		t.Fatalf("scope %v", got)
	}
}

// An application that quotes the assertion in its refusal does not get it into the bot's
// errors (which reach the log).
func TestRefusalTextNeverCarriesTheAssertion(t *testing.T) {
	w := newWorld(t)
	w.sp.EchoAssertions(true)
	w.idp.SetSAMLFault(tenv.SAMLForeignKey, "")
	_, err := w.app.Exchange(context.Background(), w.ssoToken(alice))
	if !errors.Is(err, saml.ErrRefused) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("error %v", err)
	}
	for _, a := range w.idp.IssuedSAML() {
		if strings.Contains(err.Error(), a[:40]) || strings.Contains(err.Error(), "(withheld)") == false {
			t.Fatalf("the refusal carries the assertion: %.120s", err.Error())
		}
	}
}
