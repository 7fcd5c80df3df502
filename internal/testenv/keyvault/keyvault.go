// Package keyvault is a test stand-in for the Azure Key Vault secrets data plane: a real HTTPS
// server that speaks the subset of the REST API the azsecrets SDK uses for secrets, with the
// challenge-based bearer authentication the SDK performs.
//
// Rules it enforces, with their sources:
//   - Every request must carry a bearer token; a request without one gets 401 and a
//     WWW-Authenticate challenge naming the tenant's authority and the resource
//     "https://vault.azure.net" (learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses,
//     .../general/rest-error-codes "HTTP 401"). The SDK parses that challenge and asks its
//     credential for "<resource>/.default" in that tenant, and it refuses a challenge whose
//     resource is not a suffix of the vault host (azure-sdk-for-go
//     sdk/security/keyvault/internal/challenge_policy.go), so the vault is addressed as
//     https://<name>.vault.azure.net and the stand-in's Client routes that host to itself.
//   - Tokens issued by this stand-in's Credential for that scope and tenant, unexpired, are
//     accepted. With Options.Entra set, so are the access tokens an Entra tenant issues, as
//     Key Vault checks them (see verifyEntra): an RS256 JWT signed by one of the tenant's keys,
//     iss the tenant's issuer, aud exactly "https://vault.azure.net", tid the vault's tenant,
//     exp in the future; and the caller (oid) must hold a data-plane role on the vault, else
//     403 ForbiddenByRbac. Anything else is 401.
//   - api-version is a required query parameter (.../general/common-parameters-and-headers).
//   - Set Secret (PUT /secrets/{name}) creates a new version; Get Secret
//     (GET /secrets/{name}/{version}, empty version = current) returns the value; a disabled
//     version answers 403 Forbidden, inner code SecretDisabled ("Operation get is not allowed on
//     a disabled secret."); an unknown name or version answers 404 SecretNotFound; Update Secret
//     (PATCH /secrets/{name}/{version}) changes attributes such as enabled; Get Secret Versions
//     (GET /secrets/{name}/versions) lists versions without values, paged with maxresults
//     (at most 25) and nextLink; Delete Secret (DELETE /secrets/{name}) removes every version
//     (learn.microsoft.com/rest/api/keyvault/secrets/{set-secret,get-secret,update-secret,
//     get-secret-versions,delete-secret}).
//   - Timestamps are whole seconds, so versions set within one second tie on "created", and
//     the versions list is not in creation order (docs/fidelity.md, Key Vault).
//
// Test code can also change state directly (SetSecret, SetEnabled, DeleteSecret) and simulate
// an outage (SetDown) in which every connection is dropped without a response.
//
// Other processes reach the vault host through a CONNECT proxy (internal/testenv/tunnel) that
// maps <name>.vault.azure.net:443 to Addr, trusting CertificatePEM.
package keyvault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/go-jose/go-jose/v4"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Resource is the audience Key Vault names in its challenge.
const Resource = "https://vault.azure.net"

// Scope is what a client must ask its credential for after the challenge.
const Scope = Resource + "/.default"

// DefaultTenant is the tenant the stand-in names in its challenge unless Options.TenantID is set.
const DefaultTenant = "7e57e57e-0000-4000-8000-00000000c0de"

// Options configures New.
type Options struct {
	// VaultName becomes the host <VaultName>.vault.azure.net. Empty: "onbehalf-test".
	VaultName string
	// TenantID named in the challenge. Empty: DefaultTenant.
	TenantID string
	// TokenLifetime of the tokens Credential issues. Zero: one hour.
	TokenLifetime time.Duration
	// Now is the clock for secret timestamps and token expiry. Nil: time.Now.
	Now func() time.Time
	// Entra, if set, is a tenant whose access tokens the vault also accepts (a managed
	// identity's, from another process). Its tenant must be TenantID.
	Entra *EntraTrust
}

// EntraTrust describes the Entra tenant of the vault: who issues the tokens it accepts and who
// holds a role on it.
type EntraTrust struct {
	// Issuer is the tenant's token issuer, compared exactly with iss.
	Issuer string
	// Keys returns the tenant's current signing keys (its JWKS).
	Keys func() jose.JSONWebKeySet
	// Principals are the object ids (oid) granted a secrets role on the vault (Azure RBAC
	// "Key Vault Secrets User" or an access policy). A valid token of anyone else is 403.
	Principals []string
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	host   string
	tenant string
	life   time.Duration
	now    func() time.Time
	pool   *x509.CertPool

	entra   *EntraTrust
	certPEM []byte

	down     atomic.Bool
	requests atomic.Int64
	refused  atomic.Int64

	mu      sync.Mutex
	secrets map[string][]*version // oldest first
	tokens  map[string]time.Time  // issued access token -> expiry
	grants  int
}

type version struct {
	id          string
	value       string
	contentType string
	enabled     bool
	created     time.Time
	updated     time.Time
}

// New starts the stand-in on 127.0.0.1 with a fresh self-signed certificate for
// *.vault.azure.net. The caller must Close it.
func New(opts Options) (*Server, error) {
	s := &Server{
		host:    opts.VaultName,
		tenant:  opts.TenantID,
		life:    opts.TokenLifetime,
		now:     opts.Now,
		entra:   opts.Entra,
		secrets: map[string][]*version{},
		tokens:  map[string]time.Time{},
	}
	if s.host == "" {
		s.host = "onbehalf-test"
	}
	s.host += ".vault.azure.net"
	if s.tenant == "" {
		s.tenant = DefaultTenant
	}
	if s.life <= 0 {
		s.life = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.entra != nil && (s.entra.Issuer == "" || s.entra.Keys == nil || len(s.entra.Principals) == 0) {
		return nil, fmt.Errorf("keyvault stand-in: Options.Entra needs Issuer, Keys and Principals")
	}
	cert, pool, err := selfSigned(s.host)
	if err != nil {
		return nil, err
	}
	s.pool = pool
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	return s, nil
}

// Start is New for a test: it fails the test on error and closes the server at cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the vault URL to configure (https://<name>.vault.azure.net/). Only Client reaches it.
func (s *Server) URL() string { return "https://" + s.host + "/" }

// TenantID is the tenant named in the challenge.
func (s *Server) TenantID() string { return s.tenant }

// Host is the vault's host name, <name>.vault.azure.net.
func (s *Server) Host() string { return s.host }

// Addr is the loopback address the server listens on, for a proxy that routes Host to it.
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// CertificatePEM is the server's self-signed certificate, for another process's trust bundle.
func (s *Server) CertificatePEM() []byte { return s.certPEM }

// Refused counts requests answered 401 or 403 for their token (missing, invalid, or no role).
func (s *Server) Refused() int64 { return s.refused.Load() }

// Client returns an HTTP client that sends every request for the vault host to this server
// and trusts its certificate. Other hosts are refused, so nothing leaves the machine.
func (s *Server) Client() *http.Client {
	addr := s.srv.Listener.Addr().String()
	host := s.host
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			h, _, _ := net.SplitHostPort(a)
			if h != host {
				return nil, fmt.Errorf("keyvault stand-in client: refusing to dial %s", a)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
}

// Credential returns an azcore.TokenCredential whose tokens this server accepts. It refuses
// any scope other than Scope and any tenant other than the challenge's, as Entra would issue a
// token the vault rejects.
func (s *Server) Credential() azcore.TokenCredential { return credential{s} }

// Grants counts tokens issued by Credential.
func (s *Server) Grants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants
}

// Requests counts HTTP requests that reached the server (including refused ones).
func (s *Server) Requests() int64 { return s.requests.Load() }

// SetDown simulates an outage: while down, every connection is closed without a response.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// SetSecret adds a new enabled version of name and returns its version id.
func (s *Server) SetSecret(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addVersion(name, value, "", true)
}

// SetEnabled enables or disables one version. It reports whether the version exists.
func (s *Server) SetEnabled(name, ver string, enabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.find(name, ver)
	if v == nil {
		return false
	}
	v.enabled = enabled
	v.updated = s.now()
	return true
}

// DeleteSecret removes a secret and all its versions.
func (s *Server) DeleteSecret(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, name)
}

// Versions lists the version ids of name, oldest first.
func (s *Server) Versions(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, v := range s.secrets[name] {
		out = append(out, v.id)
	}
	return out
}

func (s *Server) addVersion(name, value, contentType string, enabled bool) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	// A secret's value is a secret (keys, client secrets); short or spaced test values would
	// match ordinary words, and are not recorded.
	if len(value) >= 16 && !strings.ContainsAny(value, " \t\n") {
		logcheck.Issue("Key Vault secret", value)
	}
	// Key Vault's attribute timestamps are whole seconds since the epoch (the REST API's
	// "created" is an integer), so two versions set within one second carry the same created
	// time; the stand-in keeps such ties, as the service does (docs/fidelity.md).
	created := s.now().UTC().Truncate(time.Second)
	s.secrets[name] = append(s.secrets[name], &version{
		id: id, value: value, contentType: contentType, enabled: enabled, created: created, updated: created,
	})
	return id
}

func (s *Server) find(name, ver string) *version {
	vs := s.secrets[name]
	if len(vs) == 0 {
		return nil
	}
	if ver == "" {
		return vs[len(vs)-1]
	}
	for _, v := range vs {
		if v.id == ver {
			return v
		}
	}
	return nil
}

// Secret names: 1-127 characters, letters, digits and dashes
// (learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers).
var nameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.down.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		// HTTP/2 connections cannot be hijacked; abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if status, msg := s.authorize(r); status != 0 {
		s.refused.Add(1)
		if status == http.StatusForbidden {
			// The service's answer to a caller without a role: 403 "Caller is not authorized to
			// perform action on resource.", inner code ForbiddenByRbac (learn.microsoft.com
			// azure/key-vault/general/rbac-guide; observed in learn.microsoft.com/answers
			// questions/2139767).
			writeError(w, status, "Forbidden", msg, "ForbiddenByRbac")
			return
		}
		w.Header().Set("WWW-Authenticate",
			fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="%s"`, s.tenant, Resource))
		writeError(w, http.StatusUnauthorized, "Unauthorized", msg, "")
		return
	}
	apiVersion := r.URL.Query().Get("api-version")
	if apiVersion == "" {
		writeError(w, http.StatusBadRequest, "BadParameter", "The api-version query parameter is required.", "")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "secrets" || !nameRE.MatchString(parts[1]) {
		writeError(w, http.StatusNotFound, "NotFound", "Unsupported path.", "")
		return
	}
	name := parts[1]
	rest := parts[2:]
	switch {
	case r.Method == http.MethodPut && len(rest) == 0:
		s.setSecret(w, r, name)
	case r.Method == http.MethodDelete && len(rest) == 0:
		s.deleteSecret(w, r, name)
	case r.Method == http.MethodGet && len(rest) == 1 && rest[0] == "versions":
		s.listVersions(w, r, name, apiVersion)
	case r.Method == http.MethodGet && len(rest) <= 1:
		ver := ""
		if len(rest) == 1 {
			ver = rest[0]
		}
		s.getSecret(w, r, name, ver)
	case r.Method == http.MethodPatch && len(rest) == 1:
		s.updateSecret(w, r, name, rest[0])
	default:
		writeError(w, http.StatusMethodNotAllowed, "BadRequest", "Unsupported operation.", "")
	}
}

// authorize returns 0 for an accepted bearer token, else the status (401 or 403) and message.
func (s *Server) authorize(r *http.Request) (int, string) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return http.StatusUnauthorized, "AKV10000: Request is missing a Bearer or PoP token."
	}
	s.mu.Lock()
	exp, own := s.tokens[tok]
	s.mu.Unlock()
	if own {
		if s.now().Before(exp) {
			return 0, ""
		}
		return http.StatusUnauthorized, "The access token is expired."
	}
	if s.entra == nil {
		return http.StatusUnauthorized, "The access token is not valid."
	}
	return s.verifyEntra(tok)
}

type attributesJSON struct {
	Enabled       *bool  `json:"enabled,omitempty"`
	Created       int64  `json:"created,omitempty"`
	Updated       int64  `json:"updated,omitempty"`
	RecoveryLevel string `json:"recoveryLevel,omitempty"`
}

type bundleJSON struct {
	ID          string         `json:"id"`
	Value       *string        `json:"value,omitempty"`
	ContentType string         `json:"contentType,omitempty"`
	Attributes  attributesJSON `json:"attributes"`
}

func (s *Server) bundle(r *http.Request, name string, v *version, withValue bool) bundleJSON {
	b := bundleJSON{
		ID:          fmt.Sprintf("https://%s/secrets/%s/%s", s.host, name, v.id),
		ContentType: v.contentType,
		Attributes: attributesJSON{
			Enabled:       &v.enabled,
			Created:       v.created.Unix(),
			Updated:       v.updated.Unix(),
			RecoveryLevel: "Recoverable+Purgeable",
		},
	}
	if withValue {
		val := v.value
		b.Value = &val
	}
	return b
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, name, ver string) {
	s.mu.Lock()
	v := s.find(name, ver)
	var b bundleJSON
	if v != nil && v.enabled {
		b = s.bundle(r, name, v, true)
	}
	s.mu.Unlock()
	switch {
	case v == nil:
		writeError(w, http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s/%s was not found in this key vault.", name, ver), "")
	case !v.enabled:
		writeError(w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Value       *string         `json:"value"`
		ContentType string          `json:"contentType"`
		Attributes  *attributesJSON `json:"attributes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Value == nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request body must hold a value.", "")
		return
	}
	enabled := true
	if body.Attributes != nil && body.Attributes.Enabled != nil {
		enabled = *body.Attributes.Enabled
	}
	s.mu.Lock()
	id := s.addVersion(name, *body.Value, body.ContentType, enabled)
	b := s.bundle(r, name, s.find(name, id), true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) updateSecret(w http.ResponseWriter, r *http.Request, name, ver string) {
	var body struct {
		ContentType *string         `json:"contentType"`
		Attributes  *attributesJSON `json:"attributes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "Malformed body.", "")
		return
	}
	s.mu.Lock()
	v := s.find(name, ver)
	var b bundleJSON
	if v != nil {
		if body.Attributes != nil && body.Attributes.Enabled != nil {
			v.enabled = *body.Attributes.Enabled
		}
		if body.ContentType != nil {
			v.contentType = *body.ContentType
		}
		v.updated = s.now().UTC()
		b = s.bundle(r, name, v, false)
	}
	s.mu.Unlock()
	if v == nil {
		writeError(w, http.StatusNotFound, "SecretNotFound", "Secret not found: "+name, "")
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	v := s.find(name, "")
	var b bundleJSON
	if v != nil {
		b = s.bundle(r, name, v, false)
		delete(s.secrets, name)
	}
	s.mu.Unlock()
	if v == nil {
		writeError(w, http.StatusNotFound, "SecretNotFound", "Secret not found: "+name, "")
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, name, apiVersion string) {
	q := r.URL.Query()
	max := 25
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 25 {
			writeError(w, http.StatusBadRequest, "BadParameter", "maxresults must be between 1 and 25.", "")
			return
		}
		max = n
	}
	skip := 0
	if t := q.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "BadParameter", "Bad $skiptoken.", "")
			return
		}
		skip = n
	}
	s.mu.Lock()
	// The service documents no order for this list, and it is observed not to be creation order
	// (Azure/azure-sdk-for-python#35923): the stand-in lists by version id, which is random, so
	// a client that takes "last listed" for "newest" fails here as it would in Azure.
	vs := slices.Clone(s.secrets[name])
	slices.SortFunc(vs, func(a, b *version) int { return strings.Compare(a.id, b.id) })
	page := struct {
		Value    []bundleJSON `json:"value"`
		NextLink *string      `json:"nextLink"`
	}{Value: []bundleJSON{}}
	for i := skip; i < len(vs) && i < skip+max; i++ {
		page.Value = append(page.Value, s.bundle(r, name, vs[i], false))
	}
	s.mu.Unlock()
	if skip+max < len(vs) {
		next := fmt.Sprintf("https://%s/secrets/%s/versions?api-version=%s&$skiptoken=%d&maxresults=%d",
			s.host, name, apiVersion, skip+max, max)
		page.NextLink = &next
	}
	writeJSON(w, http.StatusOK, page)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Key Vault's error shape: {"error":{"code","message","innererror"}}
// (learn.microsoft.com/azure/key-vault/general/common-parameters-and-headers "Common error response").
func writeError(w http.ResponseWriter, status int, code, msg, inner string) {
	e := map[string]any{"code": code, "message": msg}
	if inner != "" {
		e["innererror"] = map[string]string{"code": inner}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

type credential struct{ s *Server }

var _ azcore.TokenCredential = credential{}

// GetToken issues an opaque access token for the vault, checking what Entra would: the scope
// must be the vault resource's .default scope and the tenant the one the challenge named.
func (c credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(o.Scopes) != 1 || o.Scopes[0] != Scope {
		return azcore.AccessToken{}, fmt.Errorf("keyvault stand-in credential: scopes %q, want [%s]", o.Scopes, Scope)
	}
	if o.TenantID != "" && o.TenantID != c.s.tenant {
		return azcore.AccessToken{}, fmt.Errorf("keyvault stand-in credential: tenant %q, want %q", o.TenantID, c.s.tenant)
	}
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "kv-" + hex.EncodeToString(b)
	exp := c.s.now().Add(c.s.life)
	c.s.mu.Lock()
	c.s.tokens[tok] = exp
	logcheck.Issue("Key Vault access token", tok)
	c.s.grants++
	c.s.mu.Unlock()
	return azcore.AccessToken{Token: tok, ExpiresOn: exp, RefreshOn: exp.Add(-c.s.life / 2)}, nil
}

func selfSigned(host string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host, "*.vault.azure.net"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
