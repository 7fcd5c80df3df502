package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/onbehalf/onbehalf/internal/testenv/arm"
	"github.com/onbehalf/onbehalf/internal/testenv/azuretoken"
	"github.com/onbehalf/onbehalf/internal/testenv/graph"
)

// The ids of the correct deployment in testdata/deployment.
const (
	tAppID      = "b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	tTenant     = "8f3c2a51-6b7d-4e2f-9a1c-3d5e7f9b1c2d"
	tSPID       = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
	tGraphSPID  = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
	tMIPrincip  = "9d8c7b6a-5f4e-4d3c-9b2a-1f0e9d8c7b6a"
	tMIClient   = "2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
	tSub        = "11111111-2222-4333-8444-555555555555"
	tRG         = "rg-onbehalf"
	tBot        = "bot-onbehalf"
	tFuncApp    = "func-onbehalf"
	tFuncHost   = "func-onbehalf.azurewebsites.net"
	testdataDir = "testdata/deployment"
)

// fixture is a whole deployment as JSON documents. Offline files and the live stand-ins are
// both made from it, so one mutation describes a misconfiguration in either mode.
type fixture struct {
	App        map[string]any
	FICs       []any
	Bot        map[string]any
	Connection map[string]any
	Manifest   map[string]any
	Identity   map[string]any
	Settings   []any // az functionapp config appsettings list shape
	Roles      []any
	Grants     map[string]any

	// Live only.
	NoServicePrincipal bool
	NoApp              bool
	NoBot              bool
	NoIdentity         bool // the Function App has no user-assigned identity
	EndpointStatus     int  // what the messaging endpoint answers (default 401)
	EndpointDown       bool // nothing listens at the messaging endpoint
	Model              *modelFixture
}

// modelFixture is the assistant's model account in the resource group (live only).
type modelFixture struct {
	KeysOn       bool   // disableLocalAuth false
	NoDeployment bool   // the deployment the settings name does not exist
	Role         string // role definition id held by the managed identity on the account; "" none
}

const (
	tModelAccount  = "oai-onbehalf"
	tModelEndpoint = "https://oai-onbehalf.openai.azure.com/"
)

// withModel turns the assistant on with the model account m.
func (f *fixture) withModel(m *modelFixture) {
	f.Model = m
	f.setSetting("AZURE_OPENAI_ENDPOINT", strings.TrimSuffix(tModelEndpoint, "/"))
	f.setSetting("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini")
}

func readFixtureFile(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func goodFixture(t *testing.T) *fixture {
	f := &fixture{}
	readFixtureFile(t, "app.json", &f.App)
	readFixtureFile(t, "fic.json", &f.FICs)
	readFixtureFile(t, "bot.json", &f.Bot)
	readFixtureFile(t, "connection.json", &f.Connection)
	readFixtureFile(t, "manifest.json", &f.Manifest)
	readFixtureFile(t, "identity.json", &f.Identity)
	readFixtureFile(t, "settings.json", &f.Settings)
	readFixtureFile(t, "roles.json", &f.Roles)
	readFixtureFile(t, "grants.json", &f.Grants)
	return f
}

// obj walks a path of keys/indices into the fixture's JSON.
func obj(v any, path ...any) map[string]any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v.(map[string]any)
}

func (f *fixture) setSetting(name, value string) {
	for _, kv := range f.Settings {
		m := kv.(map[string]any)
		if m["name"] == name {
			m["value"] = value
			return
		}
	}
	f.Settings = append(f.Settings, map[string]any{"name": name, "value": value, "slotSetting": false})
}

func (f *fixture) deleteSetting(name string) {
	out := f.Settings[:0]
	for _, kv := range f.Settings {
		if kv.(map[string]any)["name"] != name {
			out = append(out, kv)
		}
	}
	f.Settings = out
}

func (f *fixture) settingsMap() map[string]string {
	m := map[string]string{}
	for _, kv := range f.Settings {
		e := kv.(map[string]any)
		m[e["name"].(string)], _ = e["value"].(string)
	}
	return m
}

func (f *fixture) setConnParam(key, value string) {
	params := obj(f.Connection, "properties")["parameters"].([]any)
	for _, p := range params {
		m := p.(map[string]any)
		if strings.EqualFold(m["key"].(string), key) {
			m["value"] = value
			return
		}
	}
}

func writeJSONFile(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// offlineOptions writes the fixture as the files az would print.
func (f *fixture) offlineOptions(t *testing.T) Options {
	dir := t.TempDir()
	return Options{Offline: OfflineFiles{
		App:                  writeJSONFile(t, dir, "app.json", f.App),
		Bot:                  writeJSONFile(t, dir, "bot.json", f.Bot),
		Connection:           writeJSONFile(t, dir, "connection.json", f.Connection),
		Manifest:             writeJSONFile(t, dir, "manifest.json", f.Manifest),
		Settings:             writeJSONFile(t, dir, "settings.json", f.Settings),
		FederatedCredentials: writeJSONFile(t, dir, "fic.json", f.FICs),
		Identity:             writeJSONFile(t, dir, "identity.json", f.Identity),
		RoleAssignments:      writeJSONFile(t, dir, "roles.json", f.Roles),
		Grants:               writeJSONFile(t, dir, "grants.json", f.Grants),
	}}
}

// liveEnv is the fixture served by the Graph and ARM stand-ins plus a messaging endpoint.
type liveEnv struct {
	graph *graph.Server
	arm   *arm.Server
	cred  *azuretoken.Credential
	opts  Options
}

// rehost points every mention of the Function App's host at the test endpoint.
func rehost(t *testing.T, v any, endpointURL string) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(endpointURL, "https://")
	b = bytes.ReplaceAll(b, []byte("https://"+tFuncHost), []byte(endpointURL))
	b = bytes.ReplaceAll(b, []byte(tFuncHost), []byte(strings.Split(host, ":")[0]))
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) startLive(t *testing.T) *liveEnv {
	t.Helper()
	g, a := graph.New(), arm.New()
	t.Cleanup(g.Close)
	t.Cleanup(a.Close)

	status := f.EndpointStatus
	if status == 0 {
		status = http.StatusUnauthorized
	}
	ep := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the probe sent credentials to the messaging endpoint")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(ep.Close)
	endpointURL := ep.URL
	if f.EndpointDown {
		ep.Close()
	}

	pool := x509.NewCertPool()
	for _, c := range []*x509.Certificate{g.Certificate(), a.Certificate(), ep.Certificate()} {
		pool.AddCert(c)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cred := azuretoken.New(map[string]string{g.Scope(): g.Token(), a.Scope(): a.Token()})

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	app := f.App
	if !f.NoApp {
		must(g.PutApp(app))
		for _, fic := range f.FICs {
			must(g.PutFederatedCredential(app["id"].(string), fic))
		}
	}
	if !f.NoServicePrincipal {
		must(g.PutServicePrincipal(map[string]any{"id": tSPID, "appId": app["appId"]}))
	}
	must(g.PutServicePrincipal(map[string]any{"id": tGraphSPID, "appId": GraphAppID}))
	for _, gr := range f.Grants["value"].([]any) {
		must(g.PutGrant(gr))
	}

	bot := rehost(t, f.Bot, endpointURL).(map[string]any)
	botID := bot["id"].(string)
	if !f.NoBot {
		must(a.Put(botID, bot))
	}
	for _, ch := range obj(bot, "properties")["enabledChannels"].([]any) {
		if ch == "msteams" {
			must(a.Put(botID+"/channels/MsTeamsChannel", map[string]any{
				"name": tBot + "/MsTeamsChannel", "properties": map[string]any{"channelName": "MsTeamsChannel", "properties": map[string]any{"isEnabled": true}},
			}))
		}
	}
	connName := f.Connection["name"].(string)
	connName = connName[strings.LastIndex(connName, "/")+1:]
	must(a.Put(botID+"/connections/"+connName, f.Connection))

	siteID := "/subscriptions/" + tSub + "/resourceGroups/" + tRG + "/providers/Microsoft.Web/sites/" + tFuncApp
	epHost := strings.Split(strings.TrimPrefix(endpointURL, "https://"), ":")[0]
	siteDoc := map[string]any{
		"name": tFuncApp, "kind": "functionapp,linux",
		"properties": map[string]any{"defaultHostName": epHost, "hostNames": []string{epHost}},
		"identity": map[string]any{"type": "UserAssigned", "userAssignedIdentities": map[string]any{
			f.Identity["id"].(string): map[string]any{"principalId": f.Identity["principalId"], "clientId": f.Identity["clientId"]},
		}},
	}
	if f.NoIdentity {
		delete(siteDoc, "identity")
	}
	must(a.Put(siteID, siteDoc))
	settings := map[string]string{}
	for k, v := range f.settingsMap() {
		settings[k] = rehost(t, v, endpointURL).(string)
	}
	a.PutAppSettings(siteID, settings)
	for _, r := range f.Roles {
		m := r.(map[string]any)
		a.AddRoleAssignment(m["scope"].(string), m["roleDefinitionId"].(string), m["principalId"].(string))
	}

	if m := f.Model; m != nil {
		id := "/subscriptions/" + tSub + "/resourceGroups/" + tRG + "/providers/Microsoft.CognitiveServices/accounts/" + tModelAccount
		must(a.Put(id, map[string]any{"name": tModelAccount, "kind": "OpenAI", "properties": map[string]any{
			"endpoint": tModelEndpoint, "customSubDomainName": tModelAccount, "disableLocalAuth": !m.KeysOn, "provisioningState": "Succeeded",
		}}))
		if !m.NoDeployment {
			must(a.Put(id+"/deployments/gpt-4o-mini", map[string]any{"name": "gpt-4o-mini", "properties": map[string]any{
				"model": map[string]any{"format": "OpenAI", "name": "gpt-4o-mini", "version": "2024-07-18"}}}))
		}
		if m.Role != "" {
			a.AddRoleAssignment(id, "/subscriptions/"+tSub+"/providers/Microsoft.Authorization/roleDefinitions/"+m.Role, f.Identity["principalId"].(string))
		}
	}

	dir := t.TempDir()
	manifest := writeJSONFile(t, dir, "manifest.json", rehost(t, f.Manifest, endpointURL))
	return &liveEnv{graph: g, arm: a, cred: cred, opts: Options{
		Offline: OfflineFiles{Manifest: manifest},
		Live: &LiveConfig{
			Subscription: tSub, ResourceGroup: tRG, BotName: tBot,
			GraphURL: g.URL, ARMURL: a.URL, Credential: cred, HTTPClient: hc, ProbeTimeout: 3 * time.Second,
		},
	}}
}

// runReport runs the doctor with JSON output and decodes the report.
func runReport(t *testing.T, o Options) (Report, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	o.JSON, o.Stdout, o.Stderr = true, &out, &errb
	code := Run(context.Background(), o)
	var r Report
	if code != ExitUsage {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("JSON report: %v\n%s\nstderr: %s", err, out.String(), errb.String())
		}
		// JSON results carry no id; restore them by position for the assertions.
		if len(r.Checks) == len(allChecks) {
			for i := range r.Checks {
				r.Checks[i].ID = allChecks[i].id
			}
		}
	}
	return r, code, errb.String()
}

// noTokens is a credential whose tokens no stand-in accepts.
type noTokens struct{}

func (noTokens) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "expired", ExpiresOn: time.Now().Add(time.Hour)}, nil
}
