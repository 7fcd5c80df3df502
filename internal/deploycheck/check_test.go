package deploycheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository holding this package.
const repoRoot = "../.."

func TestRepositoryHoldsEveryInvariant(t *testing.T) {
	vs, err := Check(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if vs != nil {
		t.Fatal(vs)
	}
}

// copyTree copies the named top-level folders of the repository into a temp dir.
func copyTree(t *testing.T, dirs ...string) string {
	t.Helper()
	dst := t.TempDir()
	for _, d := range dirs {
		src := filepath.Join(repoRoot, d)
		err := filepath.WalkDir(src, func(path string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, path)
			if e.IsDir() {
				if e.Name() == "build" || e.Name() == "node_modules" {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// edit replaces the single occurrence of old in root/file; the test fails when old is not
// there exactly once, so an edit can never silently stop breaking anything.
func edit(t *testing.T, root, file, old, new string) {
	t.Helper()
	p := filepath.Join(root, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", file, old, n)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Breaking any single invariant in a copy of infra/ and appPackage/ makes Check fail with a
// message naming that invariant.
func TestBreakingOneInvariantIsReported(t *testing.T) {
	const (
		app      = "infra/modules/entra-app.bicep"
		register = "infra/modules/entra-app-register.bicep"
		bot      = "infra/modules/bot.bicep"
		mainB    = "infra/main.bicep"
		fn       = "infra/modules/function-app.bicep"
		st       = "infra/modules/storage.bicep"
		kv       = "infra/modules/keyvault.bicep"
		mon      = "infra/modules/monitoring.bicep"
		scope    = "infra/modules/entra-app-scope.bicep"
		params   = "infra/main.parameters.json"
		manifest = "appPackage/manifest.template.json"
		oai      = "infra/modules/openai.bicep"
		oaiOld   = "infra/modules/openai-existing.bicep"
	)
	cases := []struct {
		name      string
		file      string
		old, new  string
		invariant Invariant
	}{
		{"identifier URI without botid-", app, "identifierUris: [\n    identifierUri\n  ]", "identifierUris: [\n    'api://${appId}'\n  ]", IdentifierURI},
		{"identifier URI of another app", mainB, "appId: entraRegistration.outputs.appId", "appId: identity.outputs.clientId", IdentifierURI},
		{"scope renamed", app, "value: 'access_as_user'", "value: 'user_impersonation'", AccessAsUserScope},
		{"scope id not constant", app, "id: accessAsUserScopeId\n        value", "id: newGuid()\n        value", AccessAsUserScope},
		{"Teams web client missing", app, "appId: teamsWebClientId", "appId: teamsDesktopClientId", TeamsClientsPreauth},
		{"Teams desktop client id wrong", app, "var teamsDesktopClientId = '1fec8e78-bce4-4aaf-ab1b-5451cc387264'", "var teamsDesktopClientId = '1fec8e78-bce4-4aaf-ab1b-5451cc387265'", TeamsClientsPreauth},
		{"redirect URI changed", app, "'https://token.botframework.com/.auth/web/redirect'", "'https://token.botframework.com/.auth/web/redirec'", RedirectURI},
		{"v1 access tokens", app, "requestedAccessTokenVersion: 2", "requestedAccessTokenVersion: 1", AccessTokenVersion2},
		{"multi-tenant app", app, "signInAudience: 'AzureADMyOrg'", "signInAudience: 'AzureADMultipleOrgs'", SingleTenant},
		{"multi-tenant bot", bot, "msaAppType: 'SingleTenant'", "msaAppType: 'MultiTenant'", SingleTenant},
		{"password credential added", register, "signInAudience: 'AzureADMyOrg'\n", "signInAudience: 'AzureADMyOrg'\n  passwordCredentials: [\n    {\n      displayName: 'x'\n    }\n  ]\n", NoPasswordCredentials},
		{"Mail.Read dropped", app, "  '570282fd-fa5c-430d-a7fd-fc8dc98a9dca' // Mail.Read\n", "", GraphPermissions},
		{"service principal of another app", app, "appId: app.appId\n}", "appId: '00000003-0000-0000-c000-000000000000'\n}", ServicePrincipal},
		{"FIC #1 trusts someone else", app, "subject: managedIdentityPrincipalId", "subject: '11111111-1111-1111-1111-111111111111'", FICManagedIdentity},
		{"FIC #1 trusts the setup identity", mainB, "managedIdentityPrincipalId: identity.outputs.principalId", "managedIdentityPrincipalId: tokenKey.outputs.secretName", FICManagedIdentity},
		{"FIC #1 wrong audience", app, "    audiences: [\n      tokenExchangeAudience\n    ]\n  }\n\n  // FIC #2", "    audiences: [\n      'api://other'\n    ]\n  }\n\n  // FIC #2", FICManagedIdentity},
		{"FIC #2 trusts another app", app, "${tenantBase64Url}/a/9ExAW52n_ky4ZiS_jhpJIQ/", "${tenantBase64Url}/a/AAAAAAAAAAAAAAAAAAAAAA/", FICBotTokenStore},
		{"FIC #2 with a fixed tenant", app, "/t/${tenantBase64Url}/a/", "/t/AAAAAAAAAAAAAAAAAAAAAA/a/", FICBotTokenStore},
		{"FIC #2 for another connection", bot, "value: oauthConnectionUniqueId", "value: guid('another-connection')", FICBotTokenStore},
		{"bot is another app", bot, "msaAppId: appId", "msaAppId: oauthConnectionUniqueId", BotIdentity},
		{"messaging endpoint path", mainB, "/api/messages'", "/api/message'", BotEndpoint},
		{"Teams channel disabled", bot, "isEnabled: true\n        deploymentEnvironment", "isEnabled: false\n        deploymentEnvironment", TeamsChannel},
		{"older AAD v2 provider", bot, "serviceProviderId: 'c00b44ab-5e16-c44c-af26-2fd5bc55eb18'", "serviceProviderId: '30dd229c-58e3-4a48-bdfd-91ec48eb906c'", OAuthProvider},
		{"connection with a secret", bot, "clientId: appId\n", "clientId: appId\n      clientSecret: 'x'\n", OAuthProvider},
		{"token exchange URL differs", bot, "value: identifierUri", "value: 'api://${appId}'", TokenExchangeURL},
		{"connection asks for Graph", mainB, "ssoScope: entraApp.outputs.ssoScope", "ssoScope: 'User.Read'", OAuthScope},
		{"connection asks for access_as_user alone", app, "output ssoScope string = '${identifierUri}/.default'", "output ssoScope string = '${identifierUri}/access_as_user'", OAuthScope},
		{"own scope not listed", app, "      resourceAppId: appId\n", "      resourceAppId: graphAppId\n", SelfPermission},
		{"old manifest schema", manifest, `"manifestVersion": "1.22"`, `"manifestVersion": "1.16"`, ManifestSchema},
		{"manifest resource without botid-", manifest, `"resource": "api://botid-${{BOT_APP_ID}}"`, `"resource": "api://${{BOT_APP_ID}}"`, ManifestWebAppInfo},
		{"manifest SSO id is the Teams app id", manifest, "\"webApplicationInfo\": {\n    \"id\": \"${{BOT_APP_ID}}\"", "\"webApplicationInfo\": {\n    \"id\": \"${{TEAMS_APP_ID}}\"", ManifestWebAppInfo},
		{"manifest bot id", manifest, "\"bots\": [\n    {\n      \"botId\": \"${{BOT_APP_ID}}\"", "\"bots\": [\n    {\n      \"botId\": \"${{TEAMS_APP_ID}}\"", ManifestBotID},
		{"botframework domain missing", manifest, `"*.botframework.com"`, `"*.example.com"`, ManifestValidDomains},
		{"function host missing", manifest, `"${{FUNCTION_APP_HOSTNAME}}"`, `"example.com"`, ManifestValidDomains},
		{"command missing", manifest, `"title": "jira"`, `"title": "tickets"`, ManifestCommands},
		{"shared keys on", st, "allowSharedKeyAccess: false", "allowSharedKeyAccess: true", StorageSharedKey},
		{"old TLS", st, "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'", StorageTLS},
		{"queue role dropped", st, "  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor\n", "", StorageDataRoles},
		{"vault with access policies", kv, "enableRbacAuthorization: true", "enableRbacAuthorization: false", KeyVaultRBAC},
		{"secrets user role dropped", kv, "principalId: readerPrincipalId\n", "principalId: tenant().tenantId\n", KeyVaultRBAC},
		{"instrumentation-key ingestion on", mon, "DisableLocalAuth: true", "DisableLocalAuth: false", MonitoringEntraOnly},
		{"publisher role for someone else", mon, "principalId: publisherPrincipalId\n", "principalId: tenant().tenantId\n", MonitoringEntraOnly},
		{"node runtime", fn, "runtime: {\n        name: 'custom'", "runtime: {\n        name: 'node'", FlexCustomRuntime},
		{"consumption plan", fn, "name: 'FC1'", "name: 'Y1'", FlexCustomRuntime},
		{"worker runtime set", mainB, "LOG_LEVEL: logLevel\n", "LOG_LEVEL: logLevel\n      FUNCTIONS_WORKER_RUNTIME: 'custom'\n", NoFunctionsWorkerSetting},
		{"system-assigned identity", fn, "identity: {\n    type: 'UserAssigned'", "identity: {\n    type: 'SystemAssigned'", FunctionAppIdentity},
		{"deployment read with keys", fn, "type: 'UserAssignedIdentity'", "type: 'StorageAccountConnectionString'", FunctionAppIdentity},
		{"setting missing", mainB, "      TOKENSTORE_KEY_NAME: tokenStoreKeyName\n", "", AppSettings},
		{"dev-only setting deployed", mainB, "LOG_LEVEL: logLevel\n", "LOG_LEVEL: logLevel\n      TOKENSTORE_DEV_KEY: 'AAAA'\n", AppSettings},
		{"wrong identity client id", mainB, "BOT_MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId", "BOT_MANAGED_IDENTITY_CLIENT_ID: tokenKey.outputs.secretName", AppSettings},
		{"connection name mismatch", mainB, "BOT_OAUTH_CONNECTION: oauthConnectionName", "BOT_OAUTH_CONNECTION: 'oauth'", AppSettings},
		// The audit's findings: each edit puts one back.
		{"secret-named parameter", kv, "param readerPrincipalId string", "param secretsUserPrincipalId string", SecretParamNames},
		{"password-named output", mainB, "output AZURE_LOCATION string = location", "output AZURE_LOCATION string = location\noutput adminPassword string = ''", SecretOutputNames},
		{"pre-authorizations without the scope step first", mainB, "dependsOn: [\n    entraScope\n  ]", "dependsOn: [\n    entraRegistration\n  ]", EntraScopeFirst},
		{"scope step drops the scope", scope, "    oauth2PermissionScopes: [", "    oauth2PermissionScopesX: [", EntraScopeFirst},
		{"scope step on every provision", mainB, "= if (!entraScopeProvisioned) {", "= {", EntraAPIWhole},
		{"first-provision flag never fed back", params, "    \"entraScopeProvisioned\": { \"value\": \"${BOT_ENTRA_SCOPE_PROVISIONED=false}\" },\n", "", EntraAPIWhole},
		{"first-provision flag never set", mainB, "output BOT_ENTRA_SCOPE_PROVISIONED bool = true", "output BOT_ENTRA_SCOPE_PROVISIONED bool = false", EntraAPIWhole},
		{"scope step sends another scope text", scope, "userConsentDisplayName: 'Act as you in ${displayName}'", "userConsentDisplayName: 'Act as you'", EntraAPIWhole},
		{"scope step resets the token version", scope, "requestedAccessTokenVersion: 2", "requestedAccessTokenVersion: 1", EntraAPIWhole},
		{"register step sends a partial api", register, "signInAudience: 'AzureADMyOrg'\n", "signInAudience: 'AzureADMyOrg'\n  api: {\n    requestedAccessTokenVersion: 2\n  }\n", EntraAPIWhole},
		{"ftpsState on the Flex site", fn, "      minTlsVersion: '1.2'\n", "      minTlsVersion: '1.2'\n      ftpsState: 'Disabled'\n", FlexDeprecatedProperties},
		{"deprecated Flex app setting", mainB, "LOG_LEVEL: logLevel\n", "LOG_LEVEL: logLevel\n      FUNCTIONS_EXTENSION_VERSION: '~4'\n", FlexDeprecatedProperties},
		{"publishing policy on the Flex site", fn, "      runtime: {\n        name: 'custom'\n        version: '1.0'\n      }\n    }\n  }\n", "      runtime: {\n        name: 'custom'\n        version: '1.0'\n      }\n    }\n  }\n\n  resource scmBasicAuth 'basicPublishingCredentialsPolicies' = {\n    name: 'scm'\n    properties: {\n      allow: false\n    }\n  }\n", FlexPublishingPolicies},
		// The assistant's model: keyless, and the data-plane role only.
		{"model keys on", oai, "disableLocalAuth: true", "disableLocalAuth: false", ModelKeyless},
		{"model without a subdomain", oai, "    customSubDomainName: name\n", "", ModelKeyless},
		{"model contributor role", oai, "var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'", "var openAiUserRoleId = '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68'", ModelDataRole},
		{"model extra contributor role", oai, "output endpoint string", "resource modelAdmin 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n  name: guid(account.id, userPrincipalId, 'admin')\n  scope: account\n  properties: {\n    principalId: userPrincipalId\n    principalType: 'ServicePrincipal'\n    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'a001fd3d-188f-4b5d-821b-7da978bf7442')\n  }\n}\n\noutput endpoint string", ModelDataRole},
		{"existing model: role for someone else", oaiOld, "    principalId: userPrincipalId\n", "    principalId: '11111111-1111-1111-1111-111111111111'\n", ModelDataRole},
		{"existing model: role dropped", oaiOld, "scope: account\n", "scope: resourceGroup()\n", ModelDataRole},
		{"model endpoint without its deployment", mainB, "  AZURE_OPENAI_DEPLOYMENT: openAiDeployment\n", "", AppSettings},
		{"model key deployed", mainB, "  AZURE_OPENAI_DEPLOYMENT: openAiDeployment\n", "  AZURE_OPENAI_DEPLOYMENT: openAiDeployment\n  AZURE_OPENAI_API_KEY: 'x'\n", AppSettings},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, "infra", "appPackage")
			edit(t, root, c.file, c.old, c.new)
			vs, err := Check(root)
			if err != nil {
				t.Fatal(err)
			}
			if !vs.Has(c.invariant) {
				t.Fatalf("breaking %s was not reported; got: %v", c.invariant, vs)
			}
			var asErr error = vs
			if !strings.Contains(asErr.Error(), "["+string(c.invariant)+"]") {
				t.Fatalf("message does not name %s: %v", c.invariant, asErr)
			}
		})
	}
}

func TestCheckRejectsUnreadableInput(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, root string)
	}{
		{"no main.bicep", func(t *testing.T, root string) { os.Remove(filepath.Join(root, "infra", "main.bicep")) }},
		{"unterminated string", func(t *testing.T, root string) {
			edit(t, root, "infra/modules/bot.bicep", "msaAppType: 'SingleTenant'", "msaAppType: 'SingleTenant")
		}},
		{"parameters file not JSON", func(t *testing.T, root string) {
			edit(t, root, "infra/main.parameters.json", `"contentVersion": "1.0.0.0",`, `"contentVersion": "1.0.0.0"`)
		}},
		{"manifest not JSON", func(t *testing.T, root string) {
			edit(t, root, "appPackage/manifest.template.json", `"manifestVersion": "1.22",`, `"manifestVersion": "1.22"`)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, "infra", "appPackage")
			c.setup(t, root)
			_, err := Check(root)
			if !errors.Is(err, ErrInput) {
				t.Fatalf("err = %v, want ErrInput", err)
			}
		})
	}
}
