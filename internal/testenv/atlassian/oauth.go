package atlassian

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// appScopes are the scopes the registered app has been given in the developer console; an
// authorize request may only ask for these ("Only choose from the scopes that you have
// already added to the APIs for your app", developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo).
var appScopes = []string{
	"read:jira-work", "read:jira-user", "write:jira-work",
	"read:confluence-content.all", "read:confluence-content.summary", "search:confluence",
	"read:confluence-space.summary", "read:me", "offline_access",
	// Granular Confluence scopes, required by the REST v2 endpoints (their OpenAPI
	// operations name only these; developer.atlassian.com/cloud/confluence/rest/v2/).
	"read:page:confluence", "read:space:confluence", "read:content-details:confluence",
}

// dcScopes are the Data Center OAuth 2.0 provider's scopes.
var dcScopes = []string{"READ", "WRITE"}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atlassian stand-in: grant access</title></head>
<body>
<h1>Grant access to your Atlassian account</h1>
<p>The app asks for: {{.Scopes}}</p>
<p>Choose the test user who logs in:</p>
{{range .Users}}<p><a href="{{.Href}}"><button type="button">Accept as {{.Name}} ({{.Email}})</button></a></p>
{{end}}<p><a href="{{.Deny}}"><button type="button">Deny</button></a></p>
</body></html>
`))

// handleAuthorize implements GET /authorize
// (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo, "Direct the
// user to the authorization URL"): audience=api.atlassian.com, client_id, scope,
// redirect_uri, state, response_type=code, prompt=consent, all required.
//
// PKCE: Atlassian Cloud's 3LO documentation lists no code_challenge or code_verifier
// parameter, so the Cloud stand-in ignores both: it must not be what makes PKCE look
// enforced (what Atlassian Cloud really does with them is unverified). Data Center documents
// "Authorization code with Proof Key for Code Exchange (PKCE)" beside the plain
// authorization code flow (confluence.atlassian.com "Jira OAuth 2.0 provider API"), so in
// DataCenter mode a challenge is optional but, when sent, must be S256 and is verified at the
// token endpoint (RFC 7636 §4.6).
// The stand-in's own parameter login_as=<account id> plays the user who logs in and accepts;
// deny=1 plays a refusal. Without either it shows a consent page with one button per user.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// A bad client or redirect URI must not redirect (RFC 6749 §4.1.2.1).
	if q.Get("client_id") != s.opts.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(s.opts.RedirectURIs, redirect) {
		// "redirect_uri: (required) Set this to the callback URL configured ... for your app".
		http.Error(w, "redirect_uri does not match the app's callback URL", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	logcheck.Issue("OAuth sign-in state", state) // the bot's, but as secret as what is issued
	fail := func(code, desc string) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if state != "" {
			v.Set("state", state)
		}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	switch {
	case !s.opts.DataCenter && q.Get("audience") != "api.atlassian.com":
		fail("invalid_request", "audience must be api.atlassian.com")
		return
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case !s.opts.DataCenter && q.Get("prompt") != "consent":
		fail("invalid_request", "prompt must be consent")
		return
	case state == "":
		fail("invalid_request", "state is required")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		fail("invalid_scope", "scope is required")
		return
	}
	for _, sc := range scopes {
		allowed := appScopes
		if s.opts.DataCenter {
			allowed = dcScopes
		}
		if !slices.Contains(allowed, sc) {
			fail("invalid_scope", "scope not configured for this app: "+sc)
			return
		}
	}
	challenge := ""
	if s.opts.DataCenter {
		challenge = q.Get("code_challenge")
	}
	switch {
	case challenge != "" && q.Get("code_challenge_method") != "S256":
		// RFC 7636 §4.2: S256 is mandatory to implement; "plain" is not accepted here.
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge != "" && (len(challenge) != 43 || strings.ContainsAny(challenge, "+/=")):
		// base64url(SHA-256) without padding is 43 characters (RFC 7636 §4.2).
		fail("invalid_request", "code_challenge is not a base64url SHA-256 digest")
		return
	}
	if q.Get("deny") != "" {
		fail("access_denied", "the user denied access")
		return
	}
	login := q.Get("login_as")
	if login == "" {
		s.renderConsent(w, r, scopes)
		return
	}
	if _, ok := s.user(login); !ok {
		http.Error(w, "unknown test user", http.StatusBadRequest)
		return
	}
	code := randomToken("code-")
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID: q.Get("client_id"), redirectURI: redirect, user: login, scopes: scopes,
		challenge: challenge, expires: s.now().Add(s.opts.CodeTTL),
	}
	s.mu.Unlock()
	u, _ := url.Parse(redirect)
	v := u.Query()
	v.Set("code", code)
	v.Set("state", state)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, scopes []string) {
	type btn struct{ Name, Email, Href string }
	data := struct {
		Scopes string
		Users  []btn
		Deny   string
	}{Scopes: strings.Join(scopes, ", ")}
	for _, u := range s.world.Users {
		q := r.URL.Query()
		q.Set("login_as", u.AccountID)
		data.Users = append(data.Users, btn{u.Name, u.Email, r.URL.Path + "?" + q.Encode()})
	}
	q := r.URL.Query()
	q.Set("deny", "1")
	data.Deny = r.URL.Path + "?" + q.Encode()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = consentPage.Execute(w, data)
}

// tokenError writes an OAuth error (RFC 6749 §5.2). Atlassian answers refresh failures with
// HTTP 403 (developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens) and a wrong
// client secret with 401 access_denied (as observed by public Atlassian client libraries;
// RFC 6749 would say invalid_client; unverified), so clients must not read 401 as
// "reconnect". See docs/fidelity.md.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// tokenParams reads the token request body. Atlassian's examples post JSON
// (Content-Type: application/json); the form encoding of RFC 6749 §4.1.3 is accepted too.
func tokenParams(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			if str, ok := x.(string); ok {
				v.Set(k, str)
			}
		}
		return v, nil
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm, nil
	default:
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
}

// handleToken implements POST /oauth/token for the authorization_code and refresh_token
// grants (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo and
// .../refresh-tokens).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()
	p, err := tokenParams(r)
	if err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable body")
		return
	}
	id, secret := p.Get("client_id"), p.Get("client_secret")
	if bu, bp, ok := r.BasicAuth(); ok { // RFC 6749 §2.3.1
		id, secret = bu, bp
	}
	if id != s.opts.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	switch p.Get("grant_type") {
	case "authorization_code":
		s.grantCode(w, p)
	case "refresh_token":
		s.grantRefresh(w, p)
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Server) grantCode(w http.ResponseWriter, p url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[p.Get("code")]
	switch {
	case c == nil:
		tokenError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
		return
	case c.used:
		// A code is single-use; on replay the tokens it produced are revoked (RFC 6749 §4.1.2).
		if f := s.families[c.family]; f != nil {
			f.revoked = true
		}
		tokenError(w, http.StatusForbidden, "invalid_grant", "Invalid authorization code")
		return
	case !s.now().Before(c.expires):
		tokenError(w, http.StatusForbidden, "invalid_grant", "Authorization code expired")
		return
	case c.clientID != p.Get("client_id") && p.Get("client_id") != "":
		tokenError(w, http.StatusForbidden, "invalid_grant", "Code was issued to another client")
		return
	case c.redirectURI != p.Get("redirect_uri"):
		// redirect_uri must equal the one of the authorize request (RFC 6749 §4.1.3).
		tokenError(w, http.StatusForbidden, "invalid_grant", "redirect_uri does not match")
		return
	}
	verifier := p.Get("code_verifier")
	logcheck.Issue("PKCE verifier", verifier)
	if c.challenge != "" {
		// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) must equal code_challenge; the
		// verifier is 43–128 characters (§4.1).
		if len(verifier) < 43 || len(verifier) > 128 ||
			subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(c.challenge)) != 1 {
			c.used = true // a failed redemption burns the code
			tokenError(w, http.StatusForbidden, "invalid_grant", "PKCE verification failed")
			return
		}
	}
	c.used = true
	f := &family{id: randomToken("fam-"), user: c.user, clientID: c.clientID, scopes: c.scopes, created: s.now()}
	s.families[f.id] = f
	c.family = f.id
	s.issue(w, f)
}

// grantRefresh implements rotating refresh tokens (developer.atlassian.com/cloud/oauth/
// getting-started/refresh-tokens; community.developer.atlassian.com "The old access token will
// be revoked during the refresh token exchange", 2024):
//   - every use returns a new access and refresh token pair;
//   - the spent refresh token and the access token issued with it (its companion) stay valid
//     for a 10-minute leeway, so a client that lost the answer can retry, and are revoked when
//     it ends (see bearer and revokeAt);
//   - a rotated-out refresh token presented after its leeway gets 403 unauthorized_client
//     "refresh_token is invalid" (as integrators report; their clients match on exactly that
//     pair. Atlassian's page lists only invalid_grant, so the code is partly unverified —
//     docs/fidelity.md). As in Auth0's refresh token rotation,
//     which Atlassian's feature is built on, that reuse is treated as a breach and revokes
//     every token of the family (auth0.com/docs/secure/tokens/refresh-tokens/
//     refresh-token-rotation, "Automatic reuse detection");
//   - an expired (90 days unused, 365 days after consent) or revoked refresh token gets 403
//     invalid_grant "Unknown or invalid refresh token." (refresh-tokens page, "possible causes
//     of errors"; announcement "Deprecating persistent refresh tokens" for the lifetimes).
//
// DataCenter mode applies the same rules (unverified for Data Center).
func (s *Server) grantRefresh(w http.ResponseWriter, p url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	rt := s.refresh[p.Get("refresh_token")]
	if rt == nil {
		tokenError(w, http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
		return
	}
	f := s.families[rt.family]
	switch {
	case f == nil || f.revoked:
		tokenError(w, http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
		return
	case now.Sub(rt.issued) > 90*24*time.Hour || now.Sub(f.created) > 365*24*time.Hour:
		tokenError(w, http.StatusForbidden, "invalid_grant", "Unknown or invalid refresh token.")
		return
	case !rt.usedAt.IsZero() && now.Sub(rt.usedAt) >= s.opts.ReuseLeeway:
		f.revoked = true
		tokenError(w, http.StatusForbidden, "unauthorized_client", "refresh_token is invalid")
		return
	}
	if rt.usedAt.IsZero() {
		rt.usedAt = now
		// The companion access token is revoked when the leeway ends, even if it would
		// otherwise live longer.
		if at := s.access[rt.companion]; at != nil {
			at.revokeAt = now.Add(s.opts.ReuseLeeway)
		}
	}
	f.refreshes++
	rt.next = s.issue(w, f)
}

// issue writes a token response for the family and returns the new refresh token ("" when
// offline_access was not granted). Caller holds s.mu.
func (s *Server) issue(w http.ResponseWriter, f *family) string {
	now := s.now()
	at := randomToken("at-")
	s.access[at] = &accessToken{user: f.user, family: f.id, scopes: f.scopes, expires: now.Add(s.opts.AccessTokenTTL)}
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.AccessTokenTTL / time.Second),
		"scope":        strings.Join(f.scopes, " "),
	}
	var rt string
	if slices.Contains(f.scopes, "offline_access") || s.opts.DataCenter {
		rt = randomToken("rt-")
		s.refresh[rt] = &refreshToken{family: f.id, issued: now, companion: at}
		resp["refresh_token"] = rt
	}
	w.Header().Set("Cache-Control", "no-store") // RFC 6749 §5.1
	writeJSON(w, http.StatusOK, resp)
	return rt
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
