package tokenservice_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/tokenservice"
)

const (
	tenant = "72f988bf-0000-4000-8000-0000000000aa"
	botID  = "b07a0000-0000-4000-8000-0000000000bb"
	conn   = "sso"
	teamsU = "29:1alice"
)

var alice = entra.User{ObjectID: "a11ce000-0000-4000-8000-000000000001", Name: "Alice Example", UPN: "alice@contoso.example"}

type fixture struct {
	e   *entra.Server
	ts  *tokenservice.Server
	bot string // the bot's token for the token service
}

func setup(t *testing.T) *fixture {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddUser(alice)
	e.AddApp(entra.App{ClientID: botID, RequiredResourceAccess: map[string][]string{
		entra.GraphResource: {"User.Read", "Mail.Read"}, "api://botid-" + botID: {entra.SSOScope},
	}})
	e.GrantAdminConsent(botID)
	ts := tokenservice.New(e, botID, conn)
	t.Cleanup(ts.Close)
	return &fixture{e: e, ts: ts, bot: botToken(e, botID)}
}

func botToken(e *entra.Server, appID string) string {
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	return e.Sign(map[string]any{"iss": e.Issuer(), "aud": tokenservice.BotAudience, "appid": appID, "azp": appID,
		"tid": tenant, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()})
}

// call sends a request to the token service with the given bearer token ("" = none).
func (f *fixture) call(t *testing.T, method, path string, q url.Values, body any, bearer string) (int, map[string]any, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, f.ts.URL+path+"?"+q.Encode(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testenv.SharedCA().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

func userQ(user string) url.Values {
	return url.Values{"userId": {user}, "connectionName": {conn}, "channelId": {"msteams"}}
}

func state(t *testing.T, s map[string]any) url.Values {
	t.Helper()
	b, _ := json.Marshal(s)
	return url.Values{"state": {base64.StdEncoding.EncodeToString(b)}}
}

func goodState() map[string]any {
	return map[string]any{"connectionName": conn, "msAppId": botID,
		"conversation": map[string]any{"channelId": "msteams", "user": map[string]any{"id": teamsU}, "conversation": map[string]any{"id": "a:conv"}}}
}

func TestEveryOperationNeedsTheBotsToken(t *testing.T) {
	f := setup(t)
	now := time.Now()
	other := entra.New(tenant)
	defer other.Close()
	tokens := map[string]string{
		"none":               "",
		"garbage":            "not-a-jwt",
		"another bot":        botToken(f.e, "0ther-bot"),
		"another tenant":     botToken(other, botID),
		"wrong audience":     f.e.Sign(map[string]any{"iss": f.e.Issuer(), "aud": "api://x", "appid": botID, "exp": now.Add(time.Hour).Unix()}),
		"expired":            f.e.Sign(map[string]any{"iss": f.e.Issuer(), "aud": tokenservice.BotAudience, "appid": botID, "exp": now.Add(-time.Hour).Unix()}),
		"a user's SSO token": f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID}),
	}
	ops := []struct{ method, path string }{
		{"GET", "/api/botsignin/GetSignInResource"}, {"GET", "/api/usertoken/GetToken"},
		{"POST", "/api/usertoken/exchange"}, {"DELETE", "/api/usertoken/SignOut"}, {"GET", "/api/usertoken/GetTokenStatus"},
	}
	f.ts.SignIn(teamsU, alice.ObjectID)
	for name, tok := range tokens {
		for _, op := range ops {
			status, _, raw := f.call(t, op.method, op.path, userQ(teamsU), map[string]string{"token": "x"}, tok)
			if status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s token: %d", op.method, op.path, name, status)
			}
			if strings.Contains(string(raw), "eyJ") {
				t.Errorf("%s %s with %s token leaked a token", op.method, op.path, name)
			}
		}
	}
	if !f.ts.SignedIn(teamsU) || f.ts.Count("SignOut") != 0 || f.ts.Count("GetToken") != 0 {
		t.Error("unauthenticated requests changed state or were counted")
	}
}

func TestGetSignInResource(t *testing.T) {
	f := setup(t)
	status, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, goodState()), nil, f.bot)
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, body)
	}
	ter, _ := body["tokenExchangeResource"].(map[string]any)
	if ter["uri"] != "api://botid-"+botID || ter["id"] == "" || ter["providerId"] == "" {
		t.Errorf("tokenExchangeResource = %v", ter)
	}
	if link, _ := body["signInLink"].(string); !strings.HasPrefix(link, f.ts.URL) {
		t.Errorf("signInLink = %v", body["signInLink"])
	}
	if tpr, _ := body["tokenPostResource"].(map[string]any); tpr["sasUrl"] == "" {
		t.Errorf("tokenPostResource = %v", body["tokenPostResource"])
	}
	_, again, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, goodState()), nil, f.bot)
	if again["tokenExchangeResource"].(map[string]any)["id"] == ter["id"] {
		t.Error("two sign-in resources share an exchange id")
	}

	bad := map[string]url.Values{
		"no state":           {},
		"not base64":         {"state": {"%%%"}},
		"not JSON":           {"state": {base64.StdEncoding.EncodeToString([]byte("nope"))}},
		"other connection":   state(t, map[string]any{"connectionName": "github", "msAppId": botID, "conversation": map[string]any{}}),
		"other bot's app id": state(t, map[string]any{"connectionName": conn, "msAppId": "0ther-bot", "conversation": map[string]any{}}),
		"no conversation":    state(t, map[string]any{"connectionName": conn, "msAppId": botID}),
	}
	for name, q := range bad {
		if status, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", q, nil, f.bot); status != http.StatusBadRequest || body["error"] == nil {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
}

func TestExchangeSignsTheUserIn(t *testing.T) {
	f := setup(t)
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, f.bot); status != http.StatusNotFound {
		t.Fatalf("GetToken before sign-in: %d", status)
	}
	sso := f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	status, body, _ := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": sso}, f.bot)
	if status != http.StatusOK || body["connectionName"] != conn || body["channelId"] != "msteams" || body["expiration"] == "" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	claims, err := f.e.Verify(body["token"].(string), botID)
	if err != nil || claims["oid"] != alice.ObjectID || claims["scp"] != "access_as_user" || claims["azp"] != botID {
		t.Fatalf("exchanged token: %v %v", claims, err)
	}

	// Later turns get a fresh token silently; it is a valid OBO assertion for the bot.
	status, body, _ = f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, f.bot)
	if status != http.StatusOK {
		t.Fatalf("GetToken: %d", status)
	}
	if _, err := f.e.Verify(body["token"].(string), botID); err != nil {
		t.Fatal(err)
	}
	// Another Teams user is not signed in by Alice's exchange.
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", userQ("29:1bob"), nil, f.bot); status != http.StatusNotFound {
		t.Errorf("other user GetToken: %d", status)
	}
	status, list, raw := f.call(t, "GET", "/api/usertoken/GetTokenStatus", url.Values{"userId": {teamsU}, "channelId": {"msteams"}}, nil, f.bot)
	if status != http.StatusOK || !strings.Contains(string(raw), `"hasToken":true`) || !strings.Contains(string(raw), `"connectionName":"sso"`) {
		t.Errorf("GetTokenStatus: %d %s %v", status, raw, list)
	}

	if status, _, _ := f.call(t, "DELETE", "/api/usertoken/SignOut", userQ(teamsU), nil, f.bot); status != http.StatusOK {
		t.Fatalf("SignOut: %d", status)
	}
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, f.bot); status != http.StatusNotFound {
		t.Errorf("GetToken after sign-out: %d", status)
	}
	for op, want := range map[string]int{"exchange": 1, "GetToken": 4, "SignOut": 1, "GetTokenStatus": 1} {
		if got := f.ts.Count(op); got != want {
			t.Errorf("Count(%s) = %d, want %d", op, got, want)
		}
	}
}

func TestExchangeRefusesBadTokens(t *testing.T) {
	f := setup(t)
	cases := map[string]string{
		"another app's client id": f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Audience: "c0ffee00-0000-4000-8000-00000000beef"}),
		"another bot's API":       f.e.MintSSOToken(alice, entra.SSOOptions{AppID: "0ther-bot"}),
		"no access_as_user":       f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Scope: "User.Read"}),
		"expired":                 f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Expiry: time.Now().Add(-10 * time.Minute)}),
		"foreign signer":          f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, ForeignSigner: true}),
		"other tenant":            f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Tenant: "0ther000-0000-4000-8000-000000000000"}),
		"not a token":             "abc",
		"empty":                   "",
	}
	for name, tok := range cases {
		status, body, _ := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": tok}, f.bot)
		errObj, _ := body["error"].(map[string]any)
		if status != http.StatusBadRequest || errObj["code"] == nil || errObj["message"] == nil {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	q := userQ(teamsU)
	q.Set("connectionName", "github")
	if status, _, _ := f.call(t, "POST", "/api/usertoken/exchange", q, map[string]string{"token": f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})}, f.bot); status != http.StatusBadRequest {
		t.Errorf("other connection: %d", status)
	}
	if f.ts.SignedIn(teamsU) {
		t.Error("a refused exchange signed the user in")
	}
}

// Without admin consent, exchange answers 400 with the service's "Consent Required" error
// body; after the user consents through the connection's sign-in link the same SSO token is
// exchanged.
func TestExchangeNeedsConsent(t *testing.T) {
	f := setup(t)
	f.e.RevokeAdminConsent(botID)
	sso := f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	status, _, raw := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": sso}, f.bot)
	if status != http.StatusBadRequest || strings.TrimSpace(string(raw)) != `{"error":{"code":"ServiceError","message":"Consent Required"}}` {
		t.Errorf("consent required: %d %s", status, raw)
	}
	if f.ts.SignedIn(teamsU) {
		t.Error("user signed in without consent")
	}
	_, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, goodState()), nil, f.bot)
	resp, err := testenv.SharedCA().Client().Get(body["signInLink"].(string) + "&oid=" + alice.ObjectID)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %v %v", err, resp)
	}
	resp.Body.Close()
	if status, _, raw := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": sso}, f.bot); status != http.StatusOK {
		t.Errorf("after consent: %d %s", status, raw)
	}
}

// GetToken for a user without a token is 404 with no body; a misconfigured connection makes
// exchange answer 500.
func TestNoTokenAndMisconfiguredConnection(t *testing.T) {
	f := setup(t)
	status, _, raw := f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, f.bot)
	if status != http.StatusNotFound || len(raw) != 0 {
		t.Errorf("GetToken without a sign-in: %d %q, want 404 with no body", status, raw)
	}
	f.ts.Misconfigure(true)
	sso := f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	if status, _, raw := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": sso}, f.bot); status != http.StatusInternalServerError {
		t.Errorf("misconfigured exchange: %d %s, want 500", status, raw)
	}
	if f.ts.SignedIn(teamsU) {
		t.Error("a failed exchange signed the user in")
	}
}

// The sign-in consents to what the connection's scopes ask for and nothing more: a connection
// asking for access_as_user leaves Graph unconsented; one asking for the bot API's .default
// brings the combined prompt for every permission the app lists.
func TestSignInConsentsToTheConnectionScopes(t *testing.T) {
	for _, tc := range []struct {
		scopes    string
		wantGraph bool
	}{
		{"api://botid-" + botID + "/access_as_user", false},
		{"api://botid-" + botID + "/.default", true},
	} {
		t.Run(tc.scopes, func(t *testing.T) {
			f := setup(t)
			f.e.RevokeAdminConsent(botID)
			f.ts.Scopes = tc.scopes
			_, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, goodState()), nil, f.bot)
			resp, err := testenv.SharedCA().Client().Get(body["signInLink"].(string) + "&oid=" + alice.ObjectID)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-in page: %v %v", err, resp)
			}
			resp.Body.Close()
			graph := f.e.Granted(alice.ObjectID, botID, entra.GraphResource)
			if got := len(graph) == 2; got != tc.wantGraph || (!tc.wantGraph && len(graph) != 0) {
				t.Errorf("Graph scopes granted by the sign-in: %v (want granted: %v)", graph, tc.wantGraph)
			}
			if own := f.e.Granted(alice.ObjectID, botID, "api://botid-"+botID); len(own) != 1 || own[0] != entra.SSOScope {
				t.Errorf("bot API scopes granted: %v", own)
			}
		})
	}
}

func TestMagicCodeAndExpiry(t *testing.T) {
	f := setup(t)
	code := f.ts.StartMagicCode(teamsU, alice.ObjectID)
	withCode := func(c string) url.Values { q := userQ(teamsU); q.Set("code", c); return q }
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", withCode("000000x"), nil, f.bot); status != http.StatusNotFound {
		t.Errorf("wrong code: %d", status)
	}
	// Bob cannot redeem Alice's code.
	bobQ := withCode(code)
	bobQ.Set("userId", "29:1bob")
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", bobQ, nil, f.bot); status != http.StatusNotFound {
		t.Errorf("code used by another user: %d", status)
	}
	status, body, _ := f.call(t, "GET", "/api/usertoken/GetToken", withCode(code), nil, f.bot)
	if status != http.StatusOK {
		t.Fatalf("right code: %d", status)
	}
	if claims, _ := f.e.Verify(body["token"].(string), botID); claims["oid"] != alice.ObjectID {
		t.Errorf("token user: %v", claims["oid"])
	}
	f.ts.Expire(teamsU)
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", withCode(code), nil, f.bot); status != http.StatusNotFound {
		t.Errorf("after expiry, reusing the code: %d", status)
	}
}

func TestSignInLinkShowsAMagicCode(t *testing.T) {
	f := setup(t)
	_, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, goodState()), nil, f.bot)
	resp, err := testenv.SharedCA().Client().Get(body["signInLink"].(string) + "&oid=" + alice.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="magic">(\d{6})</code>`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	q := userQ(teamsU)
	q.Set("code", string(m[1]))
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", q, nil, f.bot); status != http.StatusOK {
		t.Errorf("GetToken with the page's code: %d", status)
	}
}

func TestDuplicateExchangesAndFreshTokensLater(t *testing.T) {
	f := setup(t)
	sso := f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	// Teams sends one exchange per client; the service answers each.
	statuses := make(chan int, 3)
	for range 3 {
		go func() {
			status, _, _ := f.call(t, "POST", "/api/usertoken/exchange", userQ(teamsU), map[string]string{"token": sso}, f.bot)
			statuses <- status
		}()
	}
	for range 3 {
		if s := <-statuses; s != http.StatusOK {
			t.Errorf("duplicate exchange: %d", s)
		}
	}
	if f.ts.Count("exchange") != 3 {
		t.Errorf("Count(exchange) = %d", f.ts.Count("exchange"))
	}

	// Two hours later the SSO token has expired, but GetToken still yields a fresh, valid
	// token: the service keeps the sign-in alive.
	later := time.Now().Add(2 * time.Hour)
	f.e.Now = func() time.Time { return later }
	bot := botToken(f.e, botID)
	status, body, _ := f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, bot)
	if status != http.StatusOK {
		t.Fatalf("GetToken later: %d", status)
	}
	if _, err := f.e.Verify(body["token"].(string), botID); err != nil {
		t.Errorf("later token: %v", err)
	}
	if exp, _ := time.Parse(time.RFC3339, body["expiration"].(string)); exp.Before(later) {
		t.Errorf("expiration %v is before the (fake) now %v", exp, later)
	}
	if _, err := f.e.Verify(sso, "api://botid-"+botID); err == nil {
		t.Error("the original SSO token should have expired by then")
	}
}

// A token is kept under the channel id the call names: one exchanged under the composite
// "msteams:COPILOT" is not found under "msteams", and a sign-in link made from a state naming
// the composite channel shows a code that GetToken accepts only under that channel.
func TestTokensArePartitionedByTheChannelIDNamed(t *testing.T) {
	f := setup(t)
	composite := userQ(teamsU)
	composite.Set("channelId", "msteams:COPILOT")
	sso := f.e.MintSSOToken(alice, entra.SSOOptions{AppID: botID})
	if status, _, raw := f.call(t, "POST", "/api/usertoken/exchange", composite, map[string]any{"token": sso}, f.bot); status != http.StatusOK {
		t.Fatalf("exchange: %d %s", status, raw)
	}
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", userQ(teamsU), nil, f.bot); status != http.StatusNotFound {
		t.Fatalf("a token exchanged under msteams:COPILOT was found under msteams: %d", status)
	}
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", composite, nil, f.bot); status != http.StatusOK {
		t.Fatalf("GetToken under the channel it was exchanged for: %d", status)
	}

	st := goodState()
	st["conversation"].(map[string]any)["channelId"] = "msteams:COPILOT"
	_, body, _ := f.call(t, "GET", "/api/botsignin/GetSignInResource", state(t, st), nil, f.bot)
	resp, err := testenv.SharedCA().Client().Get(body["signInLink"].(string) + "&oid=" + alice.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="magic">(\d{6})</code>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in page: %s", page)
	}
	q := userQ("29:other-user")
	q.Set("userId", teamsU)
	q.Set("code", string(m[1]))
	if status, _, _ := f.call(t, "GET", "/api/usertoken/GetToken", q, nil, f.bot); status != http.StatusNotFound {
		t.Fatalf("a code from a composite-channel state completed sign-in under msteams: %d", status)
	}
}
