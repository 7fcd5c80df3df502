// Package rotatingissuer is a small, generic OAuth 2.0 token endpoint for tests that issues
// rotating refresh tokens and punishes reuse the way Atlassian (and RFC 9700 §4.14.2
// "refresh token rotation") describe: every refresh returns a new refresh token, and
// presenting a refresh token that was already used revokes the whole token family, answering
// invalid_grant. Unlike Atlassian it allows no reuse leeway, so a test that passes here never
// relies on one.
//
// Protocol (RFC 6749): POST the token endpoint with Content-Type
// application/x-www-form-urlencoded (§3.2, §6), grant_type=refresh_token, refresh_token and
// client_id (in the body or HTTP Basic, §2.3.1). Success is 200 JSON with access_token,
// token_type, expires_in (seconds) and refresh_token (§5.1); errors are 400 JSON with error
// invalid_request, unsupported_grant_type, invalid_client or invalid_grant (§5.2).
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package rotatingissuer

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Options configures Start.
type Options struct {
	// ClientID is the only client accepted. Empty: "test-client".
	ClientID string
	// AccessTTL is the access-token lifetime; it is reported as whole seconds in expires_in,
	// so use whole seconds. Zero: one hour.
	AccessTTL time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Refresh records one successful refresh.
type Refresh struct {
	At time.Time
	// PrevRemaining is how long the previous access token of the family still had to live.
	PrevRemaining time.Duration
}

// Stats counts what the issuer saw.
type Stats struct {
	Refreshes     []Refresh
	Reuses        int // refresh tokens presented a second time (each revoked a family)
	InvalidGrants int // invalid_grant answers, for any reason
}

// Issuer is a running token endpoint. Safe for concurrent use.
type Issuer struct {
	srv      *httptest.Server
	clientID string
	ttl      time.Duration
	now      func() time.Time

	mu       sync.Mutex
	refresh  map[string]*rtState // refresh token -> state
	access   map[string]*atState
	families map[string]*family
	stats    Stats
}

type family struct {
	revoked    bool
	lastExpiry time.Time
}

type rtState struct {
	fam  string
	used bool
}

type atState struct {
	fam string
	exp time.Time
}

// Start runs the issuer on 127.0.0.1 until the test ends.
func Start(t testing.TB, o Options) *Issuer {
	t.Helper()
	i := &Issuer{
		clientID: o.ClientID, ttl: o.AccessTTL, now: o.Now,
		refresh: map[string]*rtState{}, access: map[string]*atState{}, families: map[string]*family{},
	}
	if i.clientID == "" {
		i.clientID = "test-client"
	}
	if i.ttl <= 0 {
		i.ttl = time.Hour
	}
	if i.now == nil {
		i.now = time.Now
	}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	return i
}

// TokenURL is the token endpoint.
func (i *Issuer) TokenURL() string { return i.srv.URL + "/token" }

// ClientID is the accepted client id.
func (i *Issuer) ClientID() string { return i.clientID }

// Seed starts a new token family, as a completed authorization-code grant would, and returns
// its first access token, refresh token and the access token's expiry.
func (i *Issuer) Seed() (access, refresh string, expiry time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	fam := randHex()
	i.families[fam] = &family{}
	return i.issueLocked(fam)
}

func (i *Issuer) issueLocked(fam string) (string, string, time.Time) {
	at, rt := "at-"+randHex(), "rt-"+randHex()
	logcheck.Issue("rotating issuer access token", at)
	logcheck.Issue("rotating issuer refresh token", rt)
	exp := i.now().Add(i.ttl)
	i.access[at] = &atState{fam: fam, exp: exp}
	i.refresh[rt] = &rtState{fam: fam}
	i.families[fam].lastExpiry = exp
	return at, rt, exp
}

// Valid reports whether access is an unexpired access token of a family not revoked.
func (i *Issuer) Valid(access string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	a := i.access[access]
	return a != nil && i.now().Before(a.exp) && !i.families[a.fam].revoked
}

// Stats returns a copy of the counters.
func (i *Issuer) Stats() Stats {
	i.mu.Lock()
	defer i.mu.Unlock()
	s := i.stats
	s.Refreshes = append([]Refresh(nil), i.stats.Refreshes...)
	return s
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	client := r.PostForm.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok {
		client = u
	}
	if client != i.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}

	i.mu.Lock()
	st := i.refresh[rt]
	switch {
	case st == nil || i.families[st.fam].revoked:
		i.stats.InvalidGrants++
		i.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	case st.used:
		// Reuse: the token may have been stolen; revoke everything descended from it.
		i.families[st.fam].revoked = true
		i.stats.Reuses++
		i.stats.InvalidGrants++
		i.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	st.used = true
	now := i.now()
	prev := i.families[st.fam].lastExpiry
	at, nrt, _ := i.issueLocked(st.fam)
	i.stats.Refreshes = append(i.stats.Refreshes, Refresh{At: now, PrevRemaining: prev.Sub(now)})
	i.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token":  at,
		"token_type":    "Bearer",
		"expires_in":    int(i.ttl / time.Second),
		"refresh_token": nrt,
	})
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func randHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
