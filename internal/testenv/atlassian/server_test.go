package atlassian

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const cb = "https://bot.example.com/api/oauth/callback"

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789" // 54 chars

func challenge(v string) string {
	s := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func authorizeQuery(s *Server) url.Values {
	return url.Values{
		"audience": {"api.atlassian.com"}, "client_id": {s.ClientID()}, "scope": {"read:jira-work read:me offline_access"},
		"redirect_uri": {cb}, "state": {"st"}, "response_type": {"code"}, "prompt": {"consent"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"},
	}
}

func TestAuthorizeValidatesEveryParameter(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	for _, tc := range []struct {
		name, key, value string
		wantError        string // "" = success; "nocallback" = no redirect at all
	}{
		{"valid", "", "", ""},
		{"audience", "audience", "api.example.com", "invalid_request"},
		{"response type", "response_type", "token", "unsupported_response_type"},
		{"prompt", "prompt", "", "invalid_request"},
		{"state", "state", "", "invalid_request"},
		{"unknown scope", "scope", "read:jira-work manage:everything", "invalid_scope"},
		{"no scope", "scope", "", "invalid_scope"},
		// Atlassian Cloud documents no PKCE parameters: the stand-in neither requires nor
		// checks them (see TestCloudDoesNotEnforcePKCE).
		{"no PKCE", "code_challenge", "", ""},
		{"plain PKCE", "code_challenge_method", "plain", ""},
		{"unknown client", "client_id", "other", "nocallback"},
		{"unregistered redirect", "redirect_uri", "https://evil.example.com/cb", "nocallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery(s)
			if tc.key != "" {
				q.Set(tc.key, tc.value)
			}
			loc, err := s.AuthorizeAs(Alice, s.URL+"/authorize?"+q.Encode())
			if tc.wantError == "nocallback" {
				if err == nil {
					t.Fatalf("redirected to %s", loc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(loc)
			if !strings.HasPrefix(loc, cb+"?") {
				t.Fatalf("redirect %s", loc)
			}
			if got := u.Query().Get("error"); got != tc.wantError {
				t.Errorf("error = %q, want %q", got, tc.wantError)
			}
			if (u.Query().Get("code") != "") != (tc.wantError == "") {
				t.Errorf("code present = %v", u.Query().Get("code") != "")
			}
		})
	}
}

func TestConsentPageOffersEachTestUser(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	resp, err := s.Client().Get(s.URL + "/authorize?" + authorizeQuery(s).Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{"Accept as Alice Example", "Accept as Bob Example", "login_as=" + url.QueryEscape(Bob), "Deny"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
}

func TestTokenEndpointAcceptsJSONAndEnforcesScopes(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	q := authorizeQuery(s)
	q.Set("scope", "read:jira-work") // no read:me, no offline_access
	loc, err := s.AuthorizeAs(Bob, s.URL+"/authorize?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	body, _ := json.Marshal(map[string]string{
		"grant_type": "authorization_code", "client_id": s.ClientID(), "client_secret": s.ClientSecret(),
		"code": u.Query().Get("code"), "redirect_uri": cb, "code_verifier": verifier,
	})
	resp, err := s.Client().Post(s.URL+"/oauth/token", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok["access_token"] == nil || tok["expires_in"] != float64(3600) {
		t.Fatalf("status %d: %v", resp.StatusCode, tok)
	}
	if _, ok := tok["refresh_token"]; ok {
		t.Error("refresh token without offline_access")
	}
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
		r, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if got := get("/me"); got != http.StatusUnauthorized {
		t.Errorf("/me without read:me: %d", got)
	}
	if got := get("/ex/jira/" + AcmeSite + "/rest/api/3/issue/OPS-7"); got != 200 {
		t.Errorf("OPS-7 for Bob: %d", got)
	}
	if got := get("/ex/jira/" + GlobexSite + "/rest/api/3/issue/GLX-1"); got != http.StatusNotFound {
		t.Errorf("a site outside Bob's grant: %d", got)
	}
	if got := get("/ex/confluence/" + AcmeSite + "/wiki/api/v2/pages/1002"); got != http.StatusUnauthorized {
		t.Errorf("Confluence without its scope: %d", got)
	}
}

// tokenCall posts a token request and returns the status and decoded body.
func tokenCall(t *testing.T, s *Server, path string, p map[string]string) (int, map[string]any) {
	t.Helper()
	p["client_id"], p["client_secret"] = s.ClientID(), s.ClientSecret()
	body, _ := json.Marshal(p)
	resp, err := s.Client().Post(s.URL+path, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// codeFor authorizes user with q at the stand-in's authorize path and returns the code.
func codeFor(t *testing.T, s *Server, path, user string, q url.Values) string {
	t.Helper()
	loc, err := s.AuthorizeAs(user, s.URL+path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if u.Query().Get("code") == "" {
		t.Fatalf("no code: %s", loc)
	}
	return u.Query().Get("code")
}

func apiStatus(t *testing.T, s *Server, token, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	r, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func TestCloudDoesNotEnforcePKCE(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	// A challenge for one verifier, redeemed with another (or none): Atlassian Cloud's 3LO
	// documentation has no PKCE parameters, so nothing here may depend on them.
	for _, v := range []string{"another-verifier-another-verifier-another-verifier", ""} {
		code := codeFor(t, s, "/authorize", Alice, authorizeQuery(s))
		p := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb}
		if v != "" {
			p["code_verifier"] = v
		}
		if st, m := tokenCall(t, s, "/oauth/token", p); st != 200 || m["access_token"] == nil {
			t.Errorf("verifier %q: %d %v", v, st, m)
		}
	}
}

func TestDataCenterVerifiesPKCEWhenSent(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}, DataCenter: true})
	defer s.Close()
	q := url.Values{"client_id": {s.ClientID()}, "scope": {"READ"}, "redirect_uri": {cb}, "state": {"st"},
		"response_type": {"code"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	const path = "/rest/oauth2/latest/token"
	code := codeFor(t, s, "/rest/oauth2/latest/authorize", Alice, q)
	p := map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb, "code_verifier": verifier + "x"}
	if st, m := tokenCall(t, s, path, p); st != http.StatusForbidden || m["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %v", st, m)
	}
	code = codeFor(t, s, "/rest/oauth2/latest/authorize", Alice, q)
	p = map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb, "code_verifier": verifier}
	if st, m := tokenCall(t, s, path, p); st != 200 {
		t.Errorf("right verifier: %d %v", st, m)
	}
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	code = codeFor(t, s, "/rest/oauth2/latest/authorize", Alice, q) // PKCE is optional there
	if st, m := tokenCall(t, s, path, map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb}); st != 200 {
		t.Errorf("without PKCE: %d %v", st, m)
	}
}

func TestRotatedTokensAreRevokedWhenTheLeewayEnds(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	code := codeFor(t, s, "/authorize", Bob, authorizeQuery(s))
	_, first := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb})
	at1, rt1 := first["access_token"].(string), first["refresh_token"].(string)
	const issue = "/ex/jira/" + AcmeSite + "/rest/api/3/issue/OPS-7"

	s.Advance(5 * time.Minute)
	st, second := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt1})
	if st != 200 || second["refresh_token"] == rt1 || second["access_token"] == at1 {
		t.Fatalf("refresh: %d %v", st, second)
	}
	rt2 := second["refresh_token"].(string)
	// Within the 10-minute leeway the old pair still works: the old access token, and the old
	// refresh token for a client that never received the answer.
	s.Advance(9 * time.Minute)
	if got := apiStatus(t, s, at1, issue); got != 200 {
		t.Errorf("old access token inside the leeway: %d", got)
	}
	st, retry := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt1})
	if st != 200 {
		t.Fatalf("old refresh token inside the leeway: %d %v", st, retry)
	}
	// When the leeway ends the old access token is revoked, though it has 46 minutes left.
	s.Advance(time.Minute)
	if got := apiStatus(t, s, at1, issue); got != http.StatusUnauthorized {
		t.Errorf("old access token after the leeway: %d, want 401", got)
	}
	if got := apiStatus(t, s, second["access_token"].(string), issue); got != 200 {
		t.Errorf("new access token: %d", got)
	}
	// The rotated-out refresh token: 403 unauthorized_client "refresh_token is invalid".
	st, m := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt1})
	if st != http.StatusForbidden || m["error"] != "unauthorized_client" || m["error_description"] != "refresh_token is invalid" {
		t.Errorf("rotated-out refresh token: %d %v", st, m)
	}
	// That reuse revoked the family: the current refresh token is now invalid_grant.
	st, m = tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": rt2})
	if st != http.StatusForbidden || m["error"] != "invalid_grant" {
		t.Errorf("refresh token of a revoked family: %d %v", st, m)
	}
	if !s.Revoked(Bob) {
		t.Error("family not revoked")
	}
}

func TestExpiredRefreshTokenIsInvalidGrant(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	code := codeFor(t, s, "/authorize", Bob, authorizeQuery(s))
	_, first := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb})
	s.Advance(91 * 24 * time.Hour) // unused for more than 90 days
	st, m := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": first["refresh_token"].(string)})
	if st != http.StatusForbidden || m["error"] != "invalid_grant" {
		t.Errorf("expired refresh token: %d %v", st, m)
	}
	st, m = tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": "rt-made-up"})
	if st != http.StatusForbidden || m["error"] != "invalid_grant" {
		t.Errorf("unknown refresh token: %d %v", st, m)
	}
}

// bearerFor links user with scope and returns the access token.
func bearerFor(t *testing.T, s *Server, user, scope string) string {
	t.Helper()
	q := authorizeQuery(s)
	q.Set("scope", scope)
	code := codeFor(t, s, "/authorize", user, q)
	_, m := tokenCall(t, s, "/oauth/token", map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": cb})
	return m["access_token"].(string)
}

func getJSON(t *testing.T, s *Server, token, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	r, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	return r.StatusCode, m
}

func TestEnhancedSearchPagesWithNextPageTokenAndNoTotal(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}, SearchPageLimit: 2})
	defer s.Close()
	tok := bearerFor(t, s, Alice, "read:jira-work")
	jql := "assignee = currentUser() ORDER BY updated DESC"
	base := "/ex/jira/" + AcmeSite + "/rest/api/3/search/jql?"
	var keys []string
	next := ""
	for page := 0; ; page++ {
		q := url.Values{"jql": {jql}, "maxResults": {"10"}}
		if next != "" {
			q.Set("nextPageToken", next)
		}
		st, m := getJSON(t, s, tok, base+q.Encode())
		if st != 200 {
			t.Fatalf("page %d: %d %v", page, st, m)
		}
		for _, k := range []string{"total", "startAt", "maxResults"} {
			if _, ok := m[k]; ok {
				t.Errorf("page %d has %q", page, k)
			}
		}
		issues := m["issues"].([]any)
		if len(issues) > 2 {
			t.Errorf("page %d: %d issues, the page limit is 2", page, len(issues))
		}
		for _, is := range issues {
			keys = append(keys, is.(map[string]any)["key"].(string))
		}
		n, has := m["nextPageToken"].(string)
		if has != (m["isLast"] == false) {
			t.Errorf("page %d: nextPageToken %v with isLast %v", page, has, m["isLast"])
		}
		if !has {
			break
		}
		next = n
	}
	if got := strings.Join(keys, ","); got != "PROJ-1,SHARED-2,PROJ-2,PROJ-3" {
		t.Errorf("issues across pages: %s", got)
	}
	// A token belongs to its query; an old or forged one is refused; offset paging is gone.
	q := url.Values{"jql": {jql}, "maxResults": {"1"}}
	_, m := getJSON(t, s, tok, base+q.Encode())
	token := m["nextPageToken"].(string)
	for name, q := range map[string]url.Values{
		"other query":  {"jql": {"project = PROJ"}, "nextPageToken": {token}},
		"forged token": {"jql": {jql}, "nextPageToken": {"MTAuMC4w"}},
		"startAt":      {"jql": {jql}, "startAt": {"2"}},
		"unbounded":    {"jql": {"ORDER BY updated DESC"}},
	} {
		if st, m := getJSON(t, s, tok, base+q.Encode()); st != http.StatusBadRequest {
			t.Errorf("%s: %d %v", name, st, m)
		}
	}
	s.Advance(8 * 24 * time.Hour)
	tok = bearerFor(t, s, Alice, "read:jira-work")
	if st, _ := getJSON(t, s, tok, base+url.Values{"jql": {jql}, "nextPageToken": {token}}.Encode()); st != http.StatusBadRequest {
		t.Errorf("token older than 7 days: %d", st)
	}
}

func TestConfluencePagesThroughV2WithGranularScopes(t *testing.T) {
	s := Start(Options{RedirectURIs: []string{cb}})
	defer s.Close()
	const pages = "/ex/confluence/" + AcmeSite + "/wiki/api/v2/pages/"
	classic := bearerFor(t, s, Alice, "read:confluence-content.all search:confluence")
	if st, _ := getJSON(t, s, classic, pages+"1001?body-format=view"); st != http.StatusUnauthorized {
		t.Errorf("v2 page with classic scopes only: %d, want 401", st)
	}
	if st, _ := getJSON(t, s, classic, "/ex/confluence/"+AcmeSite+"/wiki/rest/api/content/1001"); st != http.StatusNotFound {
		t.Errorf("v1 content on Cloud: %d, want 404 (not served)", st)
	}
	alice := bearerFor(t, s, Alice, "read:page:confluence read:space:confluence")
	st, m := getJSON(t, s, alice, pages+"1001?body-format=view")
	body, _ := m["body"].(map[string]any)
	view, _ := body["view"].(map[string]any)
	if st != 200 || m["title"] != "Payment service runbook" || m["spaceId"] == nil || view["value"] == nil || body["storage"] != nil {
		t.Fatalf("page: %d %v", st, m)
	}
	if _, ok := m["space"]; ok {
		t.Error("v2 pages carry spaceId, not space")
	}
	st, sp := getJSON(t, s, alice, "/ex/confluence/"+AcmeSite+"/wiki/api/v2/spaces/"+m["spaceId"].(string))
	if st != 200 || sp["name"] != "Engineering" || sp["key"] != "ENG" {
		t.Errorf("space: %d %v", st, sp)
	}
	if st, m := getJSON(t, s, alice, pages+"1001"); st != 200 || len(m["body"].(map[string]any)) != 0 {
		t.Errorf("no body-format: %d %v", st, m)
	}
	for name, c := range map[string]struct {
		path string
		want int
	}{
		"bad body-format":    {pages + "1001?body-format=html", 400},
		"non-numeric id":     {pages + "abc", 400},
		"page Alice may not": {pages + "1003?body-format=view", 404},
		"no such page":       {pages + "999999?body-format=view", 404},
	} {
		if st, _ := getJSON(t, s, alice, c.path); st != c.want {
			t.Errorf("%s: %d, want %d", name, st, c.want)
		}
	}
	bob := bearerFor(t, s, Bob, "read:page:confluence read:space:confluence")
	if st, _ := getJSON(t, s, bob, "/ex/confluence/"+AcmeSite+"/wiki/api/v2/spaces/"+m["spaceId"].(string)); st != http.StatusNotFound {
		t.Errorf("Bob reading the ENG space: %d, want 404", st)
	}
	// CQL search stays on v1 and takes the classic or the granular search scope.
	for _, scope := range []string{"search:confluence", "read:content-details:confluence"} {
		tok := bearerFor(t, s, Alice, scope)
		if st, _ := getJSON(t, s, tok, "/ex/confluence/"+AcmeSite+"/wiki/rest/api/search?cql="+url.QueryEscape(`type = page AND text ~ "payment"`)); st != 200 {
			t.Errorf("CQL with %s: %d", scope, st)
		}
	}
	if st, _ := getJSON(t, s, alice, "/ex/confluence/"+AcmeSite+"/wiki/rest/api/search?cql="+url.QueryEscape(`type = page`)); st != http.StatusUnauthorized {
		t.Errorf("CQL without a search scope: %d", st)
	}
}
