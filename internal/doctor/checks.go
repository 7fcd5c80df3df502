package doctor

import (
	"fmt"
	"strings"
)

// Categories group the report.
const (
	CatBot        = "Azure Bot"
	CatEndpoint   = "Messaging endpoint"
	CatApp        = "App registration"
	CatFIC        = "Federated credentials"
	CatConnection = "OAuth connection"
	CatManifest   = "Teams manifest"
	CatGraph      = "Graph permissions"
	CatSettings   = "Handler settings"
	CatKeyVault   = "Key Vault"
	CatConnectors = "Connectors"
)

// check is one small function over the normalized snapshot.
type check struct {
	id       string
	category string
	label    string
	run      func(s *Snapshot) Result
	// appFix marks app-registration checks that --fix repairs through Graph.
	appFix bool
}

// allChecks is every check, in report order.
var allChecks = []check{
	{"bot.registered", CatBot, "Bot registered for the app", checkBotRegistered, false},
	{"bot.app-type", CatBot, "Bot is single-tenant", checkBotAppType, false},
	{"bot.teams-channel", CatBot, "Teams channel enabled", checkTeamsChannel, false},
	{"bot.endpoint", CatBot, "Messaging endpoint set", checkEndpointSet, false},
	{"bot.endpoint-host", CatBot, "Messaging endpoint on the Function App", checkEndpointHost, false},
	{"bot.token-region", CatBot, "Token service, redirect URI and bot in one region", checkTokenRegion, false},

	{"endpoint.auth", CatEndpoint, "Refuses unauthenticated POST with 401", checkEndpointAuth, false},

	{"app.found", CatApp, "App registration found", checkAppFound, false},
	{"app.credentials", CatApp, "Credentials: no client secrets, federated credential in use", checkAppCredentials, false},
	{"app.audience", CatApp, "Sign-in audience single tenant", checkAudience, false},
	{"app.identifier-uri", CatApp, "Identifier URI api://botid-{appId}", checkIdentifierURI, true},
	{"app.scope", CatApp, "Scope access_as_user exposed", checkScope, true},
	{"app.preauthorized", CatApp, "Teams clients pre-authorized", checkPreAuthorized, true},
	{"app.redirect-uri", CatApp, "Bot Framework redirect URI", checkRedirectURI, true},
	{"app.token-version", CatApp, "Access token version 2", checkTokenVersion, true},
	{"app.service-principal", CatApp, "Service principal exists", checkServicePrincipal, false},

	{"fic.managed-identity", CatFIC, "Trusts the Function App's managed identity", checkFICManagedIdentity, false},
	{"fic.token-store", CatFIC, "Trusts the Bot Service token store for the OAuth connection", checkFICTokenStore, false},

	{"connection.found", CatConnection, "OAuth connection exists", checkConnectionFound, false},
	{"connection.provider", CatConnection, "Provider is AAD v2 with Federated Credentials", checkConnectionProvider, false},
	{"connection.client", CatConnection, "Client id and tenant are the bot's", checkConnectionClient, false},
	{"connection.token-exchange-url", CatConnection, "Token exchange URL = identifier URI = manifest resource", checkTokenExchangeURL, false},
	{"connection.scope", CatConnection, "Scope is the bot's own API", checkConnectionScope, false},

	{"manifest.bot-id", CatManifest, "Bot id = app id", checkManifestBotID, false},
	{"manifest.extension-bot-ids", CatManifest, "Message extensions and Copilot agent name the bot", checkManifestExtensionBotIDs, false},
	{"manifest.webapp-id", CatManifest, "webApplicationInfo.id = bot id", checkManifestWebAppID, false},
	{"manifest.webapp-resource", CatManifest, "webApplicationInfo.resource = api://botid-{botId}", checkManifestResource, false},
	{"manifest.botframework-domain", CatManifest, "*.botframework.com in validDomains", checkManifestBotFrameworkDomain, false},
	{"manifest.host-domain", CatManifest, "Endpoint and Function App hosts in validDomains", checkManifestHostDomain, false},

	{"graph.grants", CatGraph, "Consent path for OBO to Graph", checkGrants, false},

	{"settings.valid", CatSettings, "Settings complete and valid", checkSettingsValid, false},
	{"settings.match", CatSettings, "Settings match the deployment", checkSettingsMatch, false},

	{"keyvault.settings", CatKeyVault, "Token-encryption key named", checkKeyVaultSettings, false},
	{"keyvault.access", CatKeyVault, "Managed identity can read the key", checkKeyVaultAccess, false},

	{"connectors.callback", CatConnectors, "OAuth callback URL", checkConnectorsCallback, false},
	{"connectors.secrets", CatConnectors, "Client secrets named, not inlined", checkConnectorsSecrets, false},
	{"connectors.saml", CatConnectors, "SAML applications: enterprise app, identifier, reply URL, consent, assignment", checkSAMLApps, false},
	{"connectors.policy", CatConnectors, "Connector policy in force (writes, sites)", checkConnectorPolicy, false},
	{"connectors.model", CatConnectors, "Assistant model: endpoint, deployment, the identity's data-plane role", checkAssistantModel, false},
}

// CheckIDs lists every check's id in report order.
func CheckIDs() []string {
	ids := make([]string, len(allChecks))
	for i, c := range allChecks {
		ids[i] = c.id
	}
	return ids
}

// RunChecks runs every check over the snapshot.
func RunChecks(s *Snapshot) Report {
	if s.OBOScopes == nil {
		// The handler's own setting (config GRAPH_SCOPES) says which Graph scopes it asks for.
		if v := strings.Fields(s.Settings["GRAPH_SCOPES"]); len(v) > 0 {
			s.OBOScopes = v
		} else {
			s.OBOScopes = DefaultOBOScopes
		}
	}
	if s.GraphURL == "" {
		s.GraphURL = DefaultGraphURL
	}
	if s.ARMURL == "" {
		s.ARMURL = DefaultARMURL
	}
	results := make([]Result, 0, len(allChecks))
	for _, c := range allChecks {
		r := c.run(s)
		r.ID, r.Category, r.Label = c.id, c.category, c.label
		results = append(results, r)
	}
	return NewReport(results)
}

func pass(format string, a ...any) Result {
	return Result{Status: StatusPass, Detail: fmt.Sprintf(format, a...)}
}

func info(format string, a ...any) Result {
	return Result{Status: StatusInfo, Detail: fmt.Sprintf(format, a...)}
}

func fail(fix, format string, a ...any) Result {
	return Result{Status: StatusFail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func warn(fix, format string, a ...any) Result {
	return Result{Status: StatusWarn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func skip(format string, a ...any) Result {
	return Result{Status: StatusSkip, Detail: fmt.Sprintf(format, a...)}
}

// need returns a skip (source not read) or a failure (source looked for and missing) when
// a source a check depends on is unavailable; ok is true when the check can go on.
func (s *Snapshot) need(source string, present bool) (Result, bool) {
	if present {
		return Result{}, true
	}
	if why, ok := s.NotFound[source]; ok {
		return fail(s.notFoundFix(source), "%s", why), false
	}
	return skip("%s", s.absent(source)), false
}

func (s *Snapshot) notFoundFix(source string) string {
	switch source {
	case "app":
		return "azd provision   # infra/ creates the app registration; or: az ad app create --display-name <name> --sign-in-audience AzureADMyOrg"
	case "bot":
		return s.botCreateFix()
	case "connection":
		return s.connectionFix()
	case "sp":
		return "az ad sp create --id " + s.appID()
	case "identity":
		return "az functionapp identity assign --resource-group " + s.resourceGroup() + " --name " + s.functionAppName() + " --identities <user-assigned-identity-resource-id>   # the identity whose client id is BOT_MANAGED_IDENTITY_CLIENT_ID"
	}
	return ""
}

// quote makes a value safe inside single quotes in a POSIX shell.
func quote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }

// matchDomain reports whether a host is covered by a validDomains entry (exact or *.suffix).
func matchDomain(pattern, host string) bool {
	pattern, host = strings.ToLower(strings.TrimSpace(pattern)), strings.ToLower(host)
	if strings.HasPrefix(pattern, "*.") {
		return strings.HasSuffix(host, pattern[1:])
	}
	return pattern == host
}
