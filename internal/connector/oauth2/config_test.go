package oauth2

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// githubExample is the example from Config's doc comment.
const githubExample = `{
  "name": "github",
  "displayName": "GitHub",
  "authURL": "https://github.com/login/oauth/authorize",
  "tokenURL": "https://github.com/login/oauth/access_token",
  "apiBaseURL": "https://api.github.com",
  "scopes": ["read:user", "repo"],
  "clientID": "Iv1.0123456789abcdef",
  "clientSecretName": "github-client-secret",
  "authStyle": "params",
  "authParams": {"allow_signup": "false"}
}`

func noSecret(context.Context, string) (string, error) { return "s", nil }

func TestDocumentedExampleOpens(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(githubExample), &c); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Open(Runtime{RedirectURL: "https://bot.example.com/api/oauth/callback", Secret: noSecret})
	if err != nil {
		t.Fatal(err)
	}
	u := conn.AuthCodeURL("st", NewVerifier())
	for _, want := range []string{"https://github.com/login/oauth/authorize?", "allow_signup=false", "code_challenge_method=S256",
		"scope=read%3Auser+repo", "state=st", "redirect_uri=https%3A%2F%2Fbot.example.com%2Fapi%2Foauth%2Fcallback"} {
		if !strings.Contains(u, want) {
			t.Errorf("auth URL %s lacks %s", u, want)
		}
	}
	if conn.DisplayName() != "GitHub" || conn.Name() != "github" {
		t.Error("names")
	}
}

func TestConfigValidationNamesEveryProblem(t *testing.T) {
	c := Config{Name: "Bad Name", AuthURL: "http://x", TokenURL: "", APIBaseURL: "https://api", AuthStyle: "cookie",
		AuthParams: map[string]string{"state": "x"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"name", "authURL", "tokenURL", "clientID", "clientSecretName", "authStyle", `"state" is set by the connector`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	good := Config{Name: "svc", AuthURL: "https://a/authorize", TokenURL: "https://a/token", APIBaseURL: "https://api", ClientID: "id", ClientSecretName: "n"}
	for _, rt := range []Runtime{
		{RedirectURL: "http://evil.example.com/cb", Secret: noSecret},
		{RedirectURL: "https://bot/cb"},
	} {
		if _, err := good.Open(rt); err == nil {
			t.Errorf("Open accepted %+v", rt.RedirectURL)
		}
	}
	if _, err := good.Open(Runtime{RedirectURL: "http://127.0.0.1:3978/api/oauth/callback", Secret: noSecret}); err != nil {
		t.Errorf("loopback redirect refused: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {" 30 ", 30 * time.Second}, {"-1", 0}, {"soon", 0},
		{"Mon, 23 Nov 2026 12:01:00 GMT", time.Minute}, {"Mon, 23 Nov 2026 11:00:00 GMT", 0},
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("%q → %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestTokenFresh(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		tok  *Token
		want bool
	}{
		{nil, false},
		{&Token{}, false},
		{&Token{AccessToken: "a"}, true},
		{&Token{AccessToken: "a", Expiry: now.Add(time.Hour)}, true},
		{&Token{AccessToken: "a", Expiry: now.Add(time.Minute)}, false}, // inside the margin
		{&Token{AccessToken: "a", Expiry: now.Add(-time.Minute)}, false},
	} {
		if got := tc.tok.Fresh(now); got != tc.want {
			t.Errorf("%+v fresh = %v", tc.tok, got)
		}
	}
}
