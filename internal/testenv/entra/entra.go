// Package entra is a stand-in for Microsoft Entra ID (the v2.0 endpoints of one tenant) and
// for the App Service managed-identity endpoint, as real HTTPS servers.
//
// It implements, and enforces, what onbehalf relies on:
//   - OpenID discovery and signing keys: GET /{tenant}/v2.0/.well-known/openid-configuration,
//     GET /{tenant}/discovery/v2.0/keys (entra-docs v2-protocols-oidc.md).
//   - The token endpoint POST /{tenant}/oauth2/v2.0/token with the client-credentials grant
//     (entra-docs v2-oauth2-client-creds-grant-flow.md); the client authenticates with a
//     secret or with client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//     and a client_assertion that must match one of the app's federated identity credentials
//     exactly on issuer and subject, with an audience the credential lists
//     (entra-docs workload-identity-federation.md).
//   - The App Service managed-identity endpoint: GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…&client_id=…
//     with the X-IDENTITY-HEADER secret (app-service-docs overview-managed-identity.md,
//     "REST endpoint reference").
package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Grant and assertion types (RFC 6749, RFC 7523).
const (
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	TokenExchangeAud    = "api://AzureADTokenExchange"
)

// App is an app registration known to the tenant.
type App struct {
	ClientID string
	// Secrets are accepted client secrets (none for a secret-free app).
	Secrets []string
	// FederatedCredentials are trusted external identities (issuer + subject + audiences).
	FederatedCredentials []FederatedCredential
	// IdentifierURIs are the App ID URIs of the API the app exposes; a user assertion for
	// on-behalf-of must name one of them or the client id as aud. Default
	// ["api://botid-"+ClientID], the form Teams SSO for bots uses.
	IdentifierURIs []string
	// RequiredResourceAccess lists, per resource (e.g. GraphResource, "api://botid-…"), the
	// delegated scopes the app registration asks for: what a combined (.default) consent
	// prompt and GrantAdminConsent grant. Nothing is granted until a user or admin consents.
	RequiredResourceAccess map[string][]string
}

// FederatedCredential mirrors a federatedIdentityCredential of an app registration.
type FederatedCredential struct {
	Issuer    string
	Subject   string
	Audiences []string
}

// ManagedIdentity is a user-assigned managed identity in the tenant.
type ManagedIdentity struct {
	ClientID    string
	PrincipalID string
}

// Server is the tenant's stand-in.
type Server struct {
	// URL is the authority host (https://127.0.0.1:port): ENTRA_AUTHORITY_HOST.
	URL string
	// Tenant is the tenant id.
	Tenant string
	// IdentityEndpoint and IdentityHeader are what App Service sets as IDENTITY_ENDPOINT and
	// IDENTITY_HEADER for the managed-identity protocol.
	IdentityEndpoint string
	IdentityHeader   string
	// TokenLifetime is the lifetime of issued tokens (default 1 h).
	TokenLifetime time.Duration
	// Now is the clock.
	Now func() time.Time

	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	obo *oboState // users, SSO and on-behalf-of (obo.go)

	mu     sync.Mutex
	apps   map[string]*App
	mis    map[string]ManagedIdentity
	counts map[string]int
	hooks  map[string]GrantHandler
}

// GrantHandler lets other stand-in features (on-behalf-of, …) add grant types; it returns the
// JSON response and status. client is the authenticated app.
type GrantHandler func(s *Server, client *App, form url.Values) (int, any)

// New starts the stand-in on a loopback port with a certificate from the shared test CA.
func New(tenant string) *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{
		Tenant: tenant, key: key, kid: "entra-" + uuid.NewString()[:8],
		IdentityHeader: uuid.NewString(),
		apps:           map[string]*App{}, mis: map[string]ManagedIdentity{}, counts: map[string]int{}, hooks: map[string]GrantHandler{},
		obo: newOBOState(),
	}
	s.hooks[JWTBearerGrant] = (*Server).onBehalfOf
	s.hooks[RefreshTokenGrant] = (*Server).redeemRefresh
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.jwks)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /msi/token", s.managedIdentity)
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	s.IdentityEndpoint = s.srv.URL + "/msi/token"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Issuer is the tenant's v2.0 issuer.
func (s *Server) Issuer() string { return s.URL + "/" + s.Tenant + "/v2.0" }

// AddApp registers an app.
func (s *Server) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := a
	s.apps[a.ClientID] = &cp
	for _, sec := range a.Secrets {
		logcheck.Issue("client secret", sec)
	}
}

// AddManagedIdentity registers a user-assigned managed identity.
func (s *Server) AddManagedIdentity(mi ManagedIdentity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mis[mi.ClientID] = mi
}

// HandleGrant installs a handler for another grant type.
func (s *Server) HandleGrant(grantType string, h GrantHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks[grantType] = h
}

// Count returns how many successful requests of a kind were served: "client_credentials",
// "managed_identity", or any grant type added with HandleGrant.
func (s *Server) Count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

func (s *Server) count(kind string) {
	s.mu.Lock()
	s.counts[kind]++
	s.mu.Unlock()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) lifetime() time.Duration {
	if s.TokenLifetime > 0 {
		return s.TokenLifetime
	}
	return time.Hour
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != s.Tenant {
		oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
		return
	}
	base := s.URL + "/" + s.Tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.Issuer(),
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "WW",
	})
}

// PublicKeys returns the tenant's signing keys as a JWKS document.
func (s *Server) PublicKeys() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}}}
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.PublicKeys())
}

// Sign issues a token signed by the tenant's key with the given claims.
func (s *Server) Sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.kid))
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	logcheck.Issue("Entra token", tok)
	return tok
}

// Verify checks a token this tenant issued: signature, issuer, expiry, and audience.
func (s *Server) Verify(token, audience string) (map[string]any, error) {
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT: %w", err)
	}
	var std jwt.Claims
	var all map[string]any
	if err := parsed.Claims(&s.key.PublicKey, &std, &all); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	issuers := []string{s.Issuer(), "https://sts.windows.net/" + s.Tenant + "/"}
	ok := false
	for _, iss := range issuers {
		if std.Issuer == iss {
			ok = true
		}
	}
	if !ok {
		return nil, fmt.Errorf("issuer %q is not this tenant", std.Issuer)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{audience}, Time: s.now()}, 5*time.Minute); err != nil {
		return nil, err
	}
	if std.Expiry == nil { // Entra never issues a token without exp
		return nil, fmt.Errorf("token has no exp claim")
	}
	return all, nil
}

func (s *Server) issueFor(client *App, resource string, extra map[string]any) map[string]any {
	now := s.now()
	claims := map[string]any{
		"iss": s.Issuer(), "aud": resource, "tid": s.Tenant, "azp": client.ClientID, "appid": client.ClientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.lifetime()).Unix(), "ver": "2.0",
		"uti": uuid.NewString(), "idtyp": "app", "sub": client.ClientID, "oid": client.ClientID,
	}
	for k, v := range extra {
		claims[k] = v
	}
	return claims
}

// TokenResponse builds an OAuth 2.0 token response for claims.
func (s *Server) TokenResponse(claims map[string]any, scope string) map[string]any {
	return map[string]any{
		"token_type":     "Bearer",
		"access_token":   s.Sign(claims),
		"expires_in":     int(s.lifetime().Seconds()),
		"ext_expires_in": int(s.lifetime().Seconds()),
		"scope":          scope,
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != s.Tenant {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant not found.")
		return
	}
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must be form-encoded.")
		return
	}
	form := r.PostForm
	client, status, code, desc := s.authenticateClient(form)
	if client == nil {
		oauthError(w, status, code, desc)
		return
	}
	grant := form.Get("grant_type")
	switch grant {
	case "client_credentials":
		scope := form.Get("scope")
		resources := ResourceScopes(scope)
		resource, ok := "", len(resources) == 1
		if ok {
			resource, ok = strings.CutSuffix(resources[0], "/.default")
		}
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
			return
		}
		s.count("client_credentials")
		writeJSON(w, http.StatusOK, s.TokenResponse(s.issueFor(client, resource, nil), scope))
	default:
		s.mu.Lock()
		h := s.hooks[grant]
		s.mu.Unlock()
		if h == nil {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
			return
		}
		st, body := h(s, client, form)
		if st == http.StatusOK {
			s.count(grant)
		}
		writeJSON(w, st, body)
	}
}

// oidcScopes may accompany any request; Entra ignores them for app-only and on-behalf-of
// tokens (MSAL always appends them: apps/internal/oauth/ops/accesstokens AppendDefaultScopes).
var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

// ResourceScopes returns the scopes of a request that name a resource (not OIDC scopes).
func ResourceScopes(scope string) []string {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if !oidcScopes[sc] {
			out = append(out, sc)
		}
	}
	return out
}

// authenticateClient checks client_id and its secret or federated assertion.
func (s *Server) authenticateClient(form url.Values) (*App, int, string, string) {
	s.mu.Lock()
	app := s.apps[form.Get("client_id")]
	s.mu.Unlock()
	if app == nil {
		return nil, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application not found in the directory."
	}
	if sec := form.Get("client_secret"); sec != "" {
		for _, want := range app.Secrets {
			if sec == want {
				return app, 0, "", ""
			}
		}
		return nil, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided."
	}
	if form.Get("client_assertion_type") != ClientAssertionType || form.Get("client_assertion") == "" {
		return nil, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain client_assertion or client_secret."
	}
	assertion := form.Get("client_assertion")
	parsed, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, http.StatusUnauthorized, "invalid_client", "AADSTS50027: Invalid JWT token."
	}
	var peek jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&peek); err != nil {
		return nil, http.StatusUnauthorized, "invalid_client", "AADSTS50027: Invalid JWT token."
	}
	// Only this tenant's own managed-identity tokens are trusted as an external issuer here.
	claims, err := s.Verify(assertion, TokenExchangeAud)
	if err != nil {
		return nil, http.StatusUnauthorized, "invalid_client", "AADSTS700211: No matching federated identity record found for presented assertion issuer, or the assertion failed validation."
	}
	sub, _ := claims["sub"].(string)
	iss, _ := claims["iss"].(string)
	for _, fc := range app.FederatedCredentials {
		if fc.Issuer != iss || fc.Subject != sub {
			continue
		}
		for _, aud := range fc.Audiences {
			if aud == TokenExchangeAud {
				return app, 0, "", ""
			}
		}
	}
	return nil, http.StatusUnauthorized, "invalid_client", "AADSTS700213: No matching federated identity record found for presented assertion subject."
}

func (s *Server) managedIdentity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Header.Get("X-IDENTITY-HEADER") != s.IdentityHeader {
		http.Error(w, `{"statusCode":401,"message":"X-IDENTITY-HEADER is missing or wrong"}`, http.StatusUnauthorized)
		return
	}
	if q.Get("api-version") != "2019-08-01" {
		http.Error(w, `{"statusCode":400,"message":"unsupported api-version"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	mi, ok := s.mis[q.Get("client_id")]
	s.mu.Unlock()
	resource := q.Get("resource")
	if !ok || resource == "" {
		http.Error(w, `{"statusCode":400,"message":"No managed identity found for the specified client_id, or no resource"}`, http.StatusBadRequest)
		return
	}
	now := s.now()
	exp := now.Add(s.lifetime())
	tok := s.Sign(map[string]any{
		"iss": s.Issuer(), "aud": resource, "sub": mi.PrincipalID, "oid": mi.PrincipalID, "tid": s.Tenant,
		"azp": mi.ClientID, "appid": mi.ClientID, "iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "idtyp": "app",
	})
	s.count("managed_identity")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "expires_on": strconv.FormatInt(exp.Unix(), 10), "resource": resource,
		"token_type": "Bearer", "client_id": mi.ClientID,
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": time.Now().UTC().Format(time.RFC3339)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
