package atlassian

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Options configures a stand-in.
type Options struct {
	// ClientID, ClientSecret and RedirectURIs register the one OAuth 2.0 (3LO) app the
	// stand-in knows. Defaults: "test-client", "test-secret", and any redirect URI given on
	// the first authorize request is NOT accepted — RedirectURIs must be set.
	ClientID     string
	ClientSecret string
	RedirectURIs []string
	// World is the data; zero value means DefaultWorld().
	World *World
	// Now is the base clock; Advance moves the stand-in's time past it. Default time.Now.
	Now func() time.Time
	// AccessTokenTTL defaults to 1 h: "access tokens ... expire in 3600 seconds"
	// (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo).
	AccessTokenTTL time.Duration
	// CodeTTL is the authorization code's lifetime. Atlassian does not publish it; RFC 6749
	// §4.1.2 recommends at most 10 minutes. Default 10 min.
	CodeTTL time.Duration
	// ReuseLeeway defaults to the documented 10 minutes within which a rotated-out refresh
	// token may still be used (community.developer.atlassian.com "Deprecating persistent
	// refresh tokens", linked from developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens).
	ReuseLeeway time.Duration
	// Addr, when set, is the listen address (e.g. 127.0.0.1:8443) for the local sandbox;
	// default is a free port on 127.0.0.1.
	Addr string
	// DataCenter serves the Data Center layout instead of Cloud's: OAuth 2.0 incoming link
	// at /rest/oauth2/latest/authorize and /token (no audience or prompt; scopes READ/WRITE),
	// Jira REST at /rest/api/2, Confluence REST at /rest/api, one site (the World's first),
	// and /rest/api/2/myself instead of /me (confluence.atlassian.com "Jira OAuth 2.0 provider
	// API" and "Configure an incoming link").
	DataCenter bool
	// SearchPageLimit is the most issues one page of Jira's enhanced search returns, whatever
	// maxResults asks: "the API may return fewer items per page" (Search for issues using JQL
	// enhanced search, developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/;
	// confluence.atlassian.com/jirakb "Changing maxResults parameter for Jira Cloud REST
	// API"). Default 50, the documented default page size.
	SearchPageLimit int
}

// Server is a running stand-in. Its URL serves both auth.atlassian.com and api.atlassian.com
// paths.
type Server struct {
	// URL is the https base URL (https://127.0.0.1:port).
	URL string

	ts   *httptest.Server
	opts Options

	mu       sync.Mutex
	offset   time.Duration
	world    World
	codes    map[string]*authCode
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	families map[string]*family
	faults   []*Fault
	comments []Comment
	// counters
	tokenCalls int
	apiCalls   int
}

type authCode struct {
	clientID, redirectURI, user string
	scopes                      []string
	challenge                   string
	expires                     time.Time
	used                        bool
	family                      string // set when redeemed, for revocation on replay
}

type accessToken struct {
	user, family string
	scopes       []string
	expires      time.Time
	// revokeAt is set when the refresh token issued with this access token is spent: the
	// access token is revoked when the leeway ends.
	revokeAt time.Time
}

type refreshToken struct {
	family    string
	issued    time.Time
	usedAt    time.Time // zero = not yet used
	next      string    // refresh token issued when this one was used
	companion string    // the access token issued together with this refresh token
}

type family struct {
	id, user, clientID string
	scopes             []string
	created            time.Time
	revoked            bool
	refreshes          int
}

// Start runs a stand-in on 127.0.0.1 with a self-signed certificate; Close stops it.
// It panics when Options.Addr cannot be listened on (tests use the default).
func Start(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = "test-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "test-secret"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 10 * time.Minute
	}
	if opts.ReuseLeeway <= 0 {
		opts.ReuseLeeway = 10 * time.Minute
	}
	if opts.SearchPageLimit <= 0 {
		opts.SearchPageLimit = 50
	}
	logcheck.Issue("Atlassian client secret", opts.ClientSecret)
	s := &Server{
		opts:     opts,
		codes:    map[string]*authCode{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		families: map[string]*family{},
	}
	if opts.World != nil {
		s.world = *opts.World
	} else {
		s.world = DefaultWorld()
	}
	s.ts = httptest.NewUnstartedServer(s.routes())
	// Connections cut by Close mid-handshake are expected; keep test output readable.
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			panic(fmt.Sprintf("atlassian stand-in: %v", err))
		}
		s.ts.Listener.Close()
		s.ts.Listener = l
	}
	s.ts.StartTLS()
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Client returns an *http.Client that trusts the stand-in's certificate and does not follow
// redirects (so the authorize redirect can be read).
func (s *Server) Client() *http.Client {
	c := *s.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// CertificatePEM returns the server's self-signed certificate, for a sandbox process that
// must trust it (for example through SSL_CERT_FILE).
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}

// ClientID returns the registered client id.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the registered client secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Now is the stand-in's clock: the base clock plus every Advance.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

func (s *Server) now() time.Time { return s.opts.Now().Add(s.offset) }

// Advance moves the stand-in's clock forward, expiring codes and tokens.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// Refreshes counts successful refresh_token grants for the account, across its families.
func (s *Server) Refreshes(accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.families {
		if f.user == accountID {
			n += f.refreshes
		}
	}
	return n
}

// Revoked reports whether any token family of the account has been revoked.
func (s *Server) Revoked(accountID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.families {
		if f.user == accountID && f.revoked {
			return true
		}
	}
	return false
}

// TokenCalls counts every request to the token endpoint.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// APICalls counts every request to the REST APIs (everything but the authorize and token
// endpoints).
func (s *Server) APICalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiCalls
}

// Fault makes the next Times matching requests fail with Status (and Retry-After when set).
type Fault struct {
	// Target is "api" (REST, accessible-resources, /me) or "token" (the token endpoint).
	// Empty means "api".
	Target string
	// Status is the answer; 0 lets the request through after Delay.
	Status     int
	RetryAfter string
	// Delay holds the request before it is answered.
	Delay time.Duration
	// Times is how many requests fail; 0 means 1, negative means until Clear.
	Times int
	hits  int
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	if f.Target == "" {
		f.Target = "api"
	}
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// Clear removes every queued fault.
func (s *Server) Clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// FaultHits returns how many requests the queued faults have failed in total.
func (s *Server) FaultHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.hits
	}
	return n
}

// takeFault returns the fault to apply to a request of target, if any.
func (s *Server) takeFault(target string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Target == target && (f.Times < 0 || f.hits < f.Times) {
			f.hits++
			return f
		}
	}
	return nil
}

func (s *Server) withFault(target string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if target == "api" {
			s.mu.Lock()
			s.apiCalls++
			s.mu.Unlock()
		}
		if f := s.takeFault(target); f != nil {
			time.Sleep(f.Delay)
			if f.Status == 0 {
				h(w, r)
				return
			}
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			writeJSON(w, f.Status, map[string]any{"code": f.Status, "message": http.StatusText(f.Status)})
			return
		}
		h(w, r)
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	if s.opts.DataCenter {
		mux.HandleFunc("GET /rest/oauth2/latest/authorize", s.handleAuthorize)
		mux.HandleFunc("POST /rest/oauth2/latest/token", s.withFault("token", s.handleToken))
		mux.HandleFunc("GET /rest/api/2/myself", s.withFault("api", s.handleMyself))
		mux.HandleFunc("GET /rest/api/2/issue/{key}", s.withFault("api", s.handleIssue))
		mux.HandleFunc("GET /rest/api/2/search", s.withFault("api", s.handleSearchDC))
		mux.HandleFunc("GET /rest/api/search", s.withFault("api", s.handleCQL))
		mux.HandleFunc("GET /rest/api/content/{id}", s.withFault("api", s.handleContent))
		return mux
	}
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth/token", s.withFault("token", s.handleToken))
	mux.HandleFunc("GET /oauth/token/accessible-resources", s.withFault("api", s.handleResources))
	mux.HandleFunc("GET /me", s.withFault("api", s.handleMe))
	mux.HandleFunc("GET /ex/jira/{cloudid}/rest/api/3/issue/{key}", s.withFault("api", s.handleIssue))
	mux.HandleFunc("GET /ex/jira/{cloudid}/rest/api/3/search/jql", s.withFault("api", s.handleSearch))
	mux.HandleFunc("POST /ex/jira/{cloudid}/rest/api/3/issue/{key}/comment", s.withFault("api", s.handleAddComment))
	mux.HandleFunc("GET /ex/confluence/{cloudid}/wiki/rest/api/search", s.withFault("api", s.handleCQL))
	// Pages are read through REST v2; the v1 content resource is not served on Cloud, so a
	// client still using it fails here first.
	mux.HandleFunc("GET /ex/confluence/{cloudid}/wiki/api/v2/pages/{id}", s.withFault("api", s.handlePageV2))
	mux.HandleFunc("GET /ex/confluence/{cloudid}/wiki/api/v2/spaces/{id}", s.withFault("api", s.handleSpaceV2))
	return mux
}

// AuthorizeAs plays the browser: it follows authorizeURL at the stand-in as accountID, who
// grants consent, and returns the redirect URL (the app's callback with code and state, or
// with error). An error means the stand-in refused to redirect at all (bad client or
// redirect_uri).
func (s *Server) AuthorizeAs(accountID, authorizeURL string) (string, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("login_as", accountID)
	u.RawQuery = q.Encode()
	resp, err := s.Client().Get(u.String())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("authorize: HTTP %d", resp.StatusCode)
	}
	return resp.Header.Get("Location"), nil
}

func randomToken(prefix string) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	tok := prefix + base64.RawURLEncoding.EncodeToString(b)
	logcheck.Issue("Atlassian "+strings.TrimSuffix(prefix, "-"), tok)
	return tok
}

func (s *Server) user(id string) (User, bool) {
	for _, u := range s.world.Users {
		if u.AccountID == id {
			return u, true
		}
	}
	return User{}, false
}

// bearer authenticates an API call: the access token must be known, unexpired, not past the
// leeway after its companion refresh token was spent, and from a family that is not revoked,
// else 401 as the gateway answers for a missing or expired token. When anyOf is not empty the
// token must carry one of those scopes.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request, anyOf ...string) (User, []string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	s.mu.Lock()
	at := s.access[tok]
	var fam *family
	if at != nil {
		fam = s.families[at.family]
	}
	now := s.now()
	valid := ok && at != nil && now.Before(at.expires) && (at.revokeAt.IsZero() || now.Before(at.revokeAt)) &&
		fam != nil && !fam.revoked
	var u User
	var scopes []string
	if valid {
		u, _ = s.user(at.user)
		scopes = at.scopes
	}
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api.atlassian.com"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Unauthorized"})
		return User{}, nil, false
	}
	if s.opts.DataCenter && (contains(scopes, "READ") || contains(scopes, "WRITE")) {
		anyOf = nil // Data Center's READ covers every read in this subset
	}
	if len(anyOf) > 0 && !slices.ContainsFunc(anyOf, func(sc string) bool { return contains(scopes, sc) }) {
		// Scopes are enforced on each API (developer.atlassian.com/cloud/jira/platform/scopes-for-oauth-2-3LO-and-forge-apps).
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Unauthorized; scope does not match"})
		return User{}, nil, false
	}
	return u, scopes, true
}

var errNoSite = errors.New("no such site for this grant")
