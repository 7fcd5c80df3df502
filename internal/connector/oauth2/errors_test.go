package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// How token-endpoint refusals are classified: a dead refresh token asks the user to
// reconnect; a refused client is an operator's problem.
func TestTokenEndpointRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		code      string
		desc      string
		refresh   bool
		reconnect bool
	}{
		{"invalid_grant on refresh", 400, "invalid_grant", "refresh token expired", true, true},
		{"Atlassian's dead refresh token", 403, "unauthorized_client", "refresh_token is invalid", true, true},
		{"client refused on refresh", 401, "invalid_client", "bad secret", true, false},
		{"unauthorized_client on the code exchange", 403, "unauthorized_client", "refresh_token is invalid", false, false},
		{"unauthorized_client for another reason", 403, "unauthorized_client", "client is not allowed this grant", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": tc.code, "error_description": tc.desc})
			}))
			defer srv.Close()
			cfg := Config{Name: "svc", AuthURL: "https://a/authorize", TokenURL: srv.URL + "/token", APIBaseURL: "https://api",
				ClientID: "id", ClientSecretName: "n"}
			c, err := cfg.Open(Runtime{RedirectURL: "https://bot/cb", Secret: noSecret, HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			if tc.refresh {
				_, err = c.Refresh(context.Background(), "rt")
			} else {
				_, err = c.Exchange(context.Background(), "code", "verifier")
			}
			if got := errors.Is(err, ErrReconnect); got != tc.reconnect {
				t.Fatalf("err %v: reconnect = %v, want %v", err, got, tc.reconnect)
			}
			if !tc.reconnect && !errors.Is(err, ErrMisconfigured) {
				t.Fatalf("err %v: want misconfigured", err)
			}
		})
	}
}
