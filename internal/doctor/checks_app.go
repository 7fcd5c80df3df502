package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onbehalf/onbehalf/internal/config"
)

func checkAppFound(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	name := s.App.DisplayName
	if name == "" {
		name = "(no display name)"
	}
	return pass("%s, app id %s", name, strings.ToLower(s.App.AppID))
}

// fixPatch renders a single-purpose PATCH of the app for one check's fix line.
func (s *Snapshot) fixPatch(body map[string]any) string {
	return GraphRequest{Method: "PATCH", Path: appPath(s.appID()), Body: body}.Text(s.GraphURL)
}

// plan computes the app's repairs with deterministic ids for display; --fix plans anew.
func (s *Snapshot) plan() appFixes {
	return planAppFixes(s.App, s.redirectURI(), func() string { return "<new-guid>" })
}

func checkAppCredentials(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	fics := s.federatedCredentials()
	miFIC, _ := s.findManagedIdentityFIC(fics)
	if n := len(s.App.PasswordCredentials); n > 0 {
		var fixes, names []string
		for _, p := range s.App.PasswordCredentials {
			fixes = append(fixes, "az ad app credential delete --id "+s.appID()+" --key-id "+p.KeyID)
			d := p.KeyID
			if p.DisplayName != "" {
				d = p.DisplayName + " (" + p.KeyID + ")"
			}
			if p.EndDateTime != "" {
				d += " expires " + p.EndDateTime
			}
			names = append(names, d)
		}
		detail := fmt.Sprintf("%d client secret(s) on the app: %s; the bot authenticates with a federated credential, so a secret is only something to leak", n, strings.Join(names, ", "))
		return warn(strings.Join(fixes, "\n"), "%s", detail)
	}
	if !s.hasFICs() {
		return info("no client secrets; federated credentials not read (%s)", s.absent("fics"))
	}
	if miFIC == nil {
		return fail(s.miFICFix(), "no client secret and no federated credential trusting the managed identity: the bot has no way to authenticate")
	}
	return pass("no client secrets; federated credential %q trusts the managed identity", miFIC.Name)
}

func checkAudience(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	if s.App.SignInAudience != "AzureADMyOrg" {
		return fail("az ad app update --id "+s.appID()+" --sign-in-audience AzureADMyOrg",
			"sign-in audience is %q, not AzureADMyOrg (single tenant), which the bot and its OAuth connection require", orPlaceholder(s.App.SignInAudience, "unset"))
	}
	return pass("AzureADMyOrg")
}

func checkIdentifierURI(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	want := s.identifierURI()
	f := s.plan()
	if f.identifierURIs != nil {
		return fail(s.fixPatch(map[string]any{"identifierUris": f.identifierURIs}),
			"identifier URI %s missing (has %s): Teams asks Entra for a token for exactly this URI", want, listOrNone(s.App.IdentifierURIs))
	}
	return pass("%s", want)
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "none"
	}
	return strings.Join(v, ", ")
}

func (s *Snapshot) ssoScope() *PermissionScope {
	if s.App == nil {
		return nil
	}
	for i, sc := range s.App.API.OAuth2PermissionScopes {
		if sc.Value == SSOScope {
			return &s.App.API.OAuth2PermissionScopes[i]
		}
	}
	return nil
}

func checkScope(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	f := s.plan()
	fix := s.fixPatch(map[string]any{"api": f.wholeAPI(f.scopes, nil)})
	sc := s.ssoScope()
	switch {
	case sc == nil:
		return fail(fix, "the app exposes no %s scope: Teams cannot ask for an SSO token", SSOScope)
	case !sc.IsEnabled:
		return fail(fix, "scope %s exists but is disabled", SSOScope)
	}
	return pass("%s/%s (id %s)", s.identifierURI(), SSOScope, sc.ID)
}

func checkPreAuthorized(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	f := s.plan()
	if f.preAuthorized == nil {
		return pass("Teams desktop/mobile and web clients")
	}
	sc := s.ssoScope()
	var missing []string
	for _, c := range []string{TeamsDesktopClientID, TeamsWebClientID} {
		ok := false
		for _, p := range s.App.API.PreAuthorizedApplications {
			if strings.EqualFold(p.AppID, c) && sc != nil && containsFold(p.DelegatedPermissionIDs, sc.ID) {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, c)
		}
	}
	fix := s.fixPatch(map[string]any{"api": f.wholeAPI(f.scopes, f.preAuthorized)})
	if f.newScope {
		// Graph refuses a pre-authorization for a scope the app does not carry yet: scope first.
		fix = s.fixPatch(map[string]any{"api": f.wholeAPI(f.scopes, nil)}) + "\n" + fix
	}
	return fail(fix,
		"not pre-authorized for %s: %s; without it Teams cannot get a token silently", SSOScope, strings.Join(missing, ", "))
}

func checkRedirectURI(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	f := s.plan()
	if f.redirectURIs != nil {
		return fail(s.fixPatch(map[string]any{"web": f.wholeWeb()}),
			"web redirect URI %s missing: the Bot Service token store cannot complete sign-in", s.redirectURI())
	}
	return pass("%s", s.redirectURI())
}

func checkTokenVersion(s *Snapshot) Result {
	if r, ok := s.need("app", s.App != nil); !ok {
		return r
	}
	v := s.App.API.RequestedAccessTokenVersion
	if v == nil || *v != 2 {
		got := "null (v1)"
		if v != nil {
			got = fmt.Sprint(*v)
		}
		return fail(s.fixPatch(map[string]any{"api": s.plan().wholeAPI(nil, nil)}),
			"api.requestedAccessTokenVersion is %s, not 2: SSO tokens would have the v1 issuer the handler rejects", got)
	}
	return pass("2")
}

func checkServicePrincipal(s *Snapshot) Result {
	if r, ok := s.need("sp", s.ServicePrincipal != nil); !ok {
		return r
	}
	return pass("object id %s", s.ServicePrincipal.ID)
}

// federatedCredentials are the app's FICs, from the FIC source or an $expand'ed app.
func (s *Snapshot) federatedCredentials() []FederatedCredential {
	if s.FICsKnown {
		return s.FederatedCredentials
	}
	if s.App != nil {
		return s.App.FederatedIdentityCredentials
	}
	return nil
}

func (s *Snapshot) hasFICs() bool {
	return s.FICsKnown || (s.App != nil && s.App.FederatedIdentityCredentials != nil)
}

func (s *Snapshot) authorityHost() string {
	if h := strings.TrimRight(s.Settings["ENTRA_AUTHORITY_HOST"], "/"); h != "" {
		return h
	}
	return config.DefaultAuthorityHost
}

func (s *Snapshot) ficIssuer() string {
	return s.authorityHost() + "/" + orPlaceholder(s.tenantID(), "<tenant-id>") + "/v2.0"
}

func hasAudience(f FederatedCredential) bool {
	return slices.Contains(f.Audiences, FederatedAudience)
}

// findManagedIdentityFIC finds the FIC trusting the Function App's managed identity. With the
// identity's principal id known it must match exactly; without it, any FIC whose subject is an
// object id from the tenant's issuer counts, and exact says it could not be confirmed.
func (s *Snapshot) findManagedIdentityFIC(fics []FederatedCredential) (found *FederatedCredential, exact bool) {
	issuer := s.ficIssuer()
	for i, f := range fics {
		if !strings.EqualFold(strings.TrimRight(f.Issuer, "/"), issuer) || !hasAudience(f) {
			continue
		}
		if s.Identity != nil && s.Identity.PrincipalID != "" {
			if strings.EqualFold(f.Subject, s.Identity.PrincipalID) {
				return &fics[i], true
			}
			continue
		}
		if config.IsGUID(f.Subject) {
			return &fics[i], false
		}
	}
	return nil, false
}

func (s *Snapshot) miFICFix() string {
	subject := "<managed-identity-principal-id>"
	if s.Identity != nil && s.Identity.PrincipalID != "" {
		subject = s.Identity.PrincipalID
	}
	body := map[string]any{"name": "function-app-identity", "issuer": s.ficIssuer(), "subject": subject, "audiences": []string{FederatedAudience}}
	return "az ad app federated-credential create --id " + orPlaceholder(s.appID(), "<app-id>") + " --parameters " + quote(compactJSON(body))
}

func checkFICManagedIdentity(s *Snapshot) Result {
	if r, ok := s.need("fics", s.hasFICs()); !ok {
		return r
	}
	fics := s.federatedCredentials()
	f, exact := s.findManagedIdentityFIC(fics)
	if f == nil {
		detail := fmt.Sprintf("no federated credential with issuer %s, audience %s", s.ficIssuer(), FederatedAudience)
		if s.Identity != nil && s.Identity.PrincipalID != "" {
			detail += " and subject " + s.Identity.PrincipalID + " (the managed identity's principal id)"
		}
		for _, g := range fics {
			if config.IsGUID(g.Subject) {
				detail += fmt.Sprintf("; %q trusts subject %s, issuer %s, audiences %s", g.Name, g.Subject, g.Issuer, listOrNone(g.Audiences))
			}
		}
		return fail(s.miFICFix(), "%s: the handler cannot authenticate as the bot", detail)
	}
	if !exact {
		return pass("%q trusts principal %s (the managed identity's principal id was not available to confirm it)", f.Name, f.Subject)
	}
	return pass("%q trusts principal %s", f.Name, f.Subject)
}

func (s *Snapshot) uniqueIdentifier() string {
	if s.Connection == nil {
		return ""
	}
	v, _ := s.Connection.Param("UniqueIdentifier")
	return v
}

func (s *Snapshot) tokenStoreFICFix(subject string) string {
	body := map[string]any{"name": "bot-service-token-store", "issuer": s.ficIssuer(), "subject": subject, "audiences": []string{FederatedAudience}}
	return "az ad app federated-credential create --id " + orPlaceholder(s.appID(), "<app-id>") + " --parameters " + quote(compactJSON(body))
}

func checkFICTokenStore(s *Snapshot) Result {
	if r, ok := s.need("fics", s.hasFICs()); !ok {
		return r
	}
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	uid := s.uniqueIdentifier()
	if uid == "" {
		return fail(s.connectionFix(), "the OAuth connection has no UniqueIdentifier parameter, so no federated credential can match it")
	}
	tenant := s.tenantID()
	want, err := TokenStoreSubject(tenant, uid)
	if err != nil {
		return fail("", "cannot compute the token store subject: the tenant id %q is not a GUID", tenant)
	}
	fics := s.federatedCredentials()
	var near []string
	for _, f := range fics {
		if f.Subject == want {
			if !strings.EqualFold(strings.TrimRight(f.Issuer, "/"), s.ficIssuer()) || !hasAudience(f) {
				return fail(s.tokenStoreFICFix(want), "%q has the right subject but issuer %s / audiences %s (want %s / %s)",
					f.Name, f.Issuer, listOrNone(f.Audiences), s.ficIssuer(), FederatedAudience)
			}
			return pass("%q trusts %s", f.Name, want)
		}
		if strings.HasPrefix(f.Subject, "/eid1/") {
			near = append(near, fmt.Sprintf("%q has subject %s", f.Name, f.Subject))
			if wrong := encodeGUIDWrittenOrder(tenant); wrong != "" && strings.Contains(f.Subject, "/t/"+wrong+"/") {
				near = append(near, "its tenant segment is the GUID's bytes in written order; it must be the mixed-endian order (.NET Guid.ToByteArray)")
			}
		}
	}
	detail := "no federated credential with subject " + want + " (token store, UniqueIdentifier " + quote(uid) + ")"
	if len(near) > 0 {
		detail += "; " + strings.Join(near, "; ")
	}
	return fail(s.tokenStoreFICFix(want), "%s: the OAuth connection cannot get tokens", detail)
}
