package entra_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

const botAPI = "api://botid-" + botID

// A tenant where nobody has consented to anything for the bot.
func newTenantWithoutConsent(t *testing.T) *entra.Server {
	t.Helper()
	e := newTenant(t)
	e.RevokeAdminConsent(botID)
	e.AddApp(entra.App{ClientID: botID, Secrets: []string{secret}, RequiredResourceAccess: map[string][]string{
		entra.GraphResource: {"User.Read", "Mail.Read"}, botAPI: {entra.SSOScope},
	}})
	return e
}

// A sign-in grants exactly what it asked for (scopes-oidc.md, dynamic consent); OBO to any
// scope nobody consented to is AADSTS65001.
func TestSignInGrantsOnlyTheScopesItAskedFor(t *testing.T) {
	e := newTenantWithoutConsent(t)
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	if status, body := obo(t, e, sso, "https://graph.microsoft.com/User.Read", nil); status != http.StatusBadRequest || body["suberror"] != "consent_required" {
		t.Fatalf("OBO without any consent: %d %v", status, body)
	}
	tok, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/access_as_user", "")
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := e.Verify(tok, botID); err != nil || claims["scp"] != "access_as_user" || claims["ver"] != "2.0" {
		t.Fatalf("sign-in token: %v %v", claims, err)
	}
	if g := e.Granted(alice.ObjectID, botID, entra.GraphResource); len(g) != 0 {
		t.Fatalf("a sign-in for the bot's own scope granted Graph scopes %v", g)
	}
	if status, body := obo(t, e, sso, "https://graph.microsoft.com/User.Read", nil); status != http.StatusBadRequest || body["suberror"] != "consent_required" {
		t.Fatalf("OBO to Graph after a sign-in that asked only for access_as_user: %d %v", status, body)
	}
	// Asking for a Graph scope by name consents to that scope alone.
	if _, _, err := e.SignIn(botID, alice.ObjectID, "https://graph.microsoft.com/User.Read openid offline_access", ""); err != nil {
		t.Fatal(err)
	}
	if status, _ := obo(t, e, sso, "https://graph.microsoft.com/User.Read", nil); status != http.StatusOK {
		t.Errorf("User.Read after consenting to it: %d", status)
	}
	if status, body := obo(t, e, sso, "https://graph.microsoft.com/Mail.Read", nil); status != http.StatusBadRequest || body["suberror"] != "consent_required" {
		t.Errorf("Mail.Read was never consented to: %d %v", status, body)
	}
}

// A sign-in for {the bot's API}/.default with nothing granted yet brings the combined prompt:
// every permission the app registration lists, Graph included; its token is for the bot's API.
func TestDefaultScopeSignInIsTheCombinedConsent(t *testing.T) {
	e := newTenantWithoutConsent(t)
	tok, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/.default openid profile offline_access", "")
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := e.Verify(tok, botID); err != nil || claims["scp"] != "access_as_user" {
		t.Fatalf("token: %v %v", claims, err)
	}
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	if status, body := obo(t, e, sso, "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read", nil); status != http.StatusOK {
		t.Fatalf("OBO to Graph after the combined consent: %d %v", status, body)
	}
	// Another user's consent is their own.
	bob := entra.User{ObjectID: "b0b00000-0000-4000-8000-000000000002", Name: "Bob"}
	e.AddUser(bob)
	if status, _ := obo(t, e, e.MintSSOToken(bob, entra.SSOOptions{AppID: botID}), "https://graph.microsoft.com/User.Read", nil); status != http.StatusBadRequest {
		t.Errorf("Alice's consent let Bob's OBO through: %d", status)
	}
}

// .default prompts only when nothing is granted on the requested resource; with one scope
// already granted the sign-in adds nothing unless prompt=consent.
func TestDefaultScopePromptsOnlyWithoutAnyGrant(t *testing.T) {
	e := newTenantWithoutConsent(t)
	if _, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/access_as_user", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/.default", ""); err != nil {
		t.Fatal(err)
	}
	if g := e.Granted(alice.ObjectID, botID, entra.GraphResource); len(g) != 0 {
		t.Fatalf("no prompt was due, yet Graph scopes %v were granted", g)
	}
	if _, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/.default", "consent"); err != nil {
		t.Fatal(err)
	}
	if g := e.Granted(alice.ObjectID, botID, entra.GraphResource); !slices.Contains(g, "Mail.Read") {
		t.Fatalf("prompt=consent did not bring the combined prompt: %v", g)
	}
}

// One token request names scopes of one resource only (AADSTS28000), sign-in included, and
// grants nothing when refused.
func TestSignInWithTwoResourcesIsRefused(t *testing.T) {
	e := newTenantWithoutConsent(t)
	_, _, err := e.SignIn(botID, alice.ObjectID, botAPI+"/access_as_user https://graph.microsoft.com/User.Read", "")
	if err == nil || !strings.Contains(err.Error(), "AADSTS28000") {
		t.Fatalf("two resources: %v", err)
	}
	if g := e.Granted(alice.ObjectID, botID, botAPI); len(g) != 0 {
		t.Errorf("a refused sign-in granted %v", g)
	}
}
