package doctor

import (
	"strings"
	"testing"
)

const (
	tSAMLSPID   = "5a11ab1e-0000-4000-8000-00000000005a"
	tSAMLAppID  = "5a11ab1e-0000-4000-8000-0000000000a1"
	tSAMLEntity = "https://s4h.contoso.example/saml"
	tSAMLToken  = "https://s4h.contoso.example/sap/bc/sec/oauth2/token"
)

func samlSetting(entity string) string {
	return `[{"name":"sap","display":"SAP S/4HANA","entityId":"` + entity + `","tokenUrl":"` + tSAMLToken + `","apiBaseUrl":"https://s4h.contoso.example/sap/opu/odata","clientId":"ONBEHALF","clientSecretName":"sap-client-secret"}]`
}

// The SAML application checks read the enterprise app from Graph: found by its Identifier,
// SAML mode, the token endpoint as first reply URL, the bot's consent, the assignment rule.
func TestSAMLAppChecks(t *testing.T) {
	goodSP := func() map[string]any {
		return map[string]any{
			"id": tSAMLSPID, "appId": tSAMLAppID, "displayName": "SAP S/4HANA",
			"servicePrincipalNames":     []string{tSAMLAppID, tSAMLEntity},
			"preferredSingleSignOnMode": "saml", "appRoleAssignmentRequired": true,
			"replyUrls": []string{"https://*.contoso.example/acs", tSAMLToken, "https://s4h.contoso.example/sap/saml2/sp/acs/100"},
		}
	}
	grant := map[string]any{"clientId": tSPID, "consentType": "AllPrincipals", "resourceId": tSAMLSPID, "scope": "user_impersonation"}
	for _, tc := range []struct {
		name   string
		entity string
		sp     func(map[string]any) map[string]any // nil: no enterprise app
		grant  bool
		status Status
		detail []string
		fix    []string
	}{
		{"everything in place", tSAMLEntity, func(m map[string]any) map[string]any { return m }, true,
			StatusPass, []string{"only users assigned to \"SAP S/4HANA\""}, nil},
		{"assignment not required", tSAMLEntity, func(m map[string]any) map[string]any { m["appRoleAssignmentRequired"] = false; return m }, true,
			StatusPass, []string{"every user of the tenant gets an assertion"}, nil},
		{"no enterprise app with the identifier", "https://other.contoso.example/saml", func(m map[string]any) map[string]any { return m }, true,
			StatusFail, []string{`no enterprise app has the Identifier (Entity ID) "https://other.contoso.example/saml"`}, []string{"Basic SAML Configuration: Identifier"}},
		{"another first reply URL", tSAMLEntity, func(m map[string]any) map[string]any {
			m["replyUrls"] = []string{"https://s4h.contoso.example/sap/saml2/sp/acs/100", tSAMLToken}
			return m
		}, true, StatusFail, []string{"first reply URL", "saml2/sp/acs/100", "refuses them"}, []string{"make " + tSAMLToken + " the first"}},
		{"not in SAML mode", tSAMLEntity, func(m map[string]any) map[string]any { m["preferredSingleSignOnMode"] = "oidc"; return m }, true,
			StatusFail, []string{`single sign-on mode "oidc"`}, []string{`"preferredSingleSignOnMode":"saml"`}},
		{"no consent", tSAMLEntity, func(m map[string]any) map[string]any { return m }, false,
			StatusFail, []string{"no consent", "AADSTS65001"}, []string{"az ad app permission grant --id " + tAppID + " --api " + tSAMLAppID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := goodFixture(t)
			f.setSetting("SAML_APPS", samlSetting(tc.entity))
			f.setSetting("OAUTH2_DEV_SECRETS", "")
			env := f.startLive(t)
			if tc.sp != nil {
				if err := env.graph.PutServicePrincipal(tc.sp(goodSP())); err != nil {
					t.Fatal(err)
				}
			}
			if tc.grant {
				if err := env.graph.PutGrant(grant); err != nil {
					t.Fatal(err)
				}
			}
			r, _, stderr := runReport(t, env.opts)
			got, ok := r.Find("connectors.saml")
			if !ok {
				t.Fatalf("no result (%s)", stderr)
			}
			if got.Status != tc.status {
				t.Fatalf("status %s, want %s: %s", got.Status, tc.status, got.Detail)
			}
			for _, s := range tc.detail {
				if !strings.Contains(got.Detail, s) {
					t.Errorf("detail %q does not mention %q", got.Detail, s)
				}
			}
			for _, s := range tc.fix {
				if !strings.Contains(got.Fix, s) {
					t.Errorf("fix %q does not contain %q", got.Fix, s)
				}
			}
		})
	}
}

// Offline, Graph is not read: the check says so instead of guessing.
func TestSAMLAppChecksOffline(t *testing.T) {
	f := goodFixture(t)
	f.setSetting("SAML_APPS", samlSetting(tSAMLEntity))
	r, _, _ := runReport(t, f.offlineOptions(t))
	got, _ := r.Find("connectors.saml")
	if got.Status != StatusSkip {
		t.Fatalf("status %s: %s", got.Status, got.Detail)
	}
}
