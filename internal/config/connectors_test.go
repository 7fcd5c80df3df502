package config

import (
	"errors"
	"strings"
	"testing"
)

func TestConnectorSettings(t *testing.T) {
	const devKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	local := map[string]string{
		"BOT_ALLOW_ANONYMOUS":          "true",
		"TOKENSTORE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
		"TOKENSTORE_DEV_KEY":           devKey,
		"BOT_PUBLIC_URL":               "http://127.0.0.1:3978",
	}
	azure := map[string]string{
		"WEBSITE_SITE_NAME": "func-onbehalf", "BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"TOKENSTORE_TABLE_ENDPOINT": "https://st.table.core.windows.net", "TOKENSTORE_KEYVAULT_URL": "https://kv.vault.azure.net/",
		"BOT_PUBLIC_URL": "https://func-onbehalf.azurewebsites.net",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const github = `[{"name":"github","authURL":"https://github.com/login/oauth/authorize","tokenURL":"https://github.com/login/oauth/access_token","apiBaseURL":"https://api.github.com","clientID":"Iv1.x","clientSecretName":"github-client-secret"}]`

	ok := []struct {
		name string
		env  map[string]string
	}{
		{"atlassian locally with a dev secret", with(local, "ATLASSIAN_CLIENT_ID", "c", "ATLASSIAN_CLIENT_SECRET", "s", "ATLASSIAN_AUTH_URL", "https://127.0.0.1:8443/")},
		{"atlassian in Azure from Key Vault", with(azure, "ATLASSIAN_CLIENT_ID", "c")},
		{"generic connector in Azure", with(azure, "OAUTH2_CONNECTORS", github)},
		{"generic connector locally with a dev secret", with(local, "OAUTH2_CONNECTORS", github, "OAUTH2_DEV_SECRETS", `{"github-client-secret":"x"}`)},
		{"no connectors need no public URL", with(local, "BOT_PUBLIC_URL", "")},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if tc.env["ATLASSIAN_CLIENT_ID"] != "" && (c.Atlassian.ClientSecretName != DefaultAtlassianSecretName || !c.Atlassian.Configured()) {
				t.Fatalf("atlassian settings %+v", c.Atlassian)
			}
			if tc.env["OAUTH2_CONNECTORS"] != "" && (len(c.OAuth2Connectors) != 1 || c.OAuth2Connectors[0].Name != "github") {
				t.Fatalf("connectors %+v", c.OAuth2Connectors)
			}
			if strings.HasSuffix(c.Atlassian.AuthURL, "/") {
				t.Fatal("trailing slash kept")
			}
		})
	}

	bad := []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"dev secret refused in Azure", with(azure, "ATLASSIAN_CLIENT_ID", "c", "ATLASSIAN_CLIENT_SECRET", "s"), "ATLASSIAN_CLIENT_SECRET"},
		{"dev secrets map refused in Azure", with(azure, "OAUTH2_CONNECTORS", github, "OAUTH2_DEV_SECRETS", `{"github-client-secret":"x"}`), "OAUTH2_DEV_SECRETS"},
		{"connector without public URL", with(local, "ATLASSIAN_CLIENT_ID", "c", "ATLASSIAN_CLIENT_SECRET", "s", "BOT_PUBLIC_URL", ""), "BOT_PUBLIC_URL"},
		{"connector without token store", with(local, "ATLASSIAN_CLIENT_ID", "c", "ATLASSIAN_CLIENT_SECRET", "s", "TOKENSTORE_CONNECTION_STRING", "", "TOKENSTORE_DEV_KEY", ""), "TOKENSTORE_TABLE_ENDPOINT"},
		{"atlassian with no secret source", with(local, "ATLASSIAN_CLIENT_ID", "c"), "ATLASSIAN_CLIENT_SECRET_NAME"},
		{"generic connector with no secret source", with(local, "OAUTH2_CONNECTORS", github), "OAUTH2_CONNECTORS"},
		{"reserved connector name", with(azure, "OAUTH2_CONNECTORS", strings.Replace(github, `"github"`, `"jira"`, 1)), "OAUTH2_CONNECTORS"},
		{"malformed connectors", with(azure, "OAUTH2_CONNECTORS", `{"name":"x"}`), "OAUTH2_CONNECTORS"},
		{"plain http API URL", with(local, "ATLASSIAN_CLIENT_ID", "c", "ATLASSIAN_CLIENT_SECRET", "s", "ATLASSIAN_API_URL", "http://api.example.com"), "ATLASSIAN_API_URL"},
		{"URL without client id", with(local, "ATLASSIAN_DC_BASE_URL", "https://jira.example.com"), "ATLASSIAN_DC_BASE_URL"},
		{"dev secrets not JSON", with(local, "OAUTH2_DEV_SECRETS", "github=x"), "OAUTH2_DEV_SECRETS"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			found := false
			for _, p := range ce.Problems {
				found = found || p.Setting == tc.setting
				if strings.Contains(p.Reason, `"x"`) || strings.Contains(p.Reason, "=s") {
					t.Errorf("a secret value appears in the problem: %s", p.Reason)
				}
			}
			if !found {
				t.Fatalf("no problem for %s in %v", tc.setting, err)
			}
		})
	}
}
