package doctor

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// GraphRequest is one Microsoft Graph call that repairs the app registration.
type GraphRequest struct {
	Method string
	// Path is relative to the Graph base URL, e.g. /v1.0/applications(appId='…').
	Path string
	Body map[string]any
}

// Text renders the request as method, URL and JSON body, the way the report prints a fix.
func (r GraphRequest) Text(graphURL string) string {
	return r.Method + " " + strings.TrimRight(graphURL, "/") + r.Path + "\n" + compactJSON(r.Body)
}

func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // maps of strings, slices and numbers always encode
	return strings.TrimSpace(b.String())
}

func appPath(appID string) string { return "/v1.0/applications(appId='" + appID + "')" }

// appFixes is the repair of each fixable app-registration problem, computed against the
// current app. A field is nil when that part needs no change.
type appFixes struct {
	current        *App
	identifierURIs []string
	scopes         []PermissionScope // the whole collection: Graph replaces collections on PATCH
	newScope       bool
	preAuthorized  []PreAuthorizedApplication
	redirectURIs   []string
	tokenVersion   bool
}

// planAppFixes works out what the app registration needs for Teams SSO. newID makes scope ids.
func planAppFixes(app *App, redirectURI string, newID func() string) appFixes {
	f := appFixes{current: app}
	appID := strings.ToLower(app.AppID)
	want := "api://botid-" + appID
	if !containsFold(app.IdentifierURIs, want) {
		f.identifierURIs = append(slices.Clone(app.IdentifierURIs), want)
	}

	scopes := slices.Clone(app.API.OAuth2PermissionScopes)
	idx := slices.IndexFunc(scopes, func(s PermissionScope) bool { return s.Value == SSOScope })
	switch {
	case idx < 0:
		scopes = append(scopes, PermissionScope{
			ID:                      newID(),
			Value:                   SSOScope,
			Type:                    "User",
			IsEnabled:               true,
			AdminConsentDisplayName: "Teams can access the bot as the user",
			AdminConsentDescription: "Allows Teams to call the bot's web API as the signed-in user.",
			UserConsentDisplayName:  "Teams can access the bot as you",
			UserConsentDescription:  "Allows Teams to call the bot's web API as you.",
		})
		idx = len(scopes) - 1
		f.scopes, f.newScope = scopes, true
	case !scopes[idx].IsEnabled:
		scopes[idx].IsEnabled = true
		f.scopes = scopes
	}
	scopeID := scopes[idx].ID

	pre := make([]PreAuthorizedApplication, 0, len(app.API.PreAuthorizedApplications)+2)
	for _, p := range app.API.PreAuthorizedApplications {
		p.DelegatedPermissionIDs = slices.Clone(p.DelegatedPermissionIDs)
		pre = append(pre, p)
	}
	changed := false
	for _, client := range []string{TeamsDesktopClientID, TeamsWebClientID} {
		i := slices.IndexFunc(pre, func(p PreAuthorizedApplication) bool { return strings.EqualFold(p.AppID, client) })
		if i < 0 {
			pre = append(pre, PreAuthorizedApplication{AppID: client, DelegatedPermissionIDs: []string{scopeID}})
			changed = true
			continue
		}
		if !containsFold(pre[i].DelegatedPermissionIDs, scopeID) {
			pre[i].DelegatedPermissionIDs = append(pre[i].DelegatedPermissionIDs, scopeID)
			changed = true
		}
	}
	if changed {
		f.preAuthorized = pre
	}

	if !slices.Contains(app.Web.RedirectURIs, redirectURI) {
		f.redirectURIs = append(slices.Clone(app.Web.RedirectURIs), redirectURI)
	}
	f.tokenVersion = app.API.RequestedAccessTokenVersion == nil || *app.API.RequestedAccessTokenVersion != 2
	return f
}

func (f appFixes) empty() bool {
	return f.identifierURIs == nil && f.scopes == nil && f.preAuthorized == nil && f.redirectURIs == nil && !f.tokenVersion
}

// wholeAPI is the app's api with the repairs applied, every property included. A PATCH that
// carries a complex property may replace it whole (the assumption infra/ is written under;
// OData 4.01 merges instead), and sending all of it is right either way: nothing the app had
// is lost. scopes and pre are the collections to send (nil = as they are).
func (f appFixes) wholeAPI(scopes []PermissionScope, pre []PreAuthorizedApplication) map[string]any {
	cur := f.current.API
	if scopes == nil {
		scopes = cur.OAuth2PermissionScopes
	}
	if pre == nil {
		pre = cur.PreAuthorizedApplications
	}
	api := map[string]any{
		"oauth2PermissionScopes":    append([]PermissionScope{}, scopes...),
		"preAuthorizedApplications": append([]PreAuthorizedApplication{}, pre...),
	}
	switch {
	case f.tokenVersion:
		api["requestedAccessTokenVersion"] = 2
	case cur.RequestedAccessTokenVersion != nil:
		api["requestedAccessTokenVersion"] = *cur.RequestedAccessTokenVersion
	default:
		api["requestedAccessTokenVersion"] = nil
	}
	if cur.KnownClientApplications != nil {
		api["knownClientApplications"] = cur.KnownClientApplications
	}
	if cur.AcceptMappedClaims != nil {
		api["acceptMappedClaims"] = *cur.AcceptMappedClaims
	}
	return api
}

// wholeWeb is the app's web with the repaired redirect URIs, its other properties kept.
func (f appFixes) wholeWeb() map[string]any {
	cur := f.current.Web
	web := map[string]any{"redirectUris": f.redirectURIs}
	if cur.HomePageURL != nil {
		web["homePageUrl"] = *cur.HomePageURL
	}
	if cur.LogoutURL != nil {
		web["logoutUrl"] = *cur.LogoutURL
	}
	if cur.ImplicitGrantSettings != nil {
		web["implicitGrantSettings"] = cur.ImplicitGrantSettings
	}
	return web
}

// requests combines the fixes into as few PATCHes as Graph accepts: one PATCH carries
// everything, except that a newly created scope goes first and the pre-authorizations that
// reference it follow in a second PATCH (Graph refuses a pre-authorization for a scope the
// app does not carry yet). Every PATCH that touches api or web sends it whole.
func (f appFixes) requests(appID string) []GraphRequest {
	if f.empty() {
		return nil
	}
	first := map[string]any{}
	if f.identifierURIs != nil {
		first["identifierUris"] = f.identifierURIs
	}
	if f.redirectURIs != nil {
		first["web"] = f.wholeWeb()
	}
	var second map[string]any
	switch {
	case f.preAuthorized != nil && f.newScope:
		first["api"] = f.wholeAPI(f.scopes, nil)
		second = map[string]any{"api": f.wholeAPI(f.scopes, f.preAuthorized)}
	case f.scopes != nil || f.preAuthorized != nil || f.tokenVersion:
		first["api"] = f.wholeAPI(f.scopes, f.preAuthorized)
	}
	var out []GraphRequest
	if len(first) > 0 {
		out = append(out, GraphRequest{Method: "PATCH", Path: appPath(appID), Body: first})
	}
	if second != nil {
		out = append(out, GraphRequest{Method: "PATCH", Path: appPath(appID), Body: second})
	}
	return out
}

// PlanAppFix returns the Graph requests that make an app registration fit for Teams SSO
// (identifier URI, access_as_user scope, Teams clients pre-authorized, Bot Framework redirect
// URI, v2 access tokens). It returns nothing when the registration needs no change, which is
// what makes --fix idempotent. The redirect URI is the global token service's; PlanAppFixFor
// names another region's.
func PlanAppFix(app *App) []GraphRequest { return PlanAppFixFor(app, BotFrameworkRedirectURI) }

// PlanAppFixFor is PlanAppFix for the token service whose OAuth redirect URI is redirectURI.
func PlanAppFixFor(app *App, redirectURI string) []GraphRequest {
	if app == nil {
		return nil
	}
	return planAppFixes(app, redirectURI, uuid.NewString).requests(strings.ToLower(app.AppID))
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, v) })
}
