package oauth2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// staticSource yields one token and cannot refresh.
type staticSource struct{ tok *Token }

func (s staticSource) Token(context.Context) (*Token, error) { return s.tok, nil }

var _ TokenSource = staticSource{}

func apiConnector(t *testing.T, api *httptest.Server) *Connector {
	t.Helper()
	c, err := Config{Name: "svc", AuthURL: "https://auth.example/authorize", TokenURL: "https://auth.example/token",
		APIBaseURL: api.URL, ClientID: "id", ClientSecretName: "n"}.Open(Runtime{
		RedirectURL: "https://bot.example/api/oauth/callback", Secret: noSecret, HTTPClient: api.Client(),
		Retry: RetryPolicy{Backoff: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientReplaysBodiesAndKeepsTokenOnItsAPI(t *testing.T) {
	var calls atomic.Int32
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer at-1" || string(b) != `{"q":1}` {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer api.Close()
	hc := apiConnector(t, api).Client(staticSource{&Token{AccessToken: "at-1"}})

	resp, err := hc.Post(api.URL+"/x", "application/json", strings.NewReader(`{"q":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls.Load() != 2 {
		t.Fatalf("status %d after %d calls", resp.StatusCode, calls.Load())
	}

	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the token was sent to another origin")
	}))
	defer other.Close()
	if _, err := hc.Get(other.URL + "/steal"); err == nil || !strings.Contains(err.Error(), "not the connector's API") {
		t.Fatalf("other origin: %v", err)
	}
}

func TestUnauthorizedWithoutRefresherMeansReconnect(t *testing.T) {
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	hc := apiConnector(t, api).Client(staticSource{&Token{AccessToken: "at"}})
	_, err := hc.Get(api.URL + "/x")
	if !errors.Is(err, ErrReconnect) {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelledContextStopsRetries(t *testing.T) {
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer api.Close()
	c := apiConnector(t, api)
	c.rt.Retry.MaxRetryAfter = 10 * time.Second
	hc := c.Client(staticSource{&Token{AccessToken: "at"}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/x", nil)
	start := time.Now()
	_, err := hc.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}
