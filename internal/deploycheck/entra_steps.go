package deploycheck

import (
	"fmt"
	"regexp"
	"strings"
)

// The app registration is declared more than once (one PATCH per declaration, by uniqueName).
// Two service rules shape how (infra/modules/entra-app-scope.bicep):
//   - Graph refuses a pre-authorization whose delegatedPermissionIds name a scope the app does
//     not already carry, so a declaration that adds the scope alone must run, in an earlier
//     deployment, before the one that pre-authorizes Teams for it;
//   - a PATCH that carries `api` replaces it whole, so every declaration that carries `api`
//     carries the same scopes and token version, and one without the pre-authorizations may
//     only run on the first provision (a module condition on a flag azd feeds back from an
//     output of main.bicep through main.parameters.json).

// scopeFields are the access_as_user properties every declaration must send alike.
var scopeFields = []string{"id", "value", "type", "isEnabled", "adminConsentDisplayName",
	"adminConsentDescription", "userConsentDisplayName", "userConsentDescription"}

// scopeObjects returns, by resolved id, the canonical text of each oauth2PermissionScopes entry.
func (c *checker) scopeObjects(r *Resource) map[string]string {
	out := map[string]string{}
	scopes := r.Body.Get("api.oauth2PermissionScopes")
	if scopes == nil || scopes.Kind != KindArray {
		return out
	}
	for _, s := range scopes.Items {
		id, _ := c.in.Literal(r.File, s.Get("id"))
		var parts []string
		for _, k := range scopeFields {
			parts = append(parts, k+"="+c.in.Resolve(r.File, s.Get(k)))
		}
		out[strings.ToLower(id)] = strings.Join(parts, "; ")
	}
	return out
}

// deployingModule returns the single module (and the file declaring it) that deploys f.
func (c *checker) deployingModule(f *File) (*File, *Module) {
	cs := c.in.callers[f.Path]
	if len(cs) != 1 {
		return nil, nil
	}
	return cs[0].file, cs[0].module
}

// dependsOn reports whether module m (declared in f) names module dep in dependsOn or reads
// one of its outputs.
func dependsOn(m *Module, dep *Module) bool {
	if d := m.Body.Get("dependsOn"); d != nil {
		for _, it := range d.Items {
			if strings.TrimSpace(it.Text) == dep.Symbol {
				return true
			}
		}
	}
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(dep.Symbol) + `\.outputs\.`).MatchString(m.Body.Text)
}

var negatedParam = regexp.MustCompile(`^!\s*([A-Za-z_][A-Za-z0-9_]*)$`)
var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)(=[^}]*)?\}$`)

// firstProvisionOnly explains why module m (declared in f) is not limited to the first
// provision, or returns "" when it is: its condition is !P for a bool param P of f that
// main.parameters.json sets from an azd environment value V, and f outputs V = true.
func (c *checker) firstProvisionOnly(f *File, m *Module) string {
	cm := negatedParam.FindStringSubmatch(m.Condition)
	if cm == nil {
		return fmt.Sprintf("module %s is deployed on every provision (condition %q); it must run only while a first-provision flag is false", m.Symbol, m.Condition)
	}
	p := f.Params[cm[1]]
	if p == nil || p.Type != "bool" {
		return fmt.Sprintf("module %s: condition %q does not negate a bool parameter", m.Symbol, m.Condition)
	}
	if f.Path != "main.bicep" {
		return fmt.Sprintf("module %s: the flag %s must be a parameter of main.bicep", m.Symbol, cm[1])
	}
	ref, ok := c.params[cm[1]]
	if !ok {
		return fmt.Sprintf("main.parameters.json does not set %s, so azd never feeds the flag back", cm[1])
	}
	em := envRef.FindStringSubmatch(ref)
	if em == nil {
		return fmt.Sprintf("main.parameters.json sets %s to %q, not to an azd environment value", cm[1], ref)
	}
	out := f.Outputs[em[1]]
	if out == nil || out.Type != "bool" || strings.TrimSpace(out.Value.Text) != "true" {
		return fmt.Sprintf("main.bicep has no `output %s bool = true`, so %s stays false and the module runs on every provision", em[1], cm[1])
	}
	return ""
}

func (c *checker) checkEntraSteps() {
	var sso *Resource
	for _, a := range c.resources("Microsoft.Graph/applications") {
		if a.Body.Get("api.preAuthorizedApplications") != nil {
			sso = a
		}
	}
	if sso == nil {
		return // TeamsClientsPreauth reports the missing pre-authorizations
	}
	key := c.in.Resolve(sso.File, sso.Body.Get("uniqueName"))
	ssoScopes := c.scopeObjects(sso)
	var preIDs []string
	for _, p := range sso.Body.Get("api.preAuthorizedApplications").Items {
		for _, id := range c.in.ArrayItems(sso.File, p.Get("delegatedPermissionIds"), "") {
			preIDs = append(preIDs, strings.ToLower(strings.Trim(id, "'")))
		}
	}
	ssoPre := c.in.Resolve(sso.File, sso.Body.Get("api.preAuthorizedApplications"))

	var scopeStep *Resource
	for _, a := range c.resources("Microsoft.Graph/applications") {
		if a == sso || c.in.Resolve(a.File, a.Body.Get("uniqueName")) != key || a.Body.Get("api") == nil {
			continue
		}
		// Every declaration that carries api carries it whole.
		if v := a.Body.Get("api.requestedAccessTokenVersion"); v == nil || strings.TrimSpace(v.Text) != "2" {
			c.fail(EntraAPIWhole, a.File, a.Line, "application %s carries api without requestedAccessTokenVersion 2; the PATCH would reset the token version", a.Symbol)
		}
		have := c.scopeObjects(a)
		for id, want := range ssoScopes {
			if have[id] != want {
				c.fail(EntraAPIWhole, a.File, a.Line, "application %s carries api but its scope %s differs from the Teams SSO declaration's (%s vs %s); every declaration must send the same scope", a.Symbol, id, orNone(have[id]), want)
			}
		}
		pre := a.Body.Get("api.preAuthorizedApplications")
		if pre != nil && c.in.Resolve(a.File, pre) == ssoPre {
			continue
		}
		// Without the pre-authorizations: allowed only as the first-provision scope step.
		mf, m := c.deployingModule(a.File)
		if m == nil {
			c.fail(EntraAPIWhole, a.File, a.Line, "application %s carries api without the Teams pre-authorizations and is not deployed by exactly one module", a.Symbol)
			continue
		}
		if why := c.firstProvisionOnly(mf, m); why != "" {
			c.fail(EntraAPIWhole, mf, m.Line, "application %s (%s) carries api without the Teams pre-authorizations, which a re-provision would drop: %s", a.Symbol, a.File.Path, why)
			continue
		}
		if pre == nil || len(pre.Items) == 0 {
			ok := true
			for _, id := range preIDs {
				if _, found := have[id]; !found {
					ok = false
				}
			}
			if ok {
				scopeStep = a
			}
		}
	}

	if scopeStep == nil {
		c.fail(EntraScopeFirst, sso.File, sso.Line, "the pre-authorized scope is added in the same PATCH as the pre-authorizations; Graph refuses that on the first provision. Declare the app with the scope alone in an earlier module")
		return
	}
	_, ssoMod := c.deployingModule(sso.File)
	_, scopeMod := c.deployingModule(scopeStep.File)
	if ssoMod == nil || scopeMod == nil || scopeStep.File == sso.File || !dependsOn(ssoMod, scopeMod) {
		c.fail(EntraScopeFirst, sso.File, sso.Line, "the module declaring the Teams pre-authorizations does not depend on the module (%s) that adds the scope first", scopeStep.File.Path)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
