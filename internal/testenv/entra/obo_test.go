package entra_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

const (
	tenant    = "72f988bf-0000-4000-8000-0000000000aa"
	botID     = "b07a0000-0000-4000-8000-0000000000bb"
	secret    = "s3cret"
	graphRead = "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read"
)

var alice = entra.User{ObjectID: "a11ce000-0000-4000-8000-000000000001", Name: "Alice Example", UPN: "alice@contoso.example"}

func newTenant(t *testing.T) *entra.Server {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddApp(entra.App{ClientID: botID, Secrets: []string{secret}, RequiredResourceAccess: map[string][]string{
		entra.GraphResource: {"User.Read", "Mail.Read"}, "api://contoso-api": {"user_impersonation"},
		"api://orders-api": {"user_impersonation"},
	}})
	e.GrantAdminConsent(botID)
	e.AddUser(alice)
	return e
}

// obo posts an on-behalf-of request authenticated with the app's secret.
func obo(t *testing.T, e *entra.Server, assertion, scope string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type": {entra.JWTBearerGrant}, "client_id": {botID}, "client_secret": {secret},
		"requested_token_use": {"on_behalf_of"}, "assertion": {assertion}, "scope": {scope},
	}
	for k, v := range extra {
		form[k] = v
	}
	return postForm(t, e, form)
}

func postForm(t *testing.T, e *entra.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := testenv.SharedCA().Client().PostForm(e.URL+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestSSOTokenShape(t *testing.T) {
	e := newTenant(t)
	// v2.0 tokens carry the API's client id as audience, v1.0 tokens its identifier URI.
	if _, err := e.Verify(e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, V1: true}), "api://botid-"+botID); err != nil {
		t.Fatalf("v1 audience: %v", err)
	}
	claims, err := e.Verify(e.MintSSOToken(alice, entra.SSOOptions{AppID: botID}), botID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": e.Issuer(), "tid": tenant, "oid": alice.ObjectID, "scp": "access_as_user", "ver": "2.0",
		"azp": entra.TeamsDesktopClientID, "name": alice.Name, "preferred_username": alice.UPN,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	v1, err := e.Verify(e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, V1: true}), "api://botid-"+botID)
	if err != nil {
		t.Fatal(err)
	}
	if v1["iss"] != "https://sts.windows.net/"+tenant+"/" || v1["appid"] != entra.TeamsDesktopClientID || v1["upn"] != alice.UPN {
		t.Errorf("v1 token claims: %v", v1)
	}
	// Tokens the tenant must not accept as its own.
	for name, o := range map[string]entra.SSOOptions{
		"foreign signer": {AppID: botID, ForeignSigner: true},
		"other tenant":   {AppID: botID, Tenant: "0ther000-0000-4000-8000-000000000000"},
		"expired":        {AppID: botID, Expiry: time.Now().Add(-10 * time.Minute)},
	} {
		if _, err := e.Verify(e.MintSSOToken(alice, o), "api://botid-"+botID); err == nil {
			t.Errorf("%s: Verify accepted the token", name)
		}
	}
}

func TestOBOIssuesDelegatedGraphToken(t *testing.T) {
	e := newTenant(t)
	status, body := obo(t, e, e.MintSSOToken(alice, entra.SSOOptions{AppID: botID}), graphRead+" openid profile offline_access", url.Values{"client_info": {"1"}})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	claims, err := e.Verify(body["access_token"].(string), entra.GraphResource)
	if err != nil {
		t.Fatal(err)
	}
	// Graph receives v1.0 tokens whatever endpoint issued them (v2-oauth2-on-behalf-of-flow.md).
	if claims["scp"] != "User.Read Mail.Read" || claims["oid"] != alice.ObjectID || claims["appid"] != botID ||
		claims["upn"] != alice.UPN || claims["tid"] != tenant || claims["ver"] != "1.0" ||
		claims["iss"] != "https://sts.windows.net/"+tenant+"/" || claims["aud"] != entra.GraphResource || claims["azp"] != nil {
		t.Errorf("claims: %v", claims)
	}
	if body["scope"] != graphRead || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["ext_expires_in"] == nil {
		t.Errorf("response: %v", body)
	}
	if body["refresh_token"] == nil || body["client_info"] == nil {
		t.Errorf("offline_access and client_info=1 were requested: %v", body)
	}
	if e.OBOCount(entra.GraphResource) != 1 || e.Count(entra.JWTBearerGrant) != 1 {
		t.Errorf("counts: obo %d, grant %d", e.OBOCount(entra.GraphResource), e.Count(entra.JWTBearerGrant))
	}

	// Without offline_access there is no refresh token.
	_, body = obo(t, e, e.MintSSOToken(alice, entra.SSOOptions{AppID: botID}), "User.Read", nil)
	if _, ok := body["refresh_token"]; ok || body["scope"] != "User.Read" {
		t.Errorf("response: %v", body)
	}
}

func TestOBOToOwnAPIWithDefaultScope(t *testing.T) {
	e := newTenant(t)
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	status, body := obo(t, e, sso, "api://contoso-api/.default", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	claims, err := e.Verify(body["access_token"].(string), "api://contoso-api")
	if err != nil || claims["scp"] != "user_impersonation" {
		t.Fatalf("claims %v, err %v", claims, err)
	}
	e.SetPermissions(botID, "api://contoso-api", "Orders.Read", "Orders.Write")
	_, body = obo(t, e, sso, "api://contoso-api/.default", nil)
	claims, _ = e.Verify(body["access_token"].(string), "api://contoso-api")
	if claims["scp"] != "Orders.Read Orders.Write" {
		t.Errorf("scp with configured permissions = %v", claims["scp"])
	}
	// A scope the app was never granted needs the user's consent.
	status, body = obo(t, e, sso, "api://contoso-api/Orders.Delete", nil)
	if status != http.StatusBadRequest || body["suberror"] != "consent_required" {
		t.Errorf("unconsented scope: %d %v", status, body)
	}
	if got := e.OBOCount("api://contoso-api"); got != 2 {
		t.Errorf("OBOCount = %d, want 2", got)
	}
}

func TestOBORefusesBadRequests(t *testing.T) {
	e := newTenant(t)
	e.AddUser(entra.User{ObjectID: "9one0000-0000-4000-8000-000000000009", Name: "Gone"})
	gone := e.MintSSOToken(entra.User{ObjectID: "9one0000-0000-4000-8000-000000000009"}, entra.SSOOptions{AppID: botID})
	e.RemoveUser("9one0000-0000-4000-8000-000000000009")
	appOnly := e.Sign(map[string]any{"iss": e.Issuer(), "aud": "api://botid-" + botID, "tid": tenant, "oid": botID,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "roles": []string{"x"}})
	noExpiry := e.Sign(map[string]any{"iss": e.Issuer(), "aud": "api://botid-" + botID, "tid": tenant, "oid": alice.ObjectID,
		"scp": "access_as_user", "iat": time.Now().Unix()})
	good := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	cases := []struct {
		name, assertion, scope string
		extra                  url.Values
		code                   string
		aadsts                 float64
	}{
		{"audience is another app", e.MintSSOToken(alice, entra.SSOOptions{AppID: "0ther-app"}), graphRead, nil, "invalid_grant", 500131},
		{"audience is Graph", e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Audience: entra.GraphResource}), graphRead, nil, "invalid_grant", 500131},
		{"foreign signer", e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, ForeignSigner: true}), graphRead, nil, "invalid_grant", 50013},
		{"other tenant", e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Tenant: "0ther000-0000-4000-8000-000000000000"}), graphRead, nil, "invalid_grant", 50013},
		{"expired", e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Expiry: time.Now().Add(-10 * time.Minute)}), graphRead, nil, "invalid_grant", 500133},
		{"no expiry", noExpiry, graphRead, nil, "invalid_grant", 500133},
		{"not a JWT", "not-a-token", graphRead, nil, "invalid_grant", 50027},
		{"app-only token", appOnly, graphRead, nil, "invalid_grant", 50013},
		{"user left the directory", gone, graphRead, nil, "invalid_grant", 50034},
		{"two resources", good, "https://graph.microsoft.com/User.Read api://contoso-api/Orders.Read", nil, "invalid_scope", 28000},
		{"only OIDC scopes", good, "openid profile offline_access", nil, "invalid_scope", 70011},
		{"wrong requested_token_use", good, graphRead, url.Values{"requested_token_use": {"id_token"}}, "invalid_request", 90014},
		{"no requested_token_use", good, graphRead, url.Values{"requested_token_use": {""}}, "invalid_request", 900144},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := obo(t, e, c.assertion, c.scope, c.extra)
			codes, _ := body["error_codes"].([]any)
			if status != http.StatusBadRequest || body["error"] != c.code || len(codes) != 1 || codes[0] != c.aadsts {
				t.Errorf("got %d %v, want 400 %s AADSTS%v", status, body, c.code, c.aadsts)
			}
			if _, ok := body["access_token"]; ok {
				t.Error("an access token was issued")
			}
		})
	}
	if n := e.Count(entra.JWTBearerGrant); n != 0 {
		t.Errorf("%d refused requests counted as OBOs", n)
	}
}

func TestOBOConsentAndClaimsChallengeSwitches(t *testing.T) {
	e := newTenant(t)
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})

	e.RequireConsent(alice.ObjectID, entra.GraphResource, true)
	status, body := obo(t, e, sso, graphRead, nil)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["suberror"] != "consent_required" ||
		!strings.HasPrefix(body["error_description"].(string), "AADSTS65001:") {
		t.Errorf("consent required: %d %v", status, body)
	}
	// Consent is per resource: another API still works.
	if status, _ := obo(t, e, sso, "api://contoso-api/.default", nil); status != http.StatusOK {
		t.Errorf("other resource: %d", status)
	}
	e.RequireConsent(alice.ObjectID, entra.GraphResource, false)
	if status, body := obo(t, e, sso, graphRead, nil); status != http.StatusOK {
		t.Errorf("after consent: %d %v", status, body)
	}

	const challenge = `{"access_token":{"polids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}`
	e.ClaimsChallenge(alice.ObjectID, challenge)
	status, body = obo(t, e, sso, graphRead, nil)
	if status != http.StatusBadRequest || body["error"] != "interaction_required" || body["claims"] != challenge {
		t.Errorf("claims challenge: %d %v", status, body)
	}
	e.ClaimsChallenge(alice.ObjectID, "")
	if status, _ := obo(t, e, sso, graphRead, nil); status != http.StatusOK {
		t.Errorf("after the challenge was cleared: %d", status)
	}
	if got := e.OBOCount(entra.GraphResource); got != 2 {
		t.Errorf("OBOCount(graph) = %d, want 2", got)
	}
}

func TestRefreshTokenFromOBO(t *testing.T) {
	e := newTenant(t)
	_, body := obo(t, e, e.MintSSOToken(alice, entra.SSOOptions{AppID: botID}), graphRead+" offline_access", nil)
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {botID}, "client_secret": {secret},
		"refresh_token": {body["refresh_token"].(string)}, "scope": {graphRead + " offline_access"}}
	status, body := postForm(t, e, refresh)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	if claims, err := e.Verify(body["access_token"].(string), entra.GraphResource); err != nil || claims["oid"] != alice.ObjectID {
		t.Errorf("refreshed token: %v %v", claims, err)
	}
	e.ClaimsChallenge(alice.ObjectID, `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`)
	if status, body := postForm(t, e, refresh); status != http.StatusBadRequest || body["error"] != "interaction_required" {
		t.Errorf("refresh under a claims challenge: %d %v", status, body)
	}
	refresh.Set("refresh_token", "rt.forged")
	if status, _ := postForm(t, e, refresh); status != http.StatusBadRequest {
		t.Errorf("forged refresh token: %d", status)
	}
	if e.OBOCount(entra.GraphResource) != 2 || e.Count(entra.JWTBearerGrant) != 1 || e.Count(entra.RefreshTokenGrant) != 1 {
		t.Errorf("counts: obo %d refresh %d", e.OBOCount(entra.GraphResource), e.Count("refresh_token"))
	}
}

// MSAL Go, as the bot uses it: federated credential (a managed-identity token) + OBO.
func TestMSALOnBehalfOf(t *testing.T) {
	e := newTenant(t)
	const principal = "m1000000-0000-4000-8000-000000000001"
	e.AddApp(entra.App{ClientID: botID, FederatedCredentials: []entra.FederatedCredential{{
		Issuer: e.Issuer(), Subject: principal, Audiences: []string{entra.TokenExchangeAud},
	}}})
	cred := confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		now := time.Now()
		return e.Sign(map[string]any{"iss": e.Issuer(), "sub": principal, "aud": entra.TokenExchangeAud, "tid": tenant,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}), nil
	})
	app, err := confidential.New(e.URL+"/"+tenant, botID, cred,
		confidential.WithHTTPClient(testenv.SharedCA().Client()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	scopes := []string{"https://graph.microsoft.com/User.Read"}
	res, err := app.AcquireTokenOnBehalfOf(ctx, sso, scopes)
	if err != nil {
		t.Fatal(err)
	}
	if claims, err := e.Verify(res.AccessToken, entra.GraphResource); err != nil || claims["oid"] != alice.ObjectID {
		t.Fatalf("token: %v %v", claims, err)
	}
	if _, err := app.AcquireTokenOnBehalfOf(ctx, sso, scopes); err != nil {
		t.Fatal(err)
	}
	if n := e.OBOCount(entra.GraphResource); n != 1 {
		t.Errorf("same assertion twice: %d OBO requests, want 1 (MSAL's in-memory cache)", n)
	}
	// With .default, Entra answers with the resolved scope names; MSAL still finds the cached
	// token for the same assertion.
	for range 2 {
		res, err := app.AcquireTokenOnBehalfOf(ctx, sso, []string{"api://orders-api/.default"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Verify(res.AccessToken, "api://orders-api"); err != nil {
			t.Errorf("api://orders-api/.default gave a token for another audience: %v", err)
		}
	}
	// MSAL got the second resource by redeeming the refresh token of the first OBO response.
	if n, rt := e.OBOCount("api://orders-api"), e.Count(entra.RefreshTokenGrant); n != 1 || rt != 1 {
		t.Errorf(".default twice with the same assertion: %d tokens issued (%d by refresh token), want 1 (1)", n, rt)
	}
	e.RequireConsent(alice.ObjectID, "api://contoso-api", true)
	_, err = app.AcquireTokenOnBehalfOf(ctx, sso, []string{"api://contoso-api/.default"})
	if err == nil || !strings.Contains(err.Error(), "AADSTS65001") {
		t.Errorf("consent required: err = %v", err)
	}
}
