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
		{"plain PKCE", "code_challenge_method", "plain", "invalid_request"},
		{"no PKCE", "code_challenge", "", "invalid_request"},
		{"bad challenge", "code_challenge", "short", "invalid_request"},
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
	if got := get("/ex/confluence/" + AcmeSite + "/wiki/rest/api/content/1002"); got != http.StatusUnauthorized {
		t.Errorf("Confluence without its scope: %d", got)
	}
}
