package entra

// Consent: who may get which delegated scopes, and what a sign-in grants.
//
// Sources (see docs/fidelity.md):
//   - entra-docs identity-platform/scopes-oidc.md, "The .default scope": a request for
//     {resource}/.default prompts only when nothing has been granted between the client and that
//     resource for the user (or prompt=consent is sent); the prompt then covers every required
//     permission of the client app, for all APIs in its list; the token carries everything
//     granted on the requested resource. A request naming scopes (dynamic consent) consents to
//     exactly those scopes. .default and named scopes cannot be combined.
//   - entra-docs identity-platform/v2-oauth2-on-behalf-of-flow.md, "Gaining consent for the
//     middle-tier application": OBO succeeds only for scopes consented for the middle tier
//     (by the user through a combined .default prompt, or by an admin); the same page says the
//     token Graph receives is v1.0-formatted.
//   - entra-docs identity-platform/reference-error-codes.md: AADSTS65001 (consent required),
//     AADSTS28000 (scopes of more than one resource in one token request).
//   - entra-docs identity-platform/access-token-claims-reference.md: v1.0 claims (iss
//     https://sts.windows.net/{tid}/, appid, appidacr, upn, unique_name, ver 1.0) and v2.0 claims
//     (aud = the API's client id, azp, preferred_username, ver 2.0).
//
// Not modelled: admin-restricted scopes, consent policies that stop users from consenting, and
// pre-authorized client apps other than the Teams clients MintSSOToken stands for.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// grantKey names a delegated permission grant: user "" is admin consent for all users.
type grantKey struct{ user, client, resource string }

// canonicalResource spells Microsoft Graph one way.
func canonicalResource(r string) string {
	if strings.EqualFold(r, GraphAppID) || strings.EqualFold(r, GraphResource) {
		return GraphResource
	}
	return r
}

// grantedLocked returns the scopes granted to client on resource for user oid (admin consent
// and the user's own consent). s.obo.mu must be held.
func (s *Server) grantedLocked(oid, client, resource string) []string {
	resource = canonicalResource(resource)
	out := slices.Clone(s.obo.grants[grantKey{client: client, resource: resource}])
	for _, n := range s.obo.grants[grantKey{user: oid, client: client, resource: resource}] {
		if !slices.ContainsFunc(out, func(g string) bool { return strings.EqualFold(g, n) }) {
			out = append(out, n)
		}
	}
	return out
}

// Granted returns the delegated scopes app clientID holds on resource for user oid, by admin
// consent or the user's own.
func (s *Server) Granted(oid, clientID, resource string) []string {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	return s.grantedLocked(oid, clientID, resource)
}

// GrantAdminConsent consents, for every user, to all the delegated permissions app clientID
// lists as required (App.RequiredResourceAccess), as an administrator does on the app's API
// permissions page.
func (s *Server) GrantAdminConsent(clientID string) {
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil {
		panic("entra: GrantAdminConsent for an unknown app " + clientID)
	}
	for res, scopes := range app.RequiredResourceAccess {
		s.SetPermissions(clientID, res, scopes...)
	}
}

// RevokeAdminConsent removes every admin grant of app clientID (users' own grants stay).
func (s *Server) RevokeAdminConsent(clientID string) {
	s.obo.mu.Lock()
	defer s.obo.mu.Unlock()
	for k := range s.obo.grants {
		if k.user == "" && k.client == clientID {
			delete(s.obo.grants, k)
		}
	}
}

// ErrSignIn is a refused interactive sign-in; its text is Entra's error description.
var ErrSignIn = errors.New("sign-in refused")

// SignIn is the authorization-code flow of app clientID for user oid, consent screen and code
// redemption in one step (the stand-in has no browser): the user is asked for consent as
// Entra would ask (see the package sources above), accepts, and the token for the one
// resource named by scope is returned with its expiry. prompt is the authorize request's
// prompt parameter ("consent" forces the prompt). AADSTS28000 when scope names two resources.
func (s *Server) SignIn(clientID, oid, scope, prompt string) (string, time.Time, error) {
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil {
		return "", time.Time{}, fmt.Errorf("%w: AADSTS700016: application %s not found", ErrSignIn, clientID)
	}
	resource, names, fail := s.resolveScopes(scope)
	if fail != nil {
		return "", time.Time{}, fmt.Errorf("%w: %v", ErrSignIn, fail.body["error_description"])
	}
	s.obo.mu.Lock()
	u, ok := s.obo.users[oid]
	if !ok {
		s.obo.mu.Unlock()
		return "", time.Time{}, fmt.Errorf("%w: AADSTS50034: user %s not in the directory", ErrSignIn, oid)
	}
	if slices.Contains(names, ".default") {
		if len(s.grantedLocked(oid, clientID, resource)) == 0 || prompt == "consent" {
			// The combined prompt: every required permission of the client, for all APIs.
			for res, scopes := range app.RequiredResourceAccess {
				s.addUserGrantLocked(oid, clientID, res, scopes)
			}
		}
		names = s.grantedLocked(oid, clientID, resource)
	} else {
		s.addUserGrantLocked(oid, clientID, resource, names)
	}
	delete(s.obo.consent, oid+"\n"+resource)
	s.obo.mu.Unlock()
	if len(names) == 0 {
		// Unverified: what Entra answers when the consented permissions hold nothing of the
		// requested resource. The stand-in refuses rather than issue a token without scp.
		return "", time.Time{}, fmt.Errorf("%w: AADSTS65001: nothing of %s is granted to %s", ErrSignIn, resource, clientID)
	}
	exp := s.now().Add(s.lifetime())
	return s.Sign(s.delegatedClaims(app, u, resource, names)), exp, nil
}

func (s *Server) addUserGrantLocked(oid, client, resource string, names []string) {
	k := grantKey{user: oid, client: client, resource: canonicalResource(resource)}
	for _, n := range names {
		if !slices.ContainsFunc(s.obo.grants[k], func(g string) bool { return strings.EqualFold(g, n) }) {
			s.obo.grants[k] = append(s.obo.grants[k], n)
		}
	}
}

// Refused is an Entra refusal of a token request made inside the stand-ins (the token
// service's exchange and refresh): Code is the OAuth error, AADSTS the number.
type Refused struct {
	Code   string
	AADSTS int
	Desc   string
}

func (r *Refused) Error() string { return fmt.Sprintf("%s: %s", r.Code, r.Desc) }

func refusedOf(f *grantFailure) *Refused {
	r := &Refused{}
	r.Code, _ = f.body["error"].(string)
	r.Desc, _ = f.body["error_description"].(string)
	if codes, ok := f.body["error_codes"].([]int); ok && len(codes) > 0 {
		r.AADSTS = codes[0]
	}
	return r
}

// OnBehalfOfFor is the on-behalf-of grant for app clientID with the same rules as the token
// endpoint, for stand-ins of services that hold the app's credential themselves (the Bot
// Service token store, through the app's federated credential).
func (s *Server) OnBehalfOfFor(clientID, assertion, scope string) (string, time.Time, error) {
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil {
		return "", time.Time{}, &Refused{Code: "unauthorized_client", AADSTS: 700016, Desc: "Application not found in the directory."}
	}
	claims, fail := s.checkAssertion(app, assertion)
	if fail != nil {
		return "", time.Time{}, refusedOf(fail)
	}
	oid, _ := claims["oid"].(string)
	return s.issueSilently(app, oid, scope)
}

// RefreshFor issues app clientID a new token for user oid and scope as redeeming the user's
// refresh token would: consent and conditional access are evaluated again, no prompt is shown.
func (s *Server) RefreshFor(clientID, oid, scope string) (string, time.Time, error) {
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil {
		return "", time.Time{}, &Refused{Code: "unauthorized_client", AADSTS: 700016, Desc: "Application not found in the directory."}
	}
	return s.issueSilently(app, oid, scope)
}

func (s *Server) issueSilently(app *App, oid, scope string) (string, time.Time, error) {
	resource, names, fail := s.resolveScopes(scope)
	if fail != nil {
		return "", time.Time{}, refusedOf(fail)
	}
	u, names, fail := s.checkUserAccess(app, oid, resource, names)
	if fail != nil {
		return "", time.Time{}, refusedOf(fail)
	}
	s.obo.mu.Lock()
	s.obo.counts[resource]++
	s.obo.mu.Unlock()
	return s.Sign(s.delegatedClaims(app, u, resource, names)), s.now().Add(s.lifetime()), nil
}

// appOfResource finds the registered app whose client id or identifier URI is resource.
func (s *Server) appOfResource(resource string) *App {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		if slices.Contains(identifierURIs(a), resource) {
			return a
		}
	}
	return nil
}

// delegatedClaims are the claims of a user token for resource issued to client. Microsoft
// Graph gets v1.0 tokens (v2-oauth2-on-behalf-of-flow.md: "This access token is a
// v1.0-formatted token for Microsoft Graph"); an API registered here gets v2.0 tokens with its
// client id as audience (the bot's app sets requestedAccessTokenVersion 2); any other resource
// keeps its identifier as audience.
func (s *Server) delegatedClaims(client *App, u User, resource string, names []string) map[string]any {
	now := s.now()
	claims := map[string]any{
		"tid": s.Tenant, "oid": u.ObjectID, "sub": pairwiseSub(u.ObjectID, resource), "name": u.Name,
		"scp": strings.Join(names, " "), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.lifetime()).Unix(),
		"uti": uuid.NewString(),
	}
	if canonicalResource(resource) == GraphResource {
		claims["aud"] = GraphResource
		claims["iss"] = "https://sts.windows.net/" + s.Tenant + "/"
		claims["ver"] = "1.0"
		claims["appid"] = client.ClientID
		claims["appidacr"] = "2"
		claims["upn"] = u.UPN
		claims["unique_name"] = u.UPN
		return claims
	}
	claims["aud"] = resource
	if a := s.appOfResource(resource); a != nil {
		claims["aud"] = a.ClientID
	}
	claims["iss"] = s.Issuer()
	claims["ver"] = "2.0"
	claims["azp"] = client.ClientID
	claims["azpacr"] = "2"
	claims["preferred_username"] = u.UPN
	claims["idtyp"] = "user"
	membershipClaims(claims, u)
	return claims
}
