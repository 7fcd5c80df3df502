package config

import (
	"errors"
	"testing"
)

func TestSearchSettings(t *testing.T) {
	const appID, tenantID, miID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
	load := func(kv map[string]string) (*Config, error) {
		env := map[string]string{"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID}
		for k, v := range kv {
			env[k] = v
		}
		return Load(func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil || c.Search.Configured() {
		t.Fatalf("without settings the knowledge base is off: %v %+v", err, c.Search)
	}
	c, err = load(map[string]string{"AZURE_SEARCH_ENDPOINT": "https://kb.search.windows.net/", "AZURE_SEARCH_INDEX": "handbook"})
	if err != nil || c.Search.Endpoint != "https://kb.search.windows.net" || c.Search.APIVersion != DefaultSearchAPIVersion ||
		c.Search.TitleField != "title" || c.Search.URLField != "url" || c.Search.ContentField != "content" {
		t.Fatalf("configured: %v %+v", err, c.Search)
	}
	ok := map[string]string{"AZURE_SEARCH_ENDPOINT": "https://kb.search.windows.net", "AZURE_SEARCH_INDEX": "handbook"}
	with := func(kv map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range ok {
			out[k] = v
		}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string
	}{
		"endpoint without index":               {map[string]string{"AZURE_SEARCH_ENDPOINT": "https://kb.search.windows.net"}, "AZURE_SEARCH_INDEX"},
		"index without endpoint":               {map[string]string{"AZURE_SEARCH_INDEX": "handbook"}, "AZURE_SEARCH_ENDPOINT"},
		"endpoint with a path":                 {with(map[string]string{"AZURE_SEARCH_ENDPOINT": "https://kb.search.windows.net/indexes/handbook"}), "AZURE_SEARCH_ENDPOINT"},
		"plain http endpoint":                  {with(map[string]string{"AZURE_SEARCH_ENDPOINT": "http://kb.search.windows.net"}), "AZURE_SEARCH_ENDPOINT"},
		"bad index name":                       {with(map[string]string{"AZURE_SEARCH_INDEX": "Hand Book"}), "AZURE_SEARCH_INDEX"},
		"GA api version":                       {with(map[string]string{"AZURE_SEARCH_API_VERSION": "2025-09-01"}), "AZURE_SEARCH_API_VERSION"},
		"preview without default ACL trimming": {with(map[string]string{"AZURE_SEARCH_API_VERSION": "2025-08-01-preview"}), "AZURE_SEARCH_API_VERSION"},
		"two fields":                           {with(map[string]string{"AZURE_SEARCH_FIELDS": "title url"}), "AZURE_SEARCH_FIELDS"},
		"search as an Entra API":               {map[string]string{"ENTRA_APIS": `[{"name":"search","baseUrl":"https://x.example","scopes":["api://x/.default"]}]`}, "ENTRA_APIS"},
		"anonymous mode":                       {map[string]string{"BOT_APP_ID": "", "BOT_TENANT_ID": "", "BOT_MANAGED_IDENTITY_CLIENT_ID": "", "BOT_ALLOW_ANONYMOUS": "true", "AZURE_SEARCH_ENDPOINT": "https://kb.search.windows.net", "AZURE_SEARCH_INDEX": "handbook"}, "AZURE_SEARCH_ENDPOINT"},
	} {
		_, err := load(tc.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Problems[0].Setting != tc.setting {
			t.Errorf("%s: want a problem naming %s, got %v", name, tc.setting, err)
		}
	}
	if c, err := load(with(map[string]string{"AZURE_SEARCH_API_VERSION": "2026-05-01-preview"})); err != nil || c.Search.APIVersion != "2026-05-01-preview" {
		t.Fatalf("a newer preview: %v", err)
	}
}
