package graph

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const (
	appID   = "b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	objID   = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	scopeID = "754c9c36-1ceb-4c19-bbc0-b1ac8f3e9e72"
	teams   = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
)

func newServer(t *testing.T) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	err := s.PutApp(map[string]any{
		"id": objID, "appId": appID, "signInAudience": "AzureADMyOrg",
		"identifierUris": []string{"api://botid-" + appID},
		"api": map[string]any{
			"requestedAccessTokenVersion": 2,
			"oauth2PermissionScopes":      []any{map[string]any{"id": scopeID, "value": "access_as_user", "type": "User", "isEnabled": true, "adminConsentDisplayName": "Act as you"}},
			"preAuthorizedApplications":   []any{map[string]any{"appId": teams, "delegatedPermissionIds": []string{scopeID}}},
		},
		"web": map[string]any{"redirectUris": []string{"https://token.botframework.com/.auth/web/redirect"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestRequiresItsOwnBearerToken(t *testing.T) {
	s := newServer(t)
	for _, tok := range []string{"", "token-for-another-audience"} {
		if code, m := s.call(t, "GET", "/v1.0/applications(appId='"+appID+"')", tok, ""); code != 401 || errCode(m) != "InvalidAuthenticationToken" {
			t.Errorf("token %q: %d %v", tok, code, m)
		}
	}
	if code, _ := s.call(t, "GET", "/v1.0/applications/"+objID, s.Token(), ""); code != 200 {
		t.Errorf("by object id: %d", code)
	}
}

func TestPatchMergesObjectsAndReplacesCollections(t *testing.T) {
	s := newServer(t)
	code, m := s.call(t, "PATCH", "/v1.0/applications(appId='"+appID+"')", s.Token(), `{"api":{"requestedAccessTokenVersion":1},"identifierUris":["api://other"]}`)
	if code != http.StatusNoContent {
		t.Fatalf("PATCH: %d %v", code, m)
	}
	app := s.App(appID)
	api := app["api"].(map[string]any)
	if api["requestedAccessTokenVersion"] != float64(1) || len(api["oauth2PermissionScopes"].([]any)) != 1 {
		t.Errorf("api after PATCH: %v (scopes must survive a PATCH of another api property)", api)
	}
	if uris := app["identifierUris"].([]any); len(uris) != 1 || uris[0] != "api://other" {
		t.Errorf("identifierUris replaced whole: %v", uris)
	}
}

func TestEnabledScopeCannotBeRemovedOrChangedUntilDisabled(t *testing.T) {
	s := newServer(t)
	path := "/v1.0/applications(appId='" + appID + "')"
	// Pre-authorizations reference the scope, so they go first.
	if code, m := s.call(t, "PATCH", path, s.Token(), `{"api":{"preAuthorizedApplications":[]}}`); code != 204 {
		t.Fatalf("clear pre-authorizations: %d %v", code, m)
	}
	for _, body := range []string{
		`{"api":{"oauth2PermissionScopes":[]}}`,
		`{"api":{"oauth2PermissionScopes":[{"id":"` + scopeID + `","value":"renamed","type":"User","isEnabled":true,"adminConsentDisplayName":"Act as you"}]}}`,
	} {
		if code, m := s.call(t, "PATCH", path, s.Token(), body); code != 400 || errCode(m) != "CannotDeleteOrUpdateEnabledEntitlement" {
			t.Errorf("%s: %d %v", body, code, m)
		}
	}
	disable := `{"api":{"oauth2PermissionScopes":[{"id":"` + scopeID + `","value":"access_as_user","type":"User","isEnabled":false,"adminConsentDisplayName":"Act as you"}]}}`
	if code, m := s.call(t, "PATCH", path, s.Token(), disable); code != 204 {
		t.Fatalf("disable: %d %v", code, m)
	}
	if code, m := s.call(t, "PATCH", path, s.Token(), `{"api":{"oauth2PermissionScopes":[]}}`); code != 204 {
		t.Fatalf("remove after disabling: %d %v", code, m)
	}
}

func TestPreAuthorizationMustReferenceAnExistingScope(t *testing.T) {
	s := newServer(t)
	body := `{"api":{"preAuthorizedApplications":[{"appId":"` + teams + `","delegatedPermissionIds":["00000000-0000-4000-8000-000000000000"]}]}}`
	if code, m := s.call(t, "PATCH", "/v1.0/applications(appId='"+appID+"')", s.Token(), body); code != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "00000000-0000-4000-8000-000000000000") {
		t.Errorf("%d %v", code, m)
	}
	if before := s.App(appID)["api"].(map[string]any)["preAuthorizedApplications"].([]any); len(before) != 1 {
		t.Errorf("a refused PATCH changed the app: %v", before)
	}
}

func TestPatchRefusesInvalidValues(t *testing.T) {
	s := newServer(t)
	for _, body := range []string{
		`{"api":{"requestedAccessTokenVersion":3}}`,
		`{"passwordCredentials":[{"displayName":"x"}]}`,
		`{"appId":"00000000-0000-4000-8000-000000000000"}`,
		`{"identifierUris":["not a uri"]}`,
		`{"web":{"redirectUris":["http://example.com/cb"]}}`,
		`{not json`,
	} {
		if code, _ := s.call(t, "PATCH", "/v1.0/applications(appId='"+appID+"')", s.Token(), body); code != 400 {
			t.Errorf("%s: %d", body, code)
		}
	}
}

func TestFederatedCredentialsRules(t *testing.T) {
	s := newServer(t)
	path := "/v1.0/applications/" + objID + "/federatedIdentityCredentials"
	fic := `{"name":"mi","issuer":"https://login.microsoftonline.com/t/v2.0","subject":"p","audiences":["api://AzureADTokenExchange"]}`
	if code, m := s.call(t, "POST", path, s.Token(), fic); code != 201 || m["id"] == nil {
		t.Fatalf("create: %d %v", code, m)
	}
	if code, _ := s.call(t, "POST", path, s.Token(), fic); code != 409 {
		t.Errorf("duplicate: %d", code)
	}
	two := `{"name":"x","issuer":"i","subject":"s","audiences":["a","b"]}`
	if code, _ := s.call(t, "POST", path, s.Token(), two); code != 400 {
		t.Errorf("two audiences: %d", code)
	}
	code, m := s.call(t, "GET", "/v1.0/applications(appId='"+appID+"')/federatedIdentityCredentials", s.Token(), "")
	if code != 200 || len(m["value"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, m)
	}
}

func TestServicePrincipalsAndGrants(t *testing.T) {
	s := newServer(t)
	if code, _ := s.call(t, "GET", "/v1.0/servicePrincipals(appId='"+appID+"')", s.Token(), ""); code != 404 {
		t.Errorf("missing service principal: %d", code)
	}
	_ = s.PutServicePrincipal(map[string]any{"id": "sp-1", "appId": appID})
	_ = s.PutGrant(map[string]any{"clientId": "sp-1", "consentType": "AllPrincipals", "resourceId": "g", "scope": "User.Read"})
	_ = s.PutGrant(map[string]any{"clientId": "sp-2", "consentType": "AllPrincipals", "resourceId": "g", "scope": "Mail.Read"})
	if code, m := s.call(t, "GET", "/v1.0/servicePrincipals(appId='"+appID+"')", s.Token(), ""); code != 200 || m["id"] != "sp-1" {
		t.Errorf("service principal: %d %v", code, m)
	}
	code, m := s.call(t, "GET", "/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'sp-1'", s.Token(), "")
	if code != 200 || len(m["value"].([]any)) != 1 {
		t.Errorf("grants for sp-1: %d %v", code, m)
	}
	if code, _ := s.call(t, "GET", "/v1.0/oauth2PermissionGrants?$filter=scope%20eq%20'x'", s.Token(), ""); code != 400 {
		t.Errorf("unsupported filter: %d", code)
	}
}
