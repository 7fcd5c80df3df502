package doctor

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// applyPatch applies a PATCH body to an app kept as generic JSON: collections are replaced;
// complex properties are replaced whole (replaceWhole) or merged property by property.
func applyPatch(app, body map[string]any, replaceWhole bool) {
	for k, v := range body {
		if pv, ok := v.(map[string]any); ok && !replaceWhole {
			if dv, ok := app[k].(map[string]any); ok {
				applyPatch(dv, pv, false)
				continue
			}
		}
		app[k] = v
	}
}

// acceptable mimics Graph's refusal of a pre-authorization naming a scope the app lacks.
func acceptable(t *testing.T, app map[string]any) {
	t.Helper()
	api, _ := app["api"].(map[string]any)
	ids := map[string]bool{}
	scopes, _ := api["oauth2PermissionScopes"].([]any)
	for _, s := range scopes {
		ids[s.(map[string]any)["id"].(string)] = true
	}
	pre, _ := api["preAuthorizedApplications"].([]any)
	for _, p := range pre {
		for _, id := range p.(map[string]any)["delegatedPermissionIds"].([]any) {
			if !ids[id.(string)] {
				t.Fatalf("Graph would refuse: pre-authorization for %s, which the app does not carry", id)
			}
		}
	}
}

// --fix leaves a working registration whether Graph merges a PATCHed api (OData 4.01) or
// replaces it whole (what infra/ is written for), and keeps what it did not need to change.
func TestFixPlanWorksWhetherGraphMergesOrReplacesComplexProperties(t *testing.T) {
	breaks := map[string]func(app map[string]any){
		"everything broken": func(app map[string]any) {
			app["identifierUris"] = []any{"api://" + tAppID}
			app["api"].(map[string]any)["oauth2PermissionScopes"] = []any{}
			app["api"].(map[string]any)["preAuthorizedApplications"] = []any{}
			app["api"].(map[string]any)["requestedAccessTokenVersion"] = 1
			app["web"].(map[string]any)["redirectUris"] = []any{"https://localhost"}
		},
		"only the token version": func(app map[string]any) { app["api"].(map[string]any)["requestedAccessTokenVersion"] = nil },
		"only the redirect URI":  func(app map[string]any) { app["web"].(map[string]any)["redirectUris"] = []any{} },
		"only the web client":    func(app map[string]any) { app["api"].(map[string]any)["preAuthorizedApplications"] = []any{} },
		"scope and pre-auth gone": func(app map[string]any) {
			delete(app["api"].(map[string]any), "oauth2PermissionScopes")
			delete(app["api"].(map[string]any), "preAuthorizedApplications")
		},
	}
	for name, breakIt := range breaks {
		for _, replaceWhole := range []bool{false, true} {
			mode := map[bool]string{false: "merge", true: "replace"}[replaceWhole]
			t.Run(name+"/"+mode, func(t *testing.T) {
				raw, err := os.ReadFile(testdataDir + "/app.json")
				if err != nil {
					t.Fatal(err)
				}
				var app map[string]any
				if err := json.Unmarshal(raw, &app); err != nil {
					t.Fatal(err)
				}
				app["api"].(map[string]any)["knownClientApplications"] = []any{"0a0b0c0d-0000-4000-8000-000000000001"}
				app["web"].(map[string]any)["logoutUrl"] = "https://example.com/logout"
				breakIt(app)

				var typed App
				b, _ := json.Marshal(app)
				if err := json.Unmarshal(b, &typed); err != nil {
					t.Fatal(err)
				}
				plan := PlanAppFix(&typed)
				if len(plan) == 0 {
					t.Fatal("nothing planned for a broken registration")
				}
				for _, req := range plan {
					// Through JSON, as the request goes on the wire.
					var body map[string]any
					b, _ := json.Marshal(req.Body)
					if err := json.Unmarshal(b, &body); err != nil {
						t.Fatal(err)
					}
					applyPatch(app, body, replaceWhole)
					acceptable(t, app)
				}

				var fixed App
				b, _ = json.Marshal(app)
				if err := json.Unmarshal(b, &fixed); err != nil {
					t.Fatal(err)
				}
				s := &Snapshot{App: &fixed, Absent: map[string]string{}, NotFound: map[string]string{}, GraphURL: DefaultGraphURL}
				for id, check := range map[string]func(*Snapshot) Result{
					"identifier-uri": checkIdentifierURI, "scope": checkScope, "preauthorized": checkPreAuthorized,
					"redirect-uri": checkRedirectURI, "token-version": checkTokenVersion,
				} {
					if r := check(s); r.Status != StatusPass {
						t.Errorf("%s after the fix: %s %s", id, r.Status, r.Detail)
					}
				}
				if got := strings.Join(fixed.API.KnownClientApplications, ","); got != "0a0b0c0d-0000-4000-8000-000000000001" {
					t.Errorf("knownClientApplications lost: %q", got)
				}
				if fixed.Web.LogoutURL == nil || *fixed.Web.LogoutURL != "https://example.com/logout" {
					t.Errorf("web.logoutUrl lost: %v", fixed.Web.LogoutURL)
				}
				if fixed.Web.ImplicitGrantSettings == nil {
					t.Error("web.implicitGrantSettings lost")
				}
				if PlanAppFix(&fixed) != nil {
					t.Errorf("a second plan is not empty: %v", PlanAppFix(&fixed))
				}
			})
		}
	}
}

// Without the scope, the pre-authorization check's fix lines add the scope in a first PATCH
// and pre-authorize Teams for it in a second, the order Graph accepts.
func TestPreAuthorizationFixAddsTheScopeFirst(t *testing.T) {
	f := goodFixture(t)
	obj(f.App, "api")["oauth2PermissionScopes"] = []any{}
	obj(f.App, "api")["preAuthorizedApplications"] = []any{}
	r, _, _ := runReport(t, f.offlineOptions(t))
	c, _ := r.Find("app.preauthorized")
	first := strings.Index(c.Fix, "PATCH ")
	second := strings.LastIndex(c.Fix, "PATCH ")
	if c.Status != StatusFail || first < 0 || second == first {
		t.Fatalf("want two PATCHes: %+v", c)
	}
	if strings.Contains(c.Fix[first:second], TeamsWebClientID) || !strings.Contains(c.Fix[first:second], `"value":"access_as_user"`) {
		t.Errorf("first PATCH must add the scope alone:\n%s", c.Fix[first:second])
	}
	if !strings.Contains(c.Fix[second:], TeamsWebClientID) || !strings.Contains(c.Fix[second:], `"value":"access_as_user"`) {
		t.Errorf("second PATCH must carry the scope and the pre-authorizations:\n%s", c.Fix[second:])
	}
}
