package config

import (
	"errors"
	"strings"
	"testing"
)

// SAML_APPS problems are named at start-up, each with the setting to fix.
func TestSAMLAppSettings(t *testing.T) {
	const sap = `[{"name":"sap","entityId":"spn:S4H_100","tokenUrl":"https://s4h.example/sap/bc/sec/oauth2/token","apiBaseUrl":"https://s4h.example/sap/opu/odata","clientId":"ONBEHALF","clientSecretName":"sap-client-secret"}]`
	azure := map[string]string{
		"WEBSITE_SITE_NAME": "func-onbehalf", "BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"TOKENSTORE_TABLE_ENDPOINT": "https://st.table.core.windows.net", "TOKENSTORE_KEYVAULT_URL": "https://kv.vault.azure.net/",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range azure {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := Load(env(with("SAML_APPS", sap)))
	if err != nil || len(c.SAMLApps) != 1 || c.SAMLApps[0].Name != "sap" || c.SAMLApps[0].NameID != "upn" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct {
		name, want string
		env        map[string]string
	}{
		{"not JSON", "SAML_APPS", with("SAML_APPS", "sap")},
		{"name taken by an Entra API", "SAML_APPS", with("SAML_APPS", sap, "ENTRA_APIS", `[{"name":"sap","baseUrl":"https://x.example","scopes":["api://x/.default"]}]`)},
		{"plain http token URL", "SAML_APPS", with("SAML_APPS", strings.Replace(sap, "https://s4h.example/sap/bc", "http://s4h.example/sap/bc", 1))},
		{"no token store", "TOKENSTORE_TABLE_ENDPOINT", with("SAML_APPS", sap, "TOKENSTORE_TABLE_ENDPOINT", "")},
		{"no secret source", "SAML_APPS", with("SAML_APPS", sap, "TOKENSTORE_KEYVAULT_URL", "", "WEBSITE_SITE_NAME", "", "TOKENSTORE_DEV_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")},
		{"anonymous mode", "SAML_APPS", map[string]string{"BOT_ALLOW_ANONYMOUS": "true", "SAML_APPS": sap, "OAUTH2_DEV_SECRETS": `{"sap-client-secret":"x"}`,
			"TOKENSTORE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
			"TOKENSTORE_DEV_KEY":           "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			for _, p := range ce.Problems {
				if p.Setting == tc.want {
					return
				}
			}
			t.Fatalf("no problem for %s in %v", tc.want, err)
		})
	}
}
