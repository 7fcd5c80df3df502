package entra

// Users, Teams SSO tokens and the on-behalf-of flow.
//
// Sources:
//   - entra-docs identity-platform/v2-oauth2-on-behalf-of-flow.md: the OBO request
//     (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer, requested_token_use=on_behalf_of,
//     assertion, scope), the success response (token_type, scope, expires_in, ext_expires_in,
//     access_token, refresh_token only with offline_access) and the error response with a
//     `claims` member for conditional access.
//   - entra-docs identity-platform/access-token-claims-reference.md: v1/v2 access-token claims
//     (aud, iss, tid, oid, sub pairwise per app, scp, azp/appid, name, preferred_username, ver).
//   - entra-docs identity-platform/claims-challenge.md: interaction_required with `claims`.
//   - entra-docs identity-platform/reference-error-codes.md: AADSTS50013 (invalid assertion),
//     AADSTS50027 (malformed JWT), AADSTS500131 (assertion audience does not match),
//     AADSTS500133 (assertion not within its valid time range), AADSTS50034 (user not in
//     directory), AADSTS65001 (consent_required), AADSTS28000 (several resources in scope),
//     AADSTS70011 (invalid scope).
//   - msteams-docs bots/how-to/authentication/bot-sso-code.md and tabs/how-to/authentication/
//     tab-sso-token-graph-api.md: the token Teams obtains for the bot's API (aud
//     api://botid-{appId}, scp access_as_user, azp = the Teams client).
//   - MSAL Go apps/internal/oauth/ops/accesstokens/accesstokens.go (FromUserAssertion*,
//     client_info=1) and tokens.go (ClientInfo): MSAL asks for client_info and reads it back.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Grant types and well-known identifiers used by the on-behalf-of flow.
const (
	// JWTBearerGrant is the OBO grant type (RFC 7523 §2.1).
	JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// RefreshTokenGrant redeems a refresh token issued with an OBO response; MSAL Go uses it
	// when a cached OBO access token has expired (apps/internal/base/base.go AcquireTokenSilent).
	RefreshTokenGrant = "refresh_token"
	// GraphResource is Microsoft Graph's resource identifier (the aud of Graph tokens).
	GraphResource = "https://graph.microsoft.com"
	// GraphAppID is Microsoft Graph's well-known application id; scopes may name it instead.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// SSOScope is the scope Teams requests for the bot's API.
	SSOScope = "access_as_user"
	// TeamsDesktopClientID and TeamsWebClientID are the Teams clients that are pre-authorized
	// on the bot's API (msteams-docs tab-sso-register-aad.md, "Pre-authorize client apps").
	TeamsDesktopClientID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
	TeamsWebClientID     = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
)

// User is a user in the tenant's directory.
type User struct {
	// ObjectID is the user's object id (the oid claim).
	ObjectID string
	// Name is the display name (the name claim).
	Name string
	// UPN is the sign-in name (preferred_username / upn).
	UPN string
	// Roles are the app roles assigned to the user on the bot's app (the roles claim), and
	// Groups the object ids of the user's groups (the groups claim; more than 200 give the
	// overage claim instead). Source: entra-docs identity-platform/access-token-claims-reference.md
	// ("roles", "groups", "Groups overage claim").
	Roles  []string
	Groups []string
}

// SSOOptions shape a token minted by MintSSOToken; only AppID is required.
type SSOOptions struct {
	// AppID is the bot's app id (the API the token is for).
	AppID string
	// Audience defaults to "api://botid-"+AppID.
	Audience string
	// Scope defaults to "access_as_user".
	Scope string
	// AZP is the client that obtained the token; default the Teams desktop client.
	AZP string
	// Tenant defaults to the server's tenant; a different value also changes iss and tid.
	Tenant string
	// Expiry defaults to now + 1 h.
	Expiry time.Time
	// ForeignSigner signs with a key this tenant does not publish.
	ForeignSigner bool
	// V1 mints a v1.0 token (iss https://sts.windows.net/{tid}/, appid instead of azp, upn),
	// as Entra does when the API's manifest leaves accessTokenAcceptedVersion unset.
	V1 bool
}

// oboState holds the directory and the switches of the on-behalf-of flow.
type oboState struct {
	mu         sync.Mutex
	users      map[string]User
	consent    map[string]bool   // userOID + "\n" + resource → consent required
	challenges map[string]string // userOID → claims challenge JSON
	counts     map[string]int    // resource → successful OBO requests
	grants     map[grantKey][]string
	refresh    map[string]refreshGrant
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID string
	userOID  string
	expires  time.Time
}

func newOBOState() *oboState {
	return &oboState{
		users: map[string]User{}, consent: map[string]bool{}, challenges: map[string]string{},
		counts: map[string]int{}, grants: map[grantKey][]string{}, refresh: map[string]refreshGrant{},
	}
}

// AddUser adds (or replaces) a user in the tenant's directory.
func (s *Server) AddUser(u User) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	s.obo.users[u.ObjectID] = u
}

// User returns a user of the directory by object id.
func (s *Server) User(oid string) (User, bool) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	u, ok := s.obo.users[oid]
	return u, ok
}

// RemoveUser deletes a user from the directory: OBO for them then fails with AADSTS50034.
func (s *Server) RemoveUser(oid string) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	delete(s.obo.users, oid)
}

// RequireConsent makes OBO for (user, resource) fail with AADSTS65001 consent_required while
// required is true. resource is the resource identifier, e.g. GraphResource or "api://contoso-api".
func (s *Server) RequireConsent(userOID, resource string, required bool) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	s.obo.consent[userOID+"\n"+resource] = required
}

// ClaimsChallenge makes every OBO (and refresh) for the user fail with interaction_required
// and the given claims challenge (a JSON string, as conditional access sends it); "" clears it.
func (s *Server) ClaimsChallenge(userOID string, claims string) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	if claims == "" {
		delete(s.obo.challenges, userOID)
		return
	}
	s.obo.challenges[userOID] = claims
}

// SetPermissions grants admin consent (for every user of the tenant) to exactly these delegated
// scopes of resource for app clientID, replacing an earlier admin grant for that pair. See
// consent.go for how grants decide on-behalf-of and sign-in.
func (s *Server) SetPermissions(clientID, resource string, scopes ...string) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	s.obo.grants[grantKey{client: clientID, resource: canonicalResource(resource)}] = slices.Clone(scopes)
}

// OBOCount is the number of user tokens issued for a resource on behalf of a user: successful
// jwt-bearer (OBO) requests plus redemptions of refresh tokens from OBO responses (MSAL Go
// redeems its cached refresh token instead of repeating OBO when the same assertion asks for
// another resource or its access token expired). Count(JWTBearerGrant) and
// Count(RefreshTokenGrant) tell the two apart.
func (s *Server) OBOCount(resource string) int {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	return s.obo.counts[resource]
}

var (
	foreignOnce sync.Once
	foreignKey  *rsa.PrivateKey
)

// foreignSigner is a key no tenant publishes, for forged tokens.
func foreignSigner() *rsa.PrivateKey {
	foreignOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		foreignKey = k
	})
	return foreignKey
}

// pairwiseSub derives the sub claim, which Entra makes unique per user and application.
func pairwiseSub(oid, app string) string {
	h := sha256.Sum256([]byte(oid + "|" + app))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// MintSSOToken returns the access token Teams obtains for the signed-in user for the bot's API
// (the token a signin/tokenExchange invoke carries). The user is added to the directory if
// unknown.
func (s *Server) MintSSOToken(u User, o SSOOptions) string {
	if o.AppID == "" {
		panic("entra: MintSSOToken needs SSOOptions.AppID")
	}
	s.obo.mu.Lock()
	if _, ok := s.obo.users[u.ObjectID]; !ok {
		s.obo.users[u.ObjectID] = u
	}
	s.obo.mu.Unlock()
	if o.Audience == "" {
		// entra-docs access-tokens.md ("aud"): a v2.0 token's audience is always the API's
		// client id; a v1.0 token carries the resource URI it was requested for.
		o.Audience = o.AppID
		if o.V1 {
			o.Audience = "api://botid-" + o.AppID
		}
	}
	if o.Scope == "" {
		o.Scope = SSOScope
	}
	if o.AZP == "" {
		o.AZP = TeamsDesktopClientID
	}
	if o.Tenant == "" {
		o.Tenant = s.Tenant
	}
	now := s.now()
	if o.Expiry.IsZero() {
		o.Expiry = now.Add(time.Hour)
	}
	issued := now
	if !o.Expiry.After(now) {
		issued = o.Expiry.Add(-time.Hour) // an expired token was issued an hour before it expired
	}
	claims := map[string]any{
		"aud": o.Audience, "tid": o.Tenant, "oid": u.ObjectID, "sub": pairwiseSub(u.ObjectID, o.AppID),
		"scp": o.Scope, "name": u.Name, "iat": issued.Unix(), "nbf": issued.Unix(), "exp": o.Expiry.Unix(),
		"uti": uuid.NewString(), "rh": "0.stand-in",
	}
	membershipClaims(claims, u)
	if o.V1 {
		claims["iss"] = "https://sts.windows.net/" + o.Tenant + "/"
		claims["ver"] = "1.0"
		claims["appid"] = o.AZP
		claims["appidacr"] = "0"
		claims["upn"] = u.UPN
		claims["unique_name"] = u.UPN
	} else {
		claims["iss"] = s.URL + "/" + o.Tenant + "/v2.0"
		claims["ver"] = "2.0"
		claims["azp"] = o.AZP
		claims["azpacr"] = "0"
		claims["preferred_username"] = u.UPN
	}
	if o.ForeignSigner {
		return signWith(foreignSigner(), "foreign-"+s.kid, claims)
	}
	return s.Sign(claims)
}

func signWith(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	logcheck.Issue("token signed by a foreign key", tok)
	return tok
}

// aadError is an Entra error response body (entra-docs v2-oauth2-on-behalf-of-flow.md,
// "Error response example").
func aadError(code string, errCode int, desc string, extra map[string]any) map[string]any {
	now := time.Now().UTC()
	trace := uuid.NewString()
	body := map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", errCode, desc, trace, uuid.NewString(), now.Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{errCode},
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    uuid.NewString(),
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// splitScope splits "https://graph.microsoft.com/Mail.Read" into resource and scope name. A
// bare name ("User.Read") and Graph's app id both mean Microsoft Graph, as at Entra.
func splitScope(sc string) (resource, name string) {
	if i := strings.Index(sc, "://"); i >= 0 {
		j := strings.LastIndex(sc, "/")
		if j <= i+2 {
			return sc, ""
		}
		resource, name = sc[:j], sc[j+1:]
	} else if j := strings.LastIndex(sc, "/"); j >= 0 {
		resource, name = sc[:j], sc[j+1:]
	} else {
		resource, name = GraphResource, sc
	}
	if strings.EqualFold(resource, GraphAppID) || strings.EqualFold(resource, GraphResource) {
		resource = GraphResource
	}
	return resource, name
}

// grantFailure is a refused token request: status and body.
type grantFailure struct {
	status int
	body   map[string]any
}

func invalidGrant(errCode int, desc string) *grantFailure {
	return &grantFailure{http.StatusBadRequest, aadError("invalid_grant", errCode, desc, nil)}
}

// resolveScopes checks the scope parameter names delegated scopes of exactly one resource
// (AADSTS28000 otherwise) and returns that resource and the scope names asked for; ".default"
// stays as the only name (the caller resolves it against the grants).
func (s *Server) resolveScopes(scope string) (string, []string, *grantFailure) {
	resource := ""
	var names []string
	for _, sc := range ResourceScopes(scope) {
		r, n := splitScope(sc)
		if n == "" {
			return "", nil, &grantFailure{http.StatusBadRequest, aadError("invalid_scope", 70011, fmt.Sprintf("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", sc), nil)}
		}
		if resource != "" && r != resource {
			return "", nil, &grantFailure{http.StatusBadRequest, aadError("invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope "+scope+" is not valid.", nil)}
		}
		resource = r
		names = append(names, n)
	}
	if resource == "" {
		return "", nil, &grantFailure{http.StatusBadRequest, aadError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid: it names no resource.", nil)}
	}
	if slices.Contains(names, ".default") && len(names) > 1 {
		// scopes-oidc.md: static (.default) and dynamic consent cannot be combined.
		return "", nil, &grantFailure{http.StatusBadRequest, aadError("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid: .default cannot be combined with other scopes of the resource.", nil)}
	}
	return resource, names, nil
}

// checkUserAccess applies the directory, the grants (consent.go) and the consent and
// conditional-access switches, and returns the user and the scope names to issue (".default"
// resolved to everything granted on the resource).
func (s *Server) checkUserAccess(client *App, oid, resource string, names []string) (User, []string, *grantFailure) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	u, ok := s.obo.users[oid]
	if !ok {
		return User{}, nil, invalidGrant(50034, fmt.Sprintf("The user account %s does not exist in the %s directory. To sign into this application, the account must be added to the directory.", oid, s.Tenant))
	}
	granted := s.grantedLocked(oid, client.ClientID, resource)
	consentMissing := s.obo.consent[oid+"\n"+resource]
	if slices.Contains(names, ".default") {
		names = granted
		consentMissing = consentMissing || len(granted) == 0
	}
	for _, n := range names {
		if !slices.ContainsFunc(granted, func(g string) bool { return strings.EqualFold(g, n) }) {
			consentMissing = true
		}
	}
	if consentMissing {
		return User{}, nil, consentRequired(client)
	}
	if claims := s.obo.challenges[oid]; claims != "" {
		return User{}, nil, &grantFailure{http.StatusBadRequest, aadError("interaction_required", 50076,
			fmt.Sprintf("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource),
			map[string]any{"claims": claims})}
	}
	return u, names, nil
}

// consentRequired is AADSTS65001 (entra-docs reference-error-codes.md; the suberror as
// Entra adds it for OBO).
func consentRequired(client *App) *grantFailure {
	return &grantFailure{http.StatusBadRequest, aadError("invalid_grant", 65001,
		fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", client.ClientID, client.ClientID),
		map[string]any{"suberror": "consent_required"})}
}

// identifierURIs are the audiences a user assertion for client may carry: its client id and
// its App ID URIs.
func identifierURIs(client *App) []string {
	uris := client.IdentifierURIs
	if len(uris) == 0 {
		uris = []string{"api://botid-" + client.ClientID}
	}
	return append([]string{client.ClientID}, uris...)
}

// checkAssertion validates the user assertion of an OBO request and returns its claims.
func (s *Server) checkAssertion(client *App, assertion string) (map[string]any, *grantFailure) {
	parsed, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, invalidGrant(50027, "JWT token is invalid or malformed.")
	}
	var std jwt.Claims
	var all map[string]any
	if err := parsed.Claims(&s.key.PublicKey, &std, &all); err != nil {
		return nil, invalidGrant(50013, "Assertion failed signature validation. [Reason - The key was not found.]")
	}
	if std.Issuer != s.Issuer() && std.Issuer != "https://sts.windows.net/"+s.Tenant+"/" {
		return nil, invalidGrant(50013, "Assertion is invalid. [Reason - The issuer of the assertion is not this tenant.]")
	}
	if tid, _ := all["tid"].(string); tid != s.Tenant {
		return nil, invalidGrant(50013, "Assertion is invalid. [Reason - The assertion was issued for another tenant.]")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: s.now()}, 5*time.Minute); err != nil || std.Expiry == nil {
		return nil, invalidGrant(500133, "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.")
	}
	if !slices.ContainsFunc(identifierURIs(client), func(id string) bool { return std.Audience.Contains(id) }) {
		return nil, invalidGrant(500131, fmt.Sprintf("Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%s' and the expected audience is '%s' or one of the Application Id URIs of this application.", strings.Join(std.Audience, ","), client.ClientID))
	}
	// Only a delegated (user) token can be exchanged; an app-only token has no scp.
	if scp, _ := all["scp"].(string); scp == "" {
		return nil, invalidGrant(50013, "Assertion is invalid. [Reason - The assertion is not a user token (no scp claim).]")
	}
	if oid, _ := all["oid"].(string); oid == "" {
		return nil, invalidGrant(50013, "Assertion is invalid. [Reason - The assertion has no oid claim.]")
	}
	return all, nil
}

// onBehalfOf serves grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer. The client is
// already authenticated (secret or federated assertion) by the token endpoint.
func (s *Server) onBehalfOf(client *App, form url.Values) (int, any) {
	for _, p := range []string{"requested_token_use", "assertion", "scope"} {
		if form.Get(p) == "" {
			return http.StatusBadRequest, aadError("invalid_request", 900144, fmt.Sprintf("The request body must contain the following parameter: '%s'.", p), nil)
		}
	}
	if form.Get("requested_token_use") != "on_behalf_of" {
		return http.StatusBadRequest, aadError("invalid_request", 90014, "The request body must contain the following parameter: 'requested_token_use' with the value 'on_behalf_of'.", nil)
	}
	if form.Get("requested_token_type") != "" { // a SAML assertion for an enterprise app (saml.go)
		return s.samlOnBehalfOf(client, form)
	}
	claims, fail := s.checkAssertion(client, form.Get("assertion"))
	if fail != nil {
		return fail.status, fail.body
	}
	resource, names, fail := s.resolveScopes(form.Get("scope"))
	if fail != nil {
		return fail.status, fail.body
	}
	oid, _ := claims["oid"].(string)
	u, names, fail := s.checkUserAccess(client, oid, resource, names)
	if fail != nil {
		return fail.status, fail.body
	}
	s.obo.mu.Lock()
	s.obo.counts[resource]++
	s.obo.mu.Unlock()
	return http.StatusOK, s.delegatedResponse(client, u, resource, names, form)
}

// redeemRefresh serves grant_type=refresh_token for refresh tokens this server issued with
// an OBO response. Consent and conditional access are evaluated again, as at Entra.
func (s *Server) redeemRefresh(client *App, form url.Values) (int, any) {
	rt := form.Get("refresh_token")
	s.obo.mu.Lock()
	g, ok := s.obo.refresh[rt]
	s.obo.mu.Unlock()
	if rt == "" || !ok || g.clientID != client.ClientID {
		return http.StatusBadRequest, aadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the refresh token is unknown or was issued to another client.", nil)
	}
	if !s.now().Before(g.expires) {
		return http.StatusBadRequest, aadError("invalid_grant", 700082, "The refresh token has expired due to inactivity.", nil)
	}
	resource, names, fail := s.resolveScopes(form.Get("scope"))
	if fail != nil {
		return fail.status, fail.body
	}
	u, names, fail := s.checkUserAccess(client, g.userOID, resource, names)
	if fail != nil {
		return fail.status, fail.body
	}
	s.obo.mu.Lock()
	s.obo.counts[resource]++
	s.obo.mu.Unlock()
	return http.StatusOK, s.delegatedResponse(client, u, resource, names, form)
}

// delegatedResponse issues an access token for user u at resource with the scope names.
func (s *Server) delegatedResponse(client *App, u User, resource string, names []string, form url.Values) map[string]any {
	now := s.now()
	claims := s.delegatedClaims(client, u, resource, names)
	// scope echoes the requested resource scopes as sent (MSAL Go treats any requested scope
	// missing from the answer as declined and fails: apps/internal/base/base.go NewAuthResult)
	// and adds what .default resolved to.
	granted := ResourceScopes(form.Get("scope"))
	if slices.ContainsFunc(granted, func(g string) bool { return strings.HasSuffix(g, "/.default") }) {
		for _, n := range names {
			granted = append(granted, resource+"/"+n)
		}
	}
	resp := s.TokenResponse(claims, strings.Join(granted, " "))
	if slices.Contains(strings.Fields(form.Get("scope")), "offline_access") {
		rt := "rt." + uuid.NewString() + uuid.NewString()
		logcheck.Issue("Entra refresh token", rt)
		s.obo.mu.Lock()
		s.obo.refresh[rt] = refreshGrant{clientID: client.ClientID, userOID: u.ObjectID, expires: now.Add(90 * 24 * time.Hour)}
		s.obo.mu.Unlock()
		resp["refresh_token"] = rt
	}
	if form.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": u.ObjectID, "utid": s.Tenant})
		resp["client_info"] = base64.RawURLEncoding.EncodeToString(ci)
	}
	return resp
}

// membershipClaims adds the user's roles and groups claims, or the groups overage claim for
// more than 200 groups (entra-docs identity-platform/access-token-claims-reference.md,
// "Groups overage claim"). The stand-in keeps one set of roles per user and puts it in every
// token for an API registered here (in Entra a role belongs to one app: unverified shortcut).
func membershipClaims(claims map[string]any, u User) {
	if len(u.Roles) > 0 {
		claims["roles"] = u.Roles
	}
	switch {
	case len(u.Groups) > 200:
		claims["_claim_names"] = map[string]any{"groups": "src1"}
		claims["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/" + u.ObjectID + "/getMemberObjects"}}
	case len(u.Groups) > 0:
		claims["groups"] = u.Groups
	}
}
