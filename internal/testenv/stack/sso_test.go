package stack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// The whole chain as the bot walks it: Teams SSO token → token service exchange → OBO with
// the federated credential → Graph as the user.
func TestSSOChain(t *testing.T) {
	st := stack.New()
	defer st.Close()
	sso := st.StartSSO("sso")
	defer sso.Close()
	u := entra.User{ObjectID: "a11ce000-0000-4000-8000-000000000001", Name: "Alice", UPN: "alice@contoso.example"}
	st.Entra.AddUser(u)
	sso.Graph.AddUser(u.ObjectID, graphuser.UserData{DisplayName: "Alice", UPN: u.UPN})
	client := st.HTTPClient()
	ctx := context.Background()

	// The bot's own credential: the managed identity's token as federated assertion.
	mi := func() string {
		req, _ := http.NewRequestWithContext(ctx, "GET", st.Entra.IdentityEndpoint+"?api-version=2019-08-01&resource="+url.QueryEscape(entra.TokenExchangeAud)+"&client_id="+st.MIClientID, nil)
		req.Header.Set("X-IDENTITY-HEADER", st.Entra.IdentityHeader)
		return doJSON(t, client, req)["access_token"].(string)
	}
	token := func(form url.Values) map[string]any {
		form.Set("client_id", stack.BotAppID)
		form.Set("client_assertion_type", entra.ClientAssertionType)
		form.Set("client_assertion", mi())
		req, _ := http.NewRequestWithContext(ctx, "POST", st.Entra.URL+"/"+stack.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return doJSON(t, client, req)
	}
	botTok := token(url.Values{"grant_type": {"client_credentials"}, "scope": {"https://api.botframework.com/.default"}})["access_token"].(string)

	teamsTok := st.Entra.MintSSOToken(u, entra.SSOOptions{AppID: stack.BotAppID, Expiry: time.Now().Add(time.Hour)})
	req, _ := http.NewRequestWithContext(ctx, "POST", sso.TokenService.URL+"/api/usertoken/exchange?userId=29:alice&connectionName=sso&channelId=msteams",
		strings.NewReader(`{"token":"`+teamsTok+`"}`))
	req.Header.Set("Authorization", "Bearer "+botTok)
	req.Header.Set("Content-Type", "application/json")
	assertion := doJSON(t, client, req)["token"].(string)

	graphTok := token(url.Values{"grant_type": {entra.JWTBearerGrant}, "requested_token_use": {"on_behalf_of"},
		"assertion": {assertion}, "scope": {"https://graph.microsoft.com/User.Read"}})["access_token"].(string)
	req, _ = http.NewRequestWithContext(ctx, "GET", sso.Graph.URL+"/v1.0/me", nil)
	req.Header.Set("Authorization", "Bearer "+graphTok)
	if me := doJSON(t, client, req); me["userPrincipalName"] != u.UPN {
		t.Errorf("/me = %v", me)
	}
	if env := sso.Env(); env["GRAPH_URL"] != sso.Graph.URL || env["BOTFRAMEWORK_TOKEN_SERVICE_URL"] != sso.TokenService.URL {
		t.Errorf("Env = %v", env)
	}
}

func doJSON(t *testing.T, c *http.Client, req *http.Request) map[string]any {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := jsonDecode(resp, &m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return m
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
