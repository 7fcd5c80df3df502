package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

const (
	appID    = "11111111-1111-1111-1111-111111111111"
	tenantID = "22222222-2222-2222-2222-222222222222"
	miID     = "33333333-3333-3333-3333-333333333333"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != DefaultPort || c.AuthorityHost != DefaultAuthorityHost || c.OpenIDMetadataURL != DefaultOpenIDMetadataURL ||
		c.TokenServiceURL != DefaultTokenServiceURL || c.BotFrameworkScope != DefaultBotFrameworkScope || c.OAuthConnection != "sso" {
		t.Fatalf("public-cloud defaults not applied: %+v", c)
	}
	if c.Anonymous || c.InAzure {
		t.Fatalf("unexpected mode: anonymous=%v inAzure=%v", c.Anonymous, c.InAzure)
	}
}

func TestLoadOverridesForSovereignClouds(t *testing.T) {
	c, err := Load(env(map[string]string{
		"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"ENTRA_AUTHORITY_HOST":             "https://login.microsoftonline.us/",
		"BOTFRAMEWORK_OPENID_METADATA_URL": "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
		"BOTFRAMEWORK_TOKEN_SERVICE_URL":   "https://tokengcch.botframework.azure.us",
		"BOTFRAMEWORK_SCOPE":               "https://api.botframework.us/.default",
		"FUNCTIONS_CUSTOMHANDLER_PORT":     "41234",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthorityHost != "https://login.microsoftonline.us" || c.Port != 41234 ||
		c.TokenServiceURL != "https://tokengcch.botframework.azure.us" || c.BotFrameworkScope != "https://api.botframework.us/.default" {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

// Every missing or malformed setting is named in one error.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{
		"WEBSITE_SITE_NAME":              "func-onbehalf",
		"BOT_APP_ID":                     "not-a-guid",
		"BOT_MANAGED_IDENTITY_CLIENT_ID": "also-bad",
		"FUNCTIONS_CUSTOMHANDLER_PORT":   "99999",
		"ENTRA_AUTHORITY_HOST":           "http://login.example.com",
		"LOG_LEVEL":                      "loud",
		"BOT_CLIENT_SECRET":              "s3cret",
		"TOKENSTORE_DEV_KEY":             "c2hvcnQ=",
	}))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *config.Error, got %v", err)
	}
	want := []string{"BOT_APP_ID", "BOT_MANAGED_IDENTITY_CLIENT_ID", "FUNCTIONS_CUSTOMHANDLER_PORT", "ENTRA_AUTHORITY_HOST",
		"LOG_LEVEL", "BOT_CLIENT_SECRET", "TOKENSTORE_DEV_KEY", "TOKENSTORE_TABLE_ENDPOINT", "TOKENSTORE_KEYVAULT_URL"}
	got := map[string]bool{}
	for _, p := range cerr.Problems {
		got[p.Setting] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("problem for %s not reported; error was:\n%v", w, err)
		}
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message does not name %s", w)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("error message leaks a secret value")
	}
}

// Anonymous mode must never switch on when a bot identity is configured, nor in Azure.
func TestAnonymousModeIsLocalOnly(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		anon    bool
		problem string
	}{
		{"explicit local opt-in", map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}, true, ""},
		{"nothing set is an error, not anonymous", map[string]string{}, false, "BOT_APP_ID"},
		{"app id set with opt-in", map[string]string{"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID, "BOT_ALLOW_ANONYMOUS": "true"}, false, "BOT_ALLOW_ANONYMOUS"},
		{"app id set without opt-in", map[string]string{"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID}, false, ""},
		{"malformed app id with opt-in", map[string]string{"BOT_APP_ID": "x", "BOT_ALLOW_ANONYMOUS": "true"}, false, "BOT_APP_ID"},
		{"in Azure with opt-in", map[string]string{"WEBSITE_INSTANCE_ID": "abc", "BOT_ALLOW_ANONYMOUS": "true"}, false, "BOT_ALLOW_ANONYMOUS"},
		{"in Azure without app id", map[string]string{"WEBSITE_SITE_NAME": "func"}, false, "BOT_APP_ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if tc.problem == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Anonymous != tc.anon {
					t.Fatalf("Anonymous = %v, want %v", c.Anonymous, tc.anon)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted (anonymous=%v); want a problem with %s", c.Anonymous, tc.problem)
			}
			if !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("error %q does not name %s", err, tc.problem)
			}
		})
	}
}

func TestDevOnlySettingsRefusedInAzure(t *testing.T) {
	base := map[string]string{
		"WEBSITE_INSTANCE_ID": "x", "BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"TOKENSTORE_TABLE_ENDPOINT": "https://st.table.core.windows.net", "TOKENSTORE_KEYVAULT_URL": "https://kv.vault.azure.net",
	}
	if _, err := Load(env(base)); err != nil {
		t.Fatalf("a correct Azure configuration was refused: %v", err)
	}
	for _, name := range []string{"BOT_CLIENT_SECRET", "TOKENSTORE_CONNECTION_STRING", "TOKENSTORE_DEV_KEY"} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range base {
				e[k] = v
			}
			e[name] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			_, err := Load(env(e))
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "refused when running in Azure") {
				t.Fatalf("want %s refused in Azure, got %v", name, err)
			}
		})
	}
}

// Every setting Load reads is documented in local.settings.json.template.
func TestTemplateDocumentsEverySetting(t *testing.T) {
	read := map[string]bool{}
	_, _ = Load(func(k string) string { read[k] = true; return "" })
	data, err := os.ReadFile("../../local.settings.json.template")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Values   map[string]string `json:"Values"`
		Settings map[string]string `json:"_settings"`
	}
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatalf("template is not valid JSON: %v", err)
	}
	for name := range read {
		if name == "WEBSITE_INSTANCE_ID" || name == "WEBSITE_SITE_NAME" {
			continue // set by the platform
		}
		if tmpl.Settings[name] == "" {
			t.Errorf("%s is read by the handler but not documented in the template's _settings", name)
		}
	}
}

func TestEntraAPIs(t *testing.T) {
	base := map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}
	with := func(v string) map[string]string {
		m := map[string]string{"ENTRA_APIS": v}
		for k, x := range base {
			m[k] = x
		}
		return m
	}
	c, err := Load(env(with(`[{"name":"contoso","baseUrl":"https://hr.contoso.com/api","scopes":["api://contoso-hr/access_as_user"]}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EntraAPIs) != 1 || c.EntraAPIs[0].Scopes[0] != "api://contoso-hr/access_as_user" {
		t.Fatalf("parsed %+v", c.EntraAPIs)
	}
	for _, bad := range []string{`{}`, `[{"name":"graph","baseUrl":"https://x","scopes":["a"]}]`, `[{"name":"x","baseUrl":"http://x","scopes":["a"]}]`,
		`[{"name":"x","baseUrl":"https://x","scopes":[]}]`, `[{"name":"x","baseUrl":"https://x","scopes":["a"],"secret":"s"}]`} {
		if _, err := Load(env(with(bad))); err == nil || !strings.Contains(err.Error(), "ENTRA_APIS") {
			t.Errorf("ENTRA_APIS=%s accepted (err %v)", bad, err)
		}
	}
}

func TestPlainHTTPOnlyToLoopbackOutsideAzure(t *testing.T) {
	local := map[string]string{"BOT_ALLOW_ANONYMOUS": "true", "GRAPH_URL": "http://127.0.0.1:8080"}
	if _, err := Load(env(local)); err != nil {
		t.Fatalf("loopback http refused locally: %v", err)
	}
	azure := map[string]string{"WEBSITE_SITE_NAME": "f", "BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"TOKENSTORE_TABLE_ENDPOINT": "https://st.table.core.windows.net", "TOKENSTORE_KEYVAULT_URL": "https://kv.vault.azure.net",
		"BOTFRAMEWORK_TOKEN_SERVICE_URL": "http://127.0.0.1:8080"}
	if _, err := Load(env(azure)); err == nil || !strings.Contains(err.Error(), "BOTFRAMEWORK_TOKEN_SERVICE_URL") {
		t.Fatalf("plain http accepted in Azure: %v", err)
	}
}

func TestAssistantSettings(t *testing.T) {
	load := func(kv map[string]string) (*Config, error) {
		env := map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}
		for k, v := range kv {
			env[k] = v
		}
		return Load(func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil || c.Assistant.Configured() {
		t.Fatalf("without settings the assistant is off: %v %+v", err, c.Assistant)
	}
	c, err = load(map[string]string{"AZURE_OPENAI_ENDPOINT": "https://aoai.openai.azure.com/", "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-mini",
		"ASSISTANT_LINK_HOSTS": "contoso.atlassian.net *.sharepoint.com"})
	if err != nil || c.Assistant.Endpoint != "https://aoai.openai.azure.com" || c.Assistant.APIVersion != DefaultOpenAIAPIVersion ||
		len(c.Assistant.LinkHosts) != 2 {
		t.Fatalf("configured: %v %+v", err, c)
	}
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string
	}{
		"endpoint without deployment": {map[string]string{"AZURE_OPENAI_ENDPOINT": "https://a.openai.azure.com"}, "AZURE_OPENAI_DEPLOYMENT"},
		"deployment without endpoint": {map[string]string{"AZURE_OPENAI_DEPLOYMENT": "d"}, "AZURE_OPENAI_ENDPOINT"},
		"endpoint with a path":        {map[string]string{"AZURE_OPENAI_ENDPOINT": "https://a.openai.azure.com/openai/deployments/d", "AZURE_OPENAI_DEPLOYMENT": "d"}, "AZURE_OPENAI_ENDPOINT"},
		"plain http endpoint":         {map[string]string{"AZURE_OPENAI_ENDPOINT": "http://a.openai.azure.com", "AZURE_OPENAI_DEPLOYMENT": "d"}, "AZURE_OPENAI_ENDPOINT"},
		"bad api version":             {map[string]string{"AZURE_OPENAI_ENDPOINT": "https://a.openai.azure.com", "AZURE_OPENAI_DEPLOYMENT": "d", "AZURE_OPENAI_API_VERSION": "latest"}, "AZURE_OPENAI_API_VERSION"},
		"bad deployment":              {map[string]string{"AZURE_OPENAI_ENDPOINT": "https://a.openai.azure.com", "AZURE_OPENAI_DEPLOYMENT": "a/b"}, "AZURE_OPENAI_DEPLOYMENT"},
		"url as link host":            {map[string]string{"ASSISTANT_LINK_HOSTS": "https://evil.example"}, "ASSISTANT_LINK_HOSTS"},
	} {
		_, err := load(tc.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Problems[0].Setting != tc.setting {
			t.Errorf("%s: want a problem naming %s, got %v", name, tc.setting, err)
		}
	}
}
