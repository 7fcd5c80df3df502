package oauth2

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRevokeSendsTheRefreshToken(t *testing.T) {
	var got map[string]string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = map[string]string{"token": r.PostForm.Get("token"), "hint": r.PostForm.Get("token_type_hint"),
			"id": r.PostForm.Get("client_id"), "secret": r.PostForm.Get("client_secret")}
		if got["secret"] != "s" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := Config{Name: "svc", AuthURL: "https://a/authorize", TokenURL: "https://a/token", APIBaseURL: "https://api",
		ClientID: "id", ClientSecretName: "n", RevokeURL: srv.URL + "/revoke"}
	c, err := cfg.Open(Runtime{RedirectURL: "https://bot/cb", Secret: noSecret, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanRevoke() {
		t.Fatal("CanRevoke false")
	}
	if err := c.Revoke(context.Background(), &Token{AccessToken: "at", RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	if got["token"] != "rt" || got["hint"] != "refresh_token" || got["id"] != "id" {
		t.Errorf("sent %v", got)
	}

	cfg.RevokeURL = ""
	c2, _ := cfg.Open(Runtime{RedirectURL: "https://bot/cb", Secret: noSecret, HTTPClient: srv.Client()})
	got = nil
	if err := c2.Revoke(context.Background(), &Token{RefreshToken: "rt"}); err != nil || got != nil {
		t.Errorf("revoke without endpoint: %v, request %v", err, got)
	}
}
