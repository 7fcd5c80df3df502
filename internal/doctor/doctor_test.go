package doctor

import (
	"slices"
	"strings"
	"testing"
)

type mode int

const (
	offline mode = 1 << iota
	liveMode
	both = offline | liveMode
)

func (m mode) String() string {
	if m == offline {
		return "offline"
	}
	return "live"
}

// failCase is one misconfiguration: the check that must catch it, and what the report must
// say about the problem and its fix.
type failCase struct {
	name   string
	modes  mode
	mutate func(f *fixture)
	check  string
	status Status
	detail []string
	fix    []string
}

var otherGUID = "0a0b0c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"

const githubConnector = `[{"name":"github","authURL":"https://github.com/login/oauth/authorize","tokenURL":"https://github.com/login/oauth/access_token","apiBaseURL":"https://api.github.com","clientID":"Iv1.abc","clientSecretName":"github-client-secret"}]`

var failCases = []failCase{
	{"bot uses another app", offline, func(f *fixture) { obj(f.Bot, "properties")["msaAppId"] = otherGUID },
		"bot.registered", StatusFail, []string{"uses app " + otherGUID, tAppID}, []string{"az bot create", "--appid " + tAppID}},
	{"bot missing", liveMode, func(f *fixture) { f.NoBot = true },
		"bot.registered", StatusFail, []string{"no Azure Bot", tBot}, []string{"az bot create", "--resource-group"}},
	{"multi-tenant bot", both, func(f *fixture) { obj(f.Bot, "properties")["msaAppType"] = "MultiTenant" },
		"bot.app-type", StatusFail, []string{"MultiTenant", "not SingleTenant"}, []string{"--app-type SingleTenant"}},
	{"no Teams channel", both, func(f *fixture) {
		p := obj(f.Bot, "properties")
		p["enabledChannels"], p["configuredChannels"] = []any{"webchat"}, []any{"webchat"}
	}, "bot.teams-channel", StatusFail, []string{"Teams channel"}, []string{"az bot msteams create --resource-group rg-onbehalf --name bot-onbehalf"}},
	{"endpoint on wrong route", both, func(f *fixture) {
		obj(f.Bot, "properties")["endpoint"] = "https://" + tFuncHost + "/api/wrong"
	}, "bot.endpoint", StatusFail, []string{"/api/wrong", "/api/messages"}, []string{"az bot update", "--endpoint https://", "/api/messages"}},
	{"endpoint elsewhere", offline, func(f *fixture) {
		obj(f.Bot, "properties")["endpoint"] = "https://old-app.azurewebsites.net/api/messages"
	}, "bot.endpoint-host", StatusFail, []string{"old-app.azurewebsites.net", tFuncHost}, []string{"--endpoint https://" + tFuncHost + "/api/messages"}},
	{"anonymous endpoint", liveMode, func(f *fixture) { f.EndpointStatus = 200 },
		"endpoint.auth", StatusFail, []string{"anonymous mode in production", "HTTP 200"}, []string{"--setting-names BOT_ALLOW_ANONYMOUS"}},
	{"endpoint judges unauthenticated bodies", liveMode, func(f *fixture) { f.EndpointStatus = 400 },
		"endpoint.auth", StatusFail, []string{"HTTP 400", "instead of refusing it with 401"}, []string{"BOT_ALLOW_ANONYMOUS"}},
	{"endpoint not deployed", liveMode, func(f *fixture) { f.EndpointStatus = 404 },
		"endpoint.auth", StatusFail, []string{"HTTP 404", "expected 401"}, []string{"azd deploy"}},
	{"endpoint down", liveMode, func(f *fixture) { f.EndpointDown = true },
		"endpoint.auth", StatusFail, []string{"unreachable"}, []string{"az functionapp show"}},
	{"app registration missing", liveMode, func(f *fixture) { f.NoApp = true },
		"app.found", StatusFail, []string{"no app registration with app id " + tAppID}, []string{"azd provision"}},
	{"client secret present", both, func(f *fixture) {
		f.App["passwordCredentials"] = []any{map[string]any{"keyId": "c0ffee00-0000-4000-8000-000000000001", "displayName": "old", "endDateTime": "2027-01-01T00:00:00Z"}}
	}, "app.credentials", StatusWarn, []string{"1 client secret", "old"}, []string{"az ad app credential delete --id " + tAppID + " --key-id c0ffee00-0000-4000-8000-000000000001"}},
	{"no secret and no managed-identity credential", both, func(f *fixture) { f.FICs = f.FICs[1:] },
		"app.credentials", StatusFail, []string{"no way to authenticate"}, []string{"az ad app federated-credential create", tMIPrincip}},
	{"multi-tenant app", both, func(f *fixture) { f.App["signInAudience"] = "AzureADMultipleOrgs" },
		"app.audience", StatusFail, []string{"AzureADMultipleOrgs"}, []string{"--sign-in-audience AzureADMyOrg"}},
	{"identifier URI without botid-", both, func(f *fixture) { f.App["identifierUris"] = []any{"api://" + tAppID} },
		"app.identifier-uri", StatusFail, []string{"api://botid-" + tAppID + " missing"}, []string{"PATCH ", "/v1.0/applications(appId='" + tAppID + "')", `"identifierUris":["api://` + tAppID + `","api://botid-` + tAppID + `"]`}},
	{"scope disabled", both, func(f *fixture) { obj(f.App, "api", "oauth2PermissionScopes", 0)["isEnabled"] = false },
		"app.scope", StatusFail, []string{"access_as_user", "disabled"}, []string{"PATCH ", `"oauth2PermissionScopes"`, `"isEnabled":true`}},
	{"scope missing", both, func(f *fixture) {
		obj(f.App, "api")["oauth2PermissionScopes"] = []any{}
		obj(f.App, "api")["preAuthorizedApplications"] = []any{}
	}, "app.scope", StatusFail, []string{"no access_as_user scope"}, []string{`"value":"access_as_user"`}},
	{"Teams web client not pre-authorized", both, func(f *fixture) {
		api := obj(f.App, "api")
		api["preAuthorizedApplications"] = api["preAuthorizedApplications"].([]any)[:1]
	}, "app.preauthorized", StatusFail, []string{TeamsWebClientID}, []string{`"preAuthorizedApplications"`, TeamsWebClientID}},
	{"bot kept in Europe, handler on the global token service", both, func(f *fixture) { f.Bot["location"] = "westeurope" },
		"bot.token-region", StatusFail, []string{`"westeurope"`, "global token service"}, []string{"BOTFRAMEWORK_TOKEN_SERVICE_URL=https://europe.token.botframework.com"}},
	{"European token service, app registration redirects to the global one", both, func(f *fixture) {
		f.Bot["location"] = "westeurope"
		f.setSetting("BOTFRAMEWORK_TOKEN_SERVICE_URL", "https://europe.token.botframework.com")
	}, "bot.token-region", StatusFail, []string{"lack https://europe.token.botframework.com/.auth/web/redirect", BotFrameworkRedirectURI},
		[]string{`"redirectUris":["` + BotFrameworkRedirectURI + `","https://europe.token.botframework.com/.auth/web/redirect"]`}},
	{"European token service: the redirect URI check asks for its redirect URI", both, func(f *fixture) {
		f.Bot["location"] = "westeurope"
		f.setSetting("BOTFRAMEWORK_TOKEN_SERVICE_URL", "https://europe.token.botframework.com")
	}, "app.redirect-uri", StatusFail, []string{"https://europe.token.botframework.com/.auth/web/redirect"}, nil},
	{"undocumented token service host", both, func(f *fixture) {
		f.setSetting("BOTFRAMEWORK_TOKEN_SERVICE_URL", "https://eu.token.botframework.com")
	}, "bot.token-region", StatusFail, []string{"eu.token.botframework.com", "not a documented token service"}, []string{"BOTFRAMEWORK_TOKEN_SERVICE_URL="}},
	{"message extension answered by another bot", both, func(f *fixture) {
		f.Manifest["composeExtensions"].([]any)[0].(map[string]any)["botId"] = otherGUID
	}, "manifest.extension-bot-ids", StatusFail, []string{"message extension 0", otherGUID}, []string{"composeExtensions[0].botId"}},
	{"Copilot agent names another bot", both, func(f *fixture) {
		f.Manifest["copilotAgents"].(map[string]any)["customEngineAgents"].([]any)[0].(map[string]any)["id"] = otherGUID
	}, "manifest.extension-bot-ids", StatusFail, []string{"Copilot agent", otherGUID}, []string{"copilotAgents.customEngineAgents[0].id"}},
	{"redirect URI missing", both, func(f *fixture) { obj(f.App, "web")["redirectUris"] = []any{} },
		"app.redirect-uri", StatusFail, []string{BotFrameworkRedirectURI}, []string{`"redirectUris":["` + BotFrameworkRedirectURI + `"]`}},
	{"v1 access tokens", both, func(f *fixture) { obj(f.App, "api")["requestedAccessTokenVersion"] = nil },
		"app.token-version", StatusFail, []string{"null", "not 2"}, []string{`"requestedAccessTokenVersion":2`}},
	{"no service principal", liveMode, func(f *fixture) { f.NoServicePrincipal = true },
		"app.service-principal", StatusFail, []string{"no service principal"}, []string{"az ad sp create --id " + tAppID}},
	{"credential trusts another identity", both, func(f *fixture) { obj(f.FICs[0])["subject"] = otherGUID },
		"fic.managed-identity", StatusFail, []string{tMIPrincip, otherGUID}, []string{"az ad app federated-credential create --id " + tAppID, `"subject":"` + tMIPrincip + `"`, "api://AzureADTokenExchange"}},
	{"credential with wrong audience", both, func(f *fixture) { obj(f.FICs[0])["audiences"] = []any{"api://other"} },
		"fic.managed-identity", StatusFail, []string{"api://other"}, []string{`"audiences":["api://AzureADTokenExchange"]`}},
	{"token store subject with tenant in written order", both, func(f *fixture) {
		obj(f.FICs[1])["subject"] = "/eid1/c/pub/t/" + encodeGUIDWrittenOrder(tTenant) + "/a/9ExAW52n_ky4ZiS_jhpJIQ/e1b2c3d4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	}, "fic.token-store", StatusFail, []string{"written order", "mixed-endian"}, []string{"/eid1/c/pub/t/USo8j31rL06aHD1ef5scLQ/a/9ExAW52n_ky4ZiS_jhpJIQ/e1b2c3d4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"}},
	{"token store subject for another connection id", both, func(f *fixture) { f.setConnParam("UniqueIdentifier", "renamed") },
		"fic.token-store", StatusFail, []string{"UniqueIdentifier 'renamed'"}, []string{"/a/9ExAW52n_ky4ZiS_jhpJIQ/renamed"}},
	{"handler uses another connection", both, func(f *fixture) { f.setSetting("BOT_OAUTH_CONNECTION", "graph") },
		"connection.found", StatusFail, []string{`"graph"`}, []string{"az rest --method put", "/connections/graph?api-version=2022-09-15"}},
	{"connection of the secret kind", both, func(f *fixture) {
		p := obj(f.Connection, "properties")
		p["serviceProviderId"], p["serviceProviderDisplayName"] = "30dd229c-58e3-4a48-bdfd-91ec48eb906c", "Azure Active Directory v2"
	}, "connection.provider", StatusFail, []string{"Azure Active Directory v2", FICProviderName}, []string{`"serviceProviderId":"` + FICProviderID + `"`}},
	{"connection client id wrong", both, func(f *fixture) { f.setConnParam("ClientId", otherGUID) },
		"connection.client", StatusFail, []string{"ClientId", otherGUID}, []string{`{"key":"ClientId","value":"` + tAppID + `"}`}},
	{"token exchange URL without botid-", both, func(f *fixture) { f.setConnParam("TokenExchangeUrl", "api://"+tAppID) },
		"connection.token-exchange-url", StatusFail, []string{"api://" + tAppID, "not the identifier URI"}, []string{`{"key":"TokenExchangeUrl","value":"api://botid-` + tAppID + `"}`}},
	{"connection scope is Graph", both, func(f *fixture) { obj(f.Connection, "properties")["scopes"] = "User.Read" },
		"connection.scope", StatusFail, []string{"User.Read", "/.default"}, []string{`"scopes":"api://botid-` + tAppID + `/.default"`}},
	{"connection scope is access_as_user alone", both, func(f *fixture) {
		obj(f.Connection, "properties")["scopes"] = "api://botid-" + tAppID + "/access_as_user"
	}, "connection.scope", StatusWarn, []string{"access_as_user", "admin consent", "/.default"}, []string{`"scopes":"api://botid-` + tAppID + `/.default"`}},
	{"manifest bot id wrong", both, func(f *fixture) { obj(f.Manifest, "bots", 0)["botId"] = otherGUID },
		"manifest.bot-id", StatusFail, []string{otherGUID}, []string{`"bots[0].botId": "` + tAppID + `"`}},
	{"manifest webApplicationInfo.id wrong", both, func(f *fixture) { obj(f.Manifest, "webApplicationInfo")["id"] = otherGUID },
		"manifest.webapp-id", StatusFail, []string{otherGUID}, []string{`"webApplicationInfo"`, `"id":"` + tAppID + `"`}},
	{"manifest without webApplicationInfo", both, func(f *fixture) { delete(f.Manifest, "webApplicationInfo") },
		"manifest.webapp-id", StatusFail, []string{"no webApplicationInfo"}, []string{`"resource":"api://botid-` + tAppID + `"`}},
	{"manifest resource without botid-", both, func(f *fixture) { obj(f.Manifest, "webApplicationInfo")["resource"] = "api://" + tAppID },
		"manifest.webapp-resource", StatusFail, []string{"api://" + tAppID}, []string{`"resource":"api://botid-` + tAppID + `"`}},
	{"botframework domain missing", both, func(f *fixture) { f.Manifest["validDomains"] = []any{tFuncHost} },
		"manifest.botframework-domain", StatusFail, []string{"*.botframework.com"}, []string{`"validDomains": [`, `"*.botframework.com"`}},
	{"Function App host missing from validDomains", both, func(f *fixture) { f.Manifest["validDomains"] = []any{"*.botframework.com"} },
		"manifest.host-domain", StatusFail, []string{"not in validDomains"}, []string{`"validDomains": ["*.botframework.com",`}},
	{"Graph permissions not granted tenant-wide", both, func(f *fixture) { obj(f.Grants, "value", 0)["scope"] = "User.Read" },
		"graph.grants", StatusWarn, []string{"per-user consent", "Mail.Read, Files.Read.All", "no user has consented yet", "recommended"}, []string{"az ad app permission grant --id " + tAppID + " --api " + GraphAppID + " --scope 'Mail.Read Files.Read.All'"}},
	{"only user consent", both, func(f *fixture) {
		g := obj(f.Grants, "value", 0)
		g["consentType"], g["principalId"] = "Principal", "0a1b2c3d-0000-4000-8000-000000000001"
	}, "graph.grants", StatusWarn, []string{"per-user consent", "User.Read, Mail.Read, Files.Read.All", "1 user has consented so far"}, []string{"az ad app permission grant"}},
	{"table endpoint missing", both, func(f *fixture) { f.deleteSetting("TOKENSTORE_TABLE_ENDPOINT") },
		"settings.valid", StatusFail, []string{"TOKENSTORE_TABLE_ENDPOINT: required when running in Azure"}, []string{"az functionapp config appsettings set --resource-group rg-onbehalf --name func-onbehalf --settings TOKENSTORE_TABLE_ENDPOINT="}},
	{"client secret in Azure settings", both, func(f *fixture) { f.setSetting("BOT_CLIENT_SECRET", "s3cr3t") },
		"settings.valid", StatusFail, []string{"BOT_CLIENT_SECRET: refused when running in Azure"}, []string{"appsettings delete", "--setting-names BOT_CLIENT_SECRET"}},
	{"work queue on another storage account", both, func(f *fixture) {
		f.setSetting("AzureWebJobsStorage__queueServiceUri", "https://elsewhere.queue.core.windows.net")
	}, "settings.match", StatusFail, []string{"not the queue service of the host's storage account stonbehalf"}, []string{"AzureWebJobsStorage__queueServiceUri=https://stonbehalf.queue.core.windows.net"}},
	{"tenant setting wrong", both, func(f *fixture) { f.setSetting("BOT_TENANT_ID", otherGUID) },
		"settings.match", StatusFail, []string{"BOT_TENANT_ID is " + otherGUID}, []string{"--settings BOT_TENANT_ID=" + tTenant}},
	{"managed identity client id wrong", both, func(f *fixture) { f.setSetting("BOT_MANAGED_IDENTITY_CLIENT_ID", otherGUID) },
		"settings.match", StatusFail, []string{"BOT_MANAGED_IDENTITY_CLIENT_ID"}, []string{"BOT_MANAGED_IDENTITY_CLIENT_ID=" + tMIClient}},
	{"no Key Vault", both, func(f *fixture) { f.deleteSetting("TOKENSTORE_KEYVAULT_URL") },
		"keyvault.settings", StatusFail, []string{"TOKENSTORE_KEYVAULT_URL is not set"}, []string{"TOKENSTORE_KEYVAULT_URL=https://"}},
	{"Function App without its managed identity", liveMode, func(f *fixture) { f.NoIdentity = true },
		"keyvault.access", StatusFail, []string{"has no user-assigned managed identity"}, []string{"az functionapp identity assign --resource-group rg-onbehalf --name func-onbehalf"}},
	{"identity cannot read the vault", both, func(f *fixture) { f.Roles = f.Roles[1:] },
		"keyvault.access", StatusFail, []string{tMIPrincip, "kv-onbehalf"}, []string{"az role assignment create --assignee-object-id " + tMIPrincip, "--role " + KeyVaultSecretsUserRole, "/providers/Microsoft.KeyVault/vaults/kv-onbehalf"}},
	{"Reader role is not enough", both, func(f *fixture) {
		obj(f.Roles[0])["roleDefinitionId"] = "/subscriptions/" + tSub + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
	}, "keyvault.access", StatusFail, []string{"no Key Vault Secrets User"}, []string{"az role assignment create"}},
	{"connectors without public URL", both, func(f *fixture) {
		f.deleteSetting("BOT_PUBLIC_URL")
		f.setSetting("OAUTH2_CONNECTORS", githubConnector)
	}, "connectors.callback", StatusFail, []string{"BOT_PUBLIC_URL is not set"}, []string{"--settings BOT_PUBLIC_URL=https://"}},
	{"public URL on another host", offline, func(f *fixture) {
		f.setSetting("BOT_PUBLIC_URL", "https://old-app.azurewebsites.net")
		f.setSetting("OAUTH2_CONNECTORS", githubConnector)
	}, "connectors.callback", StatusFail, []string{"old-app.azurewebsites.net", "not the Function App's host"}, []string{"BOT_PUBLIC_URL=https://"}},
	{"Atlassian secret not named", both, func(f *fixture) { f.setSetting("ATLASSIAN_CLIENT_ID", "aBcD1234") },
		"connectors.secrets", StatusFail, []string{`"atlassian" has no client secret name`}, []string{"az keyvault secret set --vault-name kv-onbehalf --name atlassian-client-secret", "ATLASSIAN_CLIENT_SECRET_NAME"}},
	{"generic connector invalid", both, func(f *fixture) {
		f.setSetting("OAUTH2_CONNECTORS", `[{"name":"github","authURL":"http://github.com/login/oauth/authorize","tokenURL":"https://github.com/login/oauth/access_token","apiBaseURL":"https://api.github.com","clientID":"Iv1.abc"}]`)
	}, "connectors.secrets", StatusFail, []string{"OAUTH2_CONNECTORS: entry 0", "authURL", "clientSecretName is empty"}, []string{"--settings OAUTH2_CONNECTORS="}},
	{"connector secret inlined in settings", both, func(f *fixture) { f.setSetting("GITHUB_CLIENT_SECRET", "s3cr3t") },
		"connectors.secrets", StatusFail, []string{"GITHUB_CLIENT_SECRET holds a secret value"}, []string{"--setting-names GITHUB_CLIENT_SECRET"}},
	{"SAML applications setting malformed", both, func(f *fixture) { f.setSetting("SAML_APPS", `[{"name":"sap"}]`) },
		"connectors.saml", StatusFail, []string{"SAML_APPS: entry 0"}, []string{"SAML_APPS="}},
	{"connector policy malformed", both, func(f *fixture) { f.setSetting("CONNECTOR_POLICY", `{"atlassian":{"writes":true}}`) },
		"connectors.policy", StatusFail, []string{"CONNECTOR_POLICY", "unknown field"}, []string{"CONNECTOR_POLICY="}},
	{"connector policy allows writes without confirmation", both, func(f *fixture) {
		f.setSetting("CONNECTOR_POLICY", `{"atlassian":{"write":true,"sites":["acme-1"]},"contoso":{"write":true,"confirm":true}}`)
	}, "connectors.policy", StatusWarn, []string{"without confirmation for atlassian", "atlassian: may write WITHOUT confirmation; sites acme-1", "contoso: may write, each write confirmed"},
		[]string{`CONNECTOR_POLICY={"atlassian":{"write":true,"confirm":true}}`}},
	{"assistant model: no data-plane role", liveMode, func(f *fixture) { f.withModel(&modelFixture{}) },
		"connectors.model", StatusFail, []string{"no Cognitive Services OpenAI User role", "refuses its token (403)", `deployment "gpt-4o-mini"`},
		[]string{"az role assignment create --assignee-object-id " + tMIPrincip, "--role " + OpenAIUserRole, "/accounts/" + tModelAccount}},
	{"assistant model: deployment missing", liveMode, func(f *fixture) { f.withModel(&modelFixture{NoDeployment: true, Role: OpenAIUserRole}) },
		"connectors.model", StatusFail, []string{`has no deployment "gpt-4o-mini"`}, []string{"az cognitiveservices account deployment create"}},
	{"assistant model: keys on", liveMode, func(f *fixture) { f.withModel(&modelFixture{KeysOn: true, Role: OpenAIUserRole}) },
		"connectors.model", StatusWarn, []string{"keys are enabled"}, []string{"properties.disableLocalAuth=true"}},
	{"assistant model: more than the data-plane role", liveMode, func(f *fixture) {
		f.withModel(&modelFixture{Role: OpenAIUserRole})
		f.Roles = append(f.Roles, map[string]any{"scope": "/subscriptions/" + tSub + "/resourceGroups/" + tRG + "/providers/Microsoft.CognitiveServices/accounts/" + tModelAccount,
			"roleDefinitionId": "/subscriptions/" + tSub + "/providers/Microsoft.Authorization/roleDefinitions/25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68", "principalId": tMIPrincip})
	}, "connectors.model", StatusWarn, []string{"25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68", "more than the assistant needs"}, []string{"az role assignment list"}},
	{"assistant model: endpoint without deployment", both, func(f *fixture) { f.setSetting("AZURE_OPENAI_ENDPOINT", "https://oai-onbehalf.openai.azure.com") },
		"connectors.model", StatusFail, []string{"AZURE_OPENAI_DEPLOYMENT is missing"}, []string{"AZURE_OPENAI_DEPLOYMENT="}},
	{"connectors setting is not JSON", both, func(f *fixture) { f.setSetting("OAUTH2_CONNECTORS", "github") },
		"connectors.secrets", StatusFail, []string{"OAUTH2_CONNECTORS: not a JSON array"}, []string{"OAUTH2_CONNECTORS="}},
}

// A correct secret-free deployment, as infra/ describes it, has no failure and no warning,
// in both modes.
func TestCorrectDeploymentIsClean(t *testing.T) {
	for _, m := range []mode{offline, liveMode} {
		t.Run(m.String(), func(t *testing.T) {
			f := goodFixture(t)
			o := f.offlineOptions(t)
			if m == liveMode {
				o = f.startLive(t).opts
			}
			r, code, stderr := runReport(t, o)
			if code != ExitOK || r.Summary.Fail != 0 || r.Summary.Warn != 0 {
				t.Fatalf("exit %d, summary %+v, stderr %s", code, r.Summary, stderr)
			}
			for _, c := range r.Checks {
				if c.Status == StatusFail || c.Status == StatusWarn {
					t.Errorf("%s: %s %s", c.ID, c.Status, c.Detail)
				}
			}
		})
	}
}

func TestEachMisconfigurationIsNamedWithItsFix(t *testing.T) {
	for _, tc := range failCases {
		for _, m := range []mode{offline, liveMode} {
			if tc.modes&m == 0 {
				continue
			}
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				f := goodFixture(t)
				tc.mutate(f)
				o := f.offlineOptions(t)
				if m == liveMode {
					o = f.startLive(t).opts
				}
				r, code, stderr := runReport(t, o)
				got, ok := r.Find(tc.check)
				if !ok {
					t.Fatalf("no result for %s (exit %d, stderr %s)", tc.check, code, stderr)
				}
				if got.Status != tc.status {
					t.Fatalf("%s: status %s, want %s: %s", tc.check, got.Status, tc.status, got.Detail)
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
				wantExit := ExitOK
				if tc.status == StatusFail {
					wantExit = ExitFailed
				}
				if code != wantExit {
					t.Errorf("exit %d, want %d", code, wantExit)
				}
			})
		}
	}
}

// Every check passes on the correct deployment in some mode and fails on some input.
func TestEveryCheckHasPassingAndFailingInput(t *testing.T) {
	passed := map[string]bool{}
	for _, m := range []mode{offline, liveMode} {
		f := goodFixture(t)
		o := f.offlineOptions(t)
		if m == liveMode {
			o = f.startLive(t).opts
		}
		r, _, _ := runReport(t, o)
		for _, c := range r.Checks {
			if c.Status == StatusPass {
				passed[c.ID] = true
			}
		}
	}
	failing := map[string]bool{}
	for _, tc := range failCases {
		failing[tc.check] = true
	}
	for _, id := range CheckIDs() {
		// The connectors checks report info until a connector is configured; they pass in
		// TestConnectorsConfigured.
		if !passed[id] && !strings.HasPrefix(id, "connectors.") {
			t.Errorf("%s never passes on the correct deployment", id)
		}
		if !failing[id] {
			t.Errorf("%s has no failing case", id)
		}
	}
}

func TestConnectorsConfigured(t *testing.T) {
	f := goodFixture(t)
	f.setSetting("OAUTH2_CONNECTORS", githubConnector)
	f.setSetting("ATLASSIAN_CLIENT_ID", "aBcD1234")
	f.setSetting("ATLASSIAN_CLIENT_SECRET_NAME", "atlassian-client-secret")
	r, code, _ := runReport(t, f.offlineOptions(t))
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	cb, _ := r.Find("connectors.callback")
	sec, _ := r.Find("connectors.secrets")
	if cb.Status != StatusPass || !strings.Contains(cb.Detail, "https://"+tFuncHost+"/api/oauth/callback") || !strings.Contains(cb.Detail, "github") {
		t.Errorf("callback: %+v", cb)
	}
	if sec.Status != StatusPass || !strings.Contains(sec.Detail, "atlassian → atlassian-client-secret, github → github-client-secret") {
		t.Errorf("secrets: %+v", sec)
	}
}

// The older provider spells its keys in lower case; they compare case-insensitively.
func TestConnectionParameterKeysCompareCaseInsensitively(t *testing.T) {
	f := goodFixture(t)
	for _, p := range obj(f.Connection, "properties")["parameters"].([]any) {
		m := p.(map[string]any)
		m["key"] = strings.ToLower(m["key"].(string))
	}
	r, _, _ := runReport(t, f.offlineOptions(t))
	for _, id := range []string{"connection.client", "connection.token-exchange-url", "fic.token-store"} {
		if c, _ := r.Find(id); c.Status != StatusPass {
			t.Errorf("%s: %s %s", id, c.Status, c.Detail)
		}
	}
}

func TestAbsentInputsSkipAndSaySo(t *testing.T) {
	f := goodFixture(t)
	o := f.offlineOptions(t)
	o.Offline = OfflineFiles{Manifest: o.Offline.Manifest}
	r, code, _ := runReport(t, o)
	if code != ExitOK {
		t.Fatalf("exit %d: %+v", code, r.Summary)
	}
	for _, id := range []string{"app.found", "bot.teams-channel", "connection.provider", "settings.valid", "graph.grants", "keyvault.access"} {
		c, _ := r.Find(id)
		if c.Status != StatusSkip || !strings.Contains(c.Detail, "no --") {
			t.Errorf("%s: %s %q, want skip naming the missing file", id, c.Status, c.Detail)
		}
	}
	if c, _ := r.Find("manifest.webapp-resource"); c.Status != StatusPass {
		t.Errorf("manifest checks still run: %+v", c)
	}
}

func TestOfflineLocalSettingsAreValidatedAsLocal(t *testing.T) {
	f := goodFixture(t)
	o := f.offlineOptions(t)
	// local.settings.json shape with a dev key: fine locally, where it would be refused in Azure.
	o.Offline.Settings = writeJSONFile(t, t.TempDir(), "local.settings.json", map[string]any{
		"IsEncrypted": false,
		"Values": map[string]any{
			"BOT_APP_ID": tAppID, "BOT_TENANT_ID": tTenant, "BOT_CLIENT_SECRET": "dev-only",
			"TOKENSTORE_CONNECTION_STRING": "UseDevelopmentStorage=true",
			"TOKENSTORE_DEV_KEY":           "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		},
	})
	r, _, _ := runReport(t, o)
	c, _ := r.Find("settings.valid")
	if c.Status != StatusPass || !strings.Contains(c.Detail, "local settings") {
		t.Errorf("settings.valid: %+v", c)
	}
	if c, _ := r.Find("keyvault.settings"); c.Status != StatusInfo {
		t.Errorf("keyvault.settings with a dev key: %+v", c)
	}
}

func TestAppRegistrationCanBeReadEmbeddingItsCredentials(t *testing.T) {
	f := goodFixture(t)
	f.App["federatedIdentityCredentials"] = f.FICs
	o := f.offlineOptions(t)
	o.Offline.FederatedCredentials = ""
	r, _, _ := runReport(t, o)
	if c, _ := r.Find("fic.token-store"); c.Status != StatusPass {
		t.Errorf("fic.token-store: %+v", c)
	}
}

func TestManagedIdentityCredentialWithoutIdentityFileIsUnconfirmed(t *testing.T) {
	f := goodFixture(t)
	o := f.offlineOptions(t)
	o.Offline.Identity = ""
	r, _, _ := runReport(t, o)
	c, _ := r.Find("fic.managed-identity")
	if c.Status != StatusPass || !strings.Contains(c.Detail, "not available to confirm") {
		t.Errorf("fic.managed-identity: %+v", c)
	}
	if c, _ := r.Find("keyvault.access"); c.Status != StatusSkip {
		t.Errorf("keyvault.access without the identity: %+v", c)
	}
}

func TestCheckIDsAreUnique(t *testing.T) {
	ids := CheckIDs()
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) {
		t.Fatalf("duplicate check ids: %v", ids)
	}
}

// The assistant's model, as a user of the doctor sees it: which endpoint and deployment the
// handler uses, and (live) that the managed identity holds the data-plane role, so the model
// accepts its token.
func TestAssistantModelShown(t *testing.T) {
	f := goodFixture(t)
	if r, _, _ := runReport(t, f.offlineOptions(t)); !strings.Contains(detailOf(t, r, "connectors.model"), "assistant is off") {
		t.Errorf("without settings: %s", detailOf(t, r, "connectors.model"))
	}
	f.withModel(&modelFixture{Role: OpenAIUserRole})
	r, code, stderr := runReport(t, f.startLive(t).opts)
	got, _ := r.Find("connectors.model")
	if code != ExitOK || got.Status != StatusPass || !strings.Contains(got.Detail, "endpoint https://oai-onbehalf.openai.azure.com") ||
		!strings.Contains(got.Detail, `deployment "gpt-4o-mini"`) || !strings.Contains(got.Detail, "holds Cognitive Services OpenAI User") {
		t.Fatalf("live: exit %d, %s %s (stderr %s)", code, got.Status, got.Detail, stderr)
	}
	r, _, _ = runReport(t, f.offlineOptions(t))
	if d := detailOf(t, r, "connectors.model"); !strings.Contains(d, `deployment "gpt-4o-mini"`) || !strings.Contains(d, "not checked") {
		t.Errorf("offline: %s", d)
	}
}

func detailOf(t *testing.T, r Report, id string) string {
	t.Helper()
	c, ok := r.Find(id)
	if !ok {
		t.Fatalf("no result for %s", id)
	}
	return string(c.Status) + ": " + c.Detail
}
