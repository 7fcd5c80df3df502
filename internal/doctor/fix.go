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
	identifierURIs []string
	scopes         []PermissionScope // the whole collection: Graph replaces collections on PATCH
	newScope       bool
	preAuthorized  []PreAuthorizedApplication
	redirectURIs   []string
	tokenVersion   bool
}

// planAppFixes works out what the app registration needs for Teams SSO. newID makes scope ids.
func planAppFixes(app *App, newID func() string) appFixes {
	var f appFixes
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

	if !slices.Contains(app.Web.RedirectURIs, BotFrameworkRedirectURI) {
		f.redirectURIs = append(slices.Clone(app.Web.RedirectURIs), BotFrameworkRedirectURI)
	}
	f.tokenVersion = app.API.RequestedAccessTokenVersion == nil || *app.API.RequestedAccessTokenVersion != 2
	return f
}

func (f appFixes) empty() bool {
	return f.identifierURIs == nil && f.scopes == nil && f.preAuthorized == nil && f.redirectURIs == nil && !f.tokenVersion
}

// requests combines the fixes into as few PATCHes as Graph accepts: complex properties merge
// and collections are replaced, so one PATCH carries everything, except that a newly created
// scope goes first and the pre-authorizations that reference it follow in a second PATCH.
func (f appFixes) requests(appID string) []GraphRequest {
	if f.empty() {
		return nil
	}
	first := map[string]any{}
	api := map[string]any{}
	if f.identifierURIs != nil {
		first["identifierUris"] = f.identifierURIs
	}
	if f.scopes != nil {
		api["oauth2PermissionScopes"] = f.scopes
	}
	if f.tokenVersion {
		api["requestedAccessTokenVersion"] = 2
	}
	if f.redirectURIs != nil {
		first["web"] = map[string]any{"redirectUris": f.redirectURIs}
	}
	var second map[string]any
	if f.preAuthorized != nil {
		if f.newScope {
			second = map[string]any{"api": map[string]any{"preAuthorizedApplications": f.preAuthorized}}
		} else {
			api["preAuthorizedApplications"] = f.preAuthorized
		}
	}
	if len(api) > 0 {
		first["api"] = api
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
// what makes --fix idempotent.
func PlanAppFix(app *App) []GraphRequest {
	if app == nil {
		return nil
	}
	return planAppFixes(app, uuid.NewString).requests(strings.ToLower(app.AppID))
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, v) })
}
