// Package deploycheck verifies, without Azure, the properties of the deployment that Teams
// single sign-on and the no-secrets rule depend on, across the Bicep under infra/ and the
// Teams manifest template under appPackage/. Most failed Teams SSO set-ups break one of
// these (Microsoft Teams SSO architecture; the Teams CLI `teams app doctor` checks the same
// facts on a live tenant). Each violation names the invariant it breaks.
package deploycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Invariant names one property of the deployment that must hold.
type Invariant string

// The invariants Check verifies.
const (
	IdentifierURI            Invariant = "identifier-uri"              // app identifierUris = [api://botid-{its appId}]
	AccessAsUserScope        Invariant = "access-as-user-scope"        // delegated scope access_as_user, enabled, stable id
	TeamsClientsPreauth      Invariant = "teams-clients-preauthorized" // both Teams clients pre-authorized for that scope
	RedirectURI              Invariant = "redirect-uri"                // https://token.botframework.com/.auth/web/redirect
	AccessTokenVersion2      Invariant = "access-token-version-2"      // api.requestedAccessTokenVersion = 2
	SingleTenant             Invariant = "single-tenant"               // signInAudience AzureADMyOrg, bot SingleTenant
	NoPasswordCredentials    Invariant = "no-password-credentials"     // no password credentials on any app
	GraphPermissions         Invariant = "graph-delegated-permissions" // the Graph scopes the connectors use
	ServicePrincipal         Invariant = "service-principal"           // the app has a service principal
	FICManagedIdentity       Invariant = "fic-managed-identity"        // FIC #1 trusts the Function App's UAMI
	FICBotTokenStore         Invariant = "fic-bot-token-store"         // FIC #2 trusts the Bot Service token store
	BotIdentity              Invariant = "bot-identity"                // bot msaAppId = app, single tenant
	BotEndpoint              Invariant = "bot-messaging-endpoint"      // https://{function host}/api/messages
	TeamsChannel             Invariant = "teams-channel"               // MsTeamsChannel enabled
	OAuthProvider            Invariant = "oauth-connection-provider"   // AAD v2 with Federated Credentials, no secret
	TokenExchangeURL         Invariant = "token-exchange-url"          // = identifier URI
	OAuthScope               Invariant = "oauth-connection-scope"      // = {identifier URI}/.default
	SelfPermission           Invariant = "self-delegated-permission"   // requiredResourceAccess lists the app's own access_as_user
	ManifestSchema           Invariant = "manifest-schema"             // current manifest schema
	ManifestWebAppInfo       Invariant = "manifest-web-application-info"
	ManifestBotID            Invariant = "manifest-bot-id"
	ManifestValidDomains     Invariant = "manifest-valid-domains"
	ManifestCommands         Invariant = "manifest-commands"
	StorageSharedKey         Invariant = "storage-shared-key-disabled"
	StorageTLS               Invariant = "storage-tls-1-2"
	StorageDataRoles         Invariant = "storage-data-roles"
	KeyVaultRBAC             Invariant = "key-vault-rbac"
	FlexCustomRuntime        Invariant = "flex-consumption-custom-runtime"
	NoFunctionsWorkerSetting Invariant = "no-functions-worker-runtime"
	FunctionAppIdentity      Invariant = "function-app-identity"
	AppSettings              Invariant = "app-settings"
	SecretParamNames         Invariant = "secure-secrets-in-params"           // no param named like a secret (Bicep linter, error level)
	SecretOutputNames        Invariant = "outputs-should-not-contain-secrets" // no output named like a password (Bicep linter, error level)
	EntraScopeFirst          Invariant = "entra-scope-before-preauthorization"
	EntraAPIWhole            Invariant = "entra-api-whole"             // every declaration sending api sends all of it
	FlexDeprecatedProperties Invariant = "flex-deprecated-properties"  // nothing Flex Consumption deprecates
	FlexPublishingPolicies   Invariant = "flex-no-publishing-policies" // no basicPublishingCredentialsPolicies on the Flex site
	ModelKeyless             Invariant = "model-keyless"               // every model account: disableLocalAuth, a custom subdomain
	ModelDataRole            Invariant = "model-data-role-only"        // the identity holds Cognitive Services OpenAI User, nothing more
	// MonitoringEntraOnly: Application Insights takes Entra-authenticated telemetry only and the
	// Function App identity may publish to it (the handler sends audit events as that identity).
	MonitoringEntraOnly Invariant = "monitoring-entra-only"
)

// Well-known values (Microsoft Teams SSO documentation; PROTOCOL.md).
const (
	TeamsDesktopClientID   = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
	TeamsWebClientID       = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
	BotFrameworkRedirect   = "https://token.botframework.com/.auth/web/redirect"
	AADv2FederatedProvider = "c00b44ab-5e16-c44c-af26-2fd5bc55eb18"
	BotTokenStoreAppB64    = "9ExAW52n_ky4ZiS_jhpJIQ"
	TokenExchangeAudience  = "api://AzureADTokenExchange"
	ManifestVersion        = "1.22"
	graphAppID             = "00000003-0000-0000-c000-000000000000"
)

// GraphScopes are the Microsoft Graph delegated permissions the connectors use, by id.
var GraphScopes = map[string]string{
	"e1fe6dd8-ba31-4d61-89e7-88639da4683d": "User.Read",
	"570282fd-fa5c-430d-a7fd-fc8dc98a9dca": "Mail.Read",
	"df85f4d6-205c-4ac5-a5ea-6bf408dba283": "Files.Read.All",
	"7427e0e9-2fba-42fe-b0c0-848c9e6a8182": "offline_access",
	"37f7f235-527c-4136-accd-4a02d197296e": "openid",
	"14dad69e-099b-42c9-810b-d002981feec1": "profile",
}

// BotCommands are the commands the manifest must list for the bot.
var BotCommands = []string{"help", "whoami", "mail", "files", "connections", "connect", "jira", "confluence", "signout", "disconnect"}

// RequiredAppSettings are the settings the handler needs in Azure; ForbiddenAppSettings are
// dev-only or secret-bearing settings that must never be deployed.
var (
	RequiredAppSettings = []string{
		"BOT_APP_ID", "BOT_TENANT_ID", "BOT_MANAGED_IDENTITY_CLIENT_ID", "BOT_OAUTH_CONNECTION",
		"BOT_PUBLIC_URL", "TOKENSTORE_TABLE_ENDPOINT", "TOKENSTORE_KEYVAULT_URL", "TOKENSTORE_KEY_NAME",
		"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
		"AzureWebJobsStorage__queueServiceUri", "APPLICATIONINSIGHTS_CONNECTION_STRING",
	}
	ForbiddenAppSettings = []string{
		"BOT_CLIENT_SECRET", "BOT_ALLOW_ANONYMOUS", "TOKENSTORE_CONNECTION_STRING", "TOKENSTORE_DEV_KEY", "WORK_QUEUE_CONNECTION_STRING",
		"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_KEY",
	}
)

// Role definition ids (Azure built-in roles).
const (
	roleTableDataContributor = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
	roleQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
	roleBlobDataOwner        = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	roleKeyVaultSecretsUser  = "4633458b-17de-408a-b874-0445c86b69e6"
	// Cognitive Services OpenAI User: inference, no keys, no deployment management
	// (learn.microsoft.com azure/role-based-access-control/built-in-roles/ai-machine-learning).
	roleOpenAIUser = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
	// Monitoring Metrics Publisher: publishes all telemetry, not only metrics, to an
	// Application Insights component (learn.microsoft.com azure-monitor/app/azure-ad-authentication).
	roleMonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb"
)

// Violation is one broken invariant, where it was found, and what was found instead.
type Violation struct {
	Invariant Invariant
	File      string
	Line      int
	Detail    string
}

func (v Violation) String() string {
	loc := v.File
	if v.Line > 0 {
		loc = fmt.Sprintf("%s:%d", v.File, v.Line)
	}
	return fmt.Sprintf("%s: [%s] %s", loc, v.Invariant, v.Detail)
}

// Violations is the result of Check; as an error it lists every violation.
type Violations []Violation

func (vs Violations) Error() string {
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = v.String()
	}
	return fmt.Sprintf("%d deployment invariant(s) broken:\n%s", len(vs), strings.Join(lines, "\n"))
}

// Has reports whether inv is among the violations.
func (vs Violations) Has(inv Invariant) bool {
	for _, v := range vs {
		if v.Invariant == inv {
			return true
		}
	}
	return false
}

// ErrInput reports files Check cannot read or parse.
var ErrInput = errors.New("deploycheck input")

// Check verifies every invariant on the repository (or copy) at root: root/infra/**/*.bicep
// with root/infra/main.bicep as the entry point, and root/appPackage/manifest.template.json.
// It returns the violations found (nil when all hold) or an error wrapping ErrInput when the
// files cannot be read.
func Check(root string) (Violations, error) {
	files, err := LoadInfra(filepath.Join(root, "infra"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if files["main.bicep"] == nil {
		return nil, fmt.Errorf("%w: infra/main.bicep not found", ErrInput)
	}
	raw, err := os.ReadFile(filepath.Join(root, "appPackage", "manifest.template.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	var manifest map[string]any
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("%w: appPackage/manifest.template.json: %w", ErrInput, err)
	}
	params, err := readParametersFile(filepath.Join(root, "infra", "main.parameters.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	c := &checker{in: NewInfra(files), main: files["main.bicep"], manifest: manifest, params: params}
	c.run()
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Invariant < c.out[j].Invariant })
	if len(c.out) == 0 {
		return nil, nil
	}
	return c.out, nil
}

type checker struct {
	in       *Infra
	main     *File
	manifest map[string]any
	params   map[string]string // main.parameters.json: parameter → value as written
	out      Violations

	appID         string // canonical appId of the SSO application
	identifierURI string // canonical identifier URI
	uami          string // canonical "<file>#<symbol>" of the Function App's identity
	siteHost      string // canonical default host name of the Function App
	connName      string // canonical OAuth connection name
	connUniqueID  string // canonical OAuth connection UniqueIdentifier
}

func (c *checker) fail(inv Invariant, f *File, line int, format string, args ...any) {
	name := "appPackage/manifest.template.json"
	if f != nil {
		name = "infra/" + f.Path
	}
	c.out = append(c.out, Violation{Invariant: inv, File: name, Line: line, Detail: fmt.Sprintf(format, args...)})
}

// resources returns the declared (not `existing`) resources of a type, in file order.
func (c *checker) resources(typ string) []*Resource {
	var out []*Resource
	names := make([]string, 0, len(c.in.Files))
	for n := range c.in.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, r := range c.in.Files[n].Resources {
			if strings.EqualFold(r.Type, typ) && !r.Existing {
				out = append(out, r)
			}
		}
	}
	return out
}

func (c *checker) run() {
	c.checkSecretsText()
	c.checkLinterSecretNames()
	c.checkApplication()
	c.checkEntraSteps()
	c.checkFlexDeprecations()
	c.checkIdentityAndFunctionApp()
	c.checkFICs()
	c.checkBot()
	c.checkStorageAndVault()
	c.checkAppSettings()
	c.checkModel()
	c.checkManifest()
}

// readParametersFile reads the azd parameters file: each parameter's value as written (azd
// substitutes ${VAR=default} from the environment before the deployment). A missing file is
// an empty set.
func readParametersFile(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("infra/main.parameters.json: %w", err)
	}
	out := map[string]string{}
	for k, v := range doc.Parameters {
		out[k] = fmt.Sprint(v.Value)
	}
	return out, nil
}

// checkSecretsText looks for what must not be written anywhere in the templates.
func (c *checker) checkSecretsText() {
	for _, f := range c.sortedFiles() {
		for i, line := range strings.Split(f.Src, "\n") {
			if strings.Contains(line, "passwordCredentials") {
				c.fail(NoPasswordCredentials, f, i+1, "password credentials are declared; the app must authenticate with federated credentials only")
			}
			if strings.Contains(line, "FUNCTIONS_WORKER_RUNTIME") {
				c.fail(NoFunctionsWorkerSetting, f, i+1, "FUNCTIONS_WORKER_RUNTIME must not be set on Flex Consumption")
			}
		}
	}
}

func (c *checker) sortedFiles() []*File {
	names := make([]string, 0, len(c.in.Files))
	for n := range c.in.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*File, len(names))
	for i, n := range names {
		out[i] = c.in.Files[n]
	}
	return out
}

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *checker) checkApplication() {
	apps := c.resources("Microsoft.Graph/applications")
	var sso *Resource
	for _, a := range apps {
		if a.Body.Get("identifierUris") != nil {
			sso = a
		}
		if aud, _ := c.in.Literal(a.File, a.Body.Get("signInAudience")); aud != "AzureADMyOrg" {
			c.fail(SingleTenant, a.File, a.Line, "application %s: signInAudience is %q, want AzureADMyOrg", a.Symbol, aud)
		}
	}
	if sso == nil {
		c.fail(IdentifierURI, nil, 0, "no Microsoft.Graph/applications declaration sets identifierUris")
		return
	}
	f, b := sso.File, sso.Body
	c.appID = "application[" + c.in.Resolve(f, b.Get("uniqueName")) + "].appId"

	// Identifier URI: exactly api://botid-{this application's appId}.
	want := "'api://botid-${" + c.appID + "}'"
	uris := c.in.ArrayItems(f, b.Get("identifierUris"), "")
	if len(uris) != 1 || uris[0] != want {
		c.fail(IdentifierURI, f, sso.Line, "identifierUris = %v, want [%s]", uris, want)
	} else {
		c.identifierURI = uris[0]
	}

	if v := b.Get("api.requestedAccessTokenVersion"); v == nil || strings.TrimSpace(v.Text) != "2" {
		c.fail(AccessTokenVersion2, f, sso.Line, "api.requestedAccessTokenVersion is %q, want 2", b.Get("api.requestedAccessTokenVersion").textOr(""))
	}

	// The access_as_user scope.
	scopeID := ""
	if scopes := b.Get("api.oauth2PermissionScopes"); scopes != nil && scopes.Kind == KindArray {
		for _, s := range scopes.Items {
			if v, _ := c.in.Literal(f, s.Get("value")); v != "access_as_user" {
				continue
			}
			id, _ := c.in.Literal(f, s.Get("id"))
			typ, _ := c.in.Literal(f, s.Get("type"))
			enabled := strings.TrimSpace(s.Get("isEnabled").textOr(""))
			switch {
			case !guidRe.MatchString(id):
				c.fail(AccessAsUserScope, f, s.Line, "access_as_user scope id %q is not a constant GUID", id)
			case typ != "User":
				c.fail(AccessAsUserScope, f, s.Line, "access_as_user scope type is %q, want User (users consent for themselves)", typ)
			case enabled != "true":
				c.fail(AccessAsUserScope, f, s.Line, "access_as_user scope is not enabled")
			default:
				scopeID = id
			}
		}
	}
	if scopeID == "" && !c.out.Has(AccessAsUserScope) {
		c.fail(AccessAsUserScope, f, sso.Line, "no oauth2PermissionScopes entry with value access_as_user")
	}

	// Both Teams clients pre-authorized for that scope.
	pre := b.Get("api.preAuthorizedApplications")
	for _, client := range []string{TeamsDesktopClientID, TeamsWebClientID} {
		ok := false
		if pre != nil && pre.Kind == KindArray {
			for _, p := range pre.Items {
				if id, _ := c.in.Literal(f, p.Get("appId")); id != client {
					continue
				}
				for _, d := range c.in.ArrayItems(f, p.Get("delegatedPermissionIds"), "") {
					if scopeID != "" && d == "'"+scopeID+"'" {
						ok = true
					}
				}
			}
		}
		if !ok {
			c.fail(TeamsClientsPreauth, f, sso.Line, "Teams client %s is not pre-authorized for access_as_user", client)
		}
	}

	redirect := false
	for _, u := range c.in.ArrayItems(f, b.Get("web.redirectUris"), "") {
		if u == "'"+BotFrameworkRedirect+"'" {
			redirect = true
		}
	}
	if !redirect {
		c.fail(RedirectURI, f, sso.Line, "web.redirectUris lacks %s", BotFrameworkRedirect)
	}

	// Graph delegated permissions, and the app's own access_as_user: the OAuth connection asks
	// for {identifier URI}/.default, whose consent prompt covers exactly what is listed here, so a
	// user without admin consent consents to Graph and to the bot's own API at once.
	have := map[string]bool{}
	self := false
	if rra := b.Get("requiredResourceAccess"); rra != nil && rra.Kind == KindArray {
		for _, r := range rra.Items {
			if c.in.Resolve(f, r.Get("resourceAppId")) == c.appID {
				for _, s := range c.in.ArrayItems(f, r.Get("resourceAccess"), "id") {
					if scopeID != "" && s == "'"+scopeID+"'" {
						self = true
					}
				}
				continue
			}
			if id, _ := c.in.Literal(f, r.Get("resourceAppId")); id != graphAppID {
				continue
			}
			for _, s := range c.in.ArrayItems(f, r.Get("resourceAccess"), "id") {
				have[strings.Trim(s, "'")] = true
			}
		}
	}
	for _, id := range sortedKeys(GraphScopes) {
		if !have[id] {
			c.fail(GraphPermissions, f, sso.Line, "requiredResourceAccess lacks Microsoft Graph %s (%s)", GraphScopes[id], id)
		}
	}
	if !self {
		c.fail(SelfPermission, f, sso.Line, "requiredResourceAccess lacks the application's own access_as_user (the connection's .default consent would not cover the bot's API)")
	}

	sp := false
	for _, r := range c.resources("Microsoft.Graph/servicePrincipals") {
		if c.in.Resolve(r.File, r.Body.Get("appId")) == c.appID {
			sp = true
		}
	}
	if !sp {
		c.fail(ServicePrincipal, f, sso.Line, "no Microsoft.Graph/servicePrincipals resource for the application")
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkIdentityAndFunctionApp finds the Function App, its plan, runtime and identity.
func (c *checker) checkIdentityAndFunctionApp() {
	sites := c.resources("Microsoft.Web/sites")
	if len(sites) != 1 {
		c.fail(FlexCustomRuntime, nil, 0, "want exactly one Microsoft.Web/sites resource, found %d", len(sites))
		return
	}
	site := sites[0]
	f, b := site.File, site.Body
	c.siteHost = f.Path + "#" + site.Symbol + ".properties.defaultHostName"

	if kind, _ := c.in.Literal(f, b.Get("kind")); kind != "functionapp,linux" {
		c.fail(FlexCustomRuntime, f, site.Line, "site kind is %q, want functionapp,linux", kind)
	}
	if name, _ := c.in.Literal(f, b.Get("properties.functionAppConfig.runtime.name")); name != "custom" {
		c.fail(FlexCustomRuntime, f, site.Line, "functionAppConfig.runtime.name is %q, want custom", name)
	}
	flex := false
	plan := strings.TrimSuffix(c.in.Resolve(f, b.Get("properties.serverFarmId")), ".id")
	for _, p := range c.resources("Microsoft.Web/serverfarms") {
		if p.File.Path+"#"+p.Symbol != plan {
			continue
		}
		sku, _ := c.in.Literal(p.File, p.Body.Get("sku.name"))
		tier, _ := c.in.Literal(p.File, p.Body.Get("sku.tier"))
		flex = sku == "FC1" && tier == "FlexConsumption"
	}
	if !flex {
		c.fail(FlexCustomRuntime, f, site.Line, "the site's plan is not a Flex Consumption plan (sku FC1, tier FlexConsumption)")
	}

	// Identity: user-assigned, exactly one.
	typ, _ := c.in.Literal(f, b.Get("identity.type"))
	ids := b.Get("identity.userAssignedIdentities")
	if typ != "UserAssigned" || ids == nil || ids.Kind != KindObject || len(ids.Props) != 1 {
		c.fail(FunctionAppIdentity, f, site.Line, "the Function App must run as exactly one user-assigned identity")
		return
	}
	key := ids.Props[0].Key
	id := c.in.resolveExpr(f, "'"+key+"'", 0)
	if !strings.HasSuffix(id, ".id") || !c.isUAMI(strings.TrimSuffix(id, ".id")) {
		c.fail(FunctionAppIdentity, f, site.Line, "the Function App identity %s is not a user-assigned identity declared here", id)
		return
	}
	c.uami = strings.TrimSuffix(id, ".id")
	auth, _ := c.in.Literal(f, b.Get("properties.functionAppConfig.deployment.storage.authentication.type"))
	authID := c.in.Resolve(f, b.Get("properties.functionAppConfig.deployment.storage.authentication.userAssignedIdentityResourceId"))
	if auth != "UserAssignedIdentity" || authID != c.uami+".id" {
		c.fail(FunctionAppIdentity, f, site.Line, "deployment storage must be read with the app's user-assigned identity (found %q, %s)", auth, authID)
	}
}

// isUAMI reports whether "<file>#<symbol>" is a declared user-assigned identity.
func (c *checker) isUAMI(ref string) bool {
	for _, r := range c.resources("Microsoft.ManagedIdentity/userAssignedIdentities") {
		if r.File.Path+"#"+r.Symbol == ref {
			return true
		}
	}
	return false
}

var ficSubjectRe = regexp.MustCompile(`^'/eid1/c/pub/t/(.+)/a/` + BotTokenStoreAppB64 + `/(.+)'$`)

func (c *checker) checkFICs() {
	var uamiFIC, storeFIC bool
	for _, r := range c.resources("Microsoft.Graph/applications/federatedIdentityCredentials") {
		f, b := r.File, r.Body
		subject := c.in.Resolve(f, b.Get("subject"))
		issuer := c.in.Resolve(f, b.Get("issuer"))
		aud := c.in.ArrayItems(f, b.Get("audiences"), "")
		issuerOK := strings.Contains(issuer, "tenant().tenantId") && strings.HasSuffix(issuer, "/v2.0'") &&
			(strings.HasPrefix(issuer, "'${environment().authentication.loginEndpoint}") || strings.HasPrefix(issuer, "'https://login.microsoftonline.com/"))
		audOK := len(aud) == 1 && aud[0] == "'"+TokenExchangeAudience+"'"
		switch {
		case strings.HasSuffix(subject, ".properties.principalId") && c.uami != "" &&
			strings.TrimSuffix(subject, ".properties.principalId") == c.uami:
			if !issuerOK || !audOK {
				c.fail(FICManagedIdentity, f, r.Line, "FIC for the managed identity: issuer %s, audiences %v; want the tenant's v2.0 issuer and %s", issuer, aud, TokenExchangeAudience)
			} else {
				uamiFIC = true
			}
		case strings.HasPrefix(subject, "'/eid1/"):
			m := ficSubjectRe.FindStringSubmatch(subject)
			switch {
			case m == nil || !strings.HasPrefix(m[1], "${") || !strings.Contains(f.Src, "tenant().tenantId"):
				c.fail(FICBotTokenStore, f, r.Line, "token store FIC subject %s, want /eid1/c/pub/t/{base64url tenant id}/a/%s/{UniqueIdentifier}", subject, BotTokenStoreAppB64)
			case !issuerOK || !audOK:
				c.fail(FICBotTokenStore, f, r.Line, "token store FIC: issuer %s, audiences %v; want the tenant's v2.0 issuer and %s", issuer, aud, TokenExchangeAudience)
			default:
				c.connUniqueID = unwrapInterp(m[2])
				storeFIC = true
			}
		}
	}
	if !uamiFIC && !c.out.Has(FICManagedIdentity) {
		c.fail(FICManagedIdentity, nil, 0, "no federated identity credential trusts the Function App's user-assigned identity (subject = its principalId)")
	}
	if !storeFIC && !c.out.Has(FICBotTokenStore) {
		c.fail(FICBotTokenStore, nil, 0, "no federated identity credential trusts the Bot Service token store")
	}
}

// unwrapInterp turns "${x}" into x and a literal piece into its quoted form.
func unwrapInterp(s string) string {
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
		return s[2 : len(s)-1]
	}
	return "'" + s + "'"
}

func (c *checker) checkBot() {
	bots := c.resources("Microsoft.BotService/botServices")
	if len(bots) != 1 {
		c.fail(BotIdentity, nil, 0, "want exactly one Microsoft.BotService/botServices resource, found %d", len(bots))
		return
	}
	bot := bots[0]
	f, b := bot.File, bot.Body
	if id := c.in.Resolve(f, b.Get("properties.msaAppId")); c.appID == "" || id != c.appID {
		c.fail(BotIdentity, f, bot.Line, "msaAppId is %s, want the SSO application's appId", id)
	}
	if t, _ := c.in.Literal(f, b.Get("properties.msaAppType")); t != "SingleTenant" {
		c.fail(SingleTenant, f, bot.Line, "bot msaAppType is %q, want SingleTenant", t)
	}
	if t := c.in.Resolve(f, b.Get("properties.msaAppTenantId")); t != "tenant().tenantId" {
		c.fail(BotIdentity, f, bot.Line, "msaAppTenantId is %s, want tenant().tenantId", t)
	}
	wantEndpoint := "'https://${" + c.siteHost + "}/api/messages'"
	if e := c.in.Resolve(f, b.Get("properties.endpoint")); e != wantEndpoint {
		c.fail(BotEndpoint, f, bot.Line, "endpoint is %s, want %s", e, wantEndpoint)
	}

	teams := false
	for _, ch := range c.resources("Microsoft.BotService/botServices/channels") {
		name, _ := c.in.Literal(ch.File, ch.Body.Get("name"))
		cn, _ := c.in.Literal(ch.File, ch.Body.Get("properties.channelName"))
		en := strings.TrimSpace(ch.Body.Get("properties.properties.isEnabled").textOr(""))
		if name == "MsTeamsChannel" && cn == "MsTeamsChannel" && en == "true" {
			teams = true
		}
	}
	if !teams {
		c.fail(TeamsChannel, f, bot.Line, "no enabled MsTeamsChannel channel on the bot")
	}

	conns := c.resources("Microsoft.BotService/botServices/connections")
	if len(conns) != 1 {
		c.fail(OAuthProvider, f, bot.Line, "want exactly one OAuth connection, found %d", len(conns))
		return
	}
	conn := conns[0]
	cf, cb := conn.File, conn.Body
	c.connName = c.in.Resolve(cf, cb.Get("name"))
	if id, _ := c.in.Literal(cf, cb.Get("properties.serviceProviderId")); id != AADv2FederatedProvider {
		c.fail(OAuthProvider, cf, conn.Line, "serviceProviderId is %q, want %s (AAD v2 with Federated Credentials)", id, AADv2FederatedProvider)
	}
	if cb.Get("properties.clientSecret") != nil {
		c.fail(OAuthProvider, cf, conn.Line, "the OAuth connection must not carry a client secret")
	}
	params := map[string]*Node{}
	if ps := cb.Get("properties.parameters"); ps != nil && ps.Kind == KindArray {
		for _, p := range ps.Items {
			k, _ := c.in.Literal(cf, p.Get("key"))
			params[strings.ToLower(k)] = p.Get("value")
			if strings.Contains(strings.ToLower(k), "secret") {
				c.fail(OAuthProvider, cf, p.Line, "the OAuth connection must not carry a secret parameter (%s)", k)
			}
		}
	}
	if v := c.in.Resolve(cf, params["clientid"]); v != c.appID {
		c.fail(OAuthProvider, cf, conn.Line, "parameter ClientId is %q, want the SSO application's appId", v)
	}
	if v := c.in.Resolve(cf, params["tenantid"]); v != "tenant().tenantId" {
		c.fail(OAuthProvider, cf, conn.Line, "parameter TenantId is %q, want tenant().tenantId", v)
	}
	uid := c.in.Resolve(cf, params["uniqueidentifier"])
	if uid == "" {
		c.fail(OAuthProvider, cf, conn.Line, "parameter UniqueIdentifier is missing")
	} else if c.connUniqueID != "" && uid != c.connUniqueID {
		c.fail(FICBotTokenStore, cf, conn.Line, "the token store FIC subject ends in %s but the connection's UniqueIdentifier is %s", c.connUniqueID, uid)
	}
	if v := c.in.Resolve(cf, params["tokenexchangeurl"]); c.identifierURI == "" || v != c.identifierURI {
		c.fail(TokenExchangeURL, cf, conn.Line, "TokenExchangeUrl is %s, want the identifier URI %s", v, c.identifierURI)
	}
	wantScope := strings.TrimSuffix(c.identifierURI, "'") + "/.default'"
	if v := c.in.Resolve(cf, cb.Get("properties.scopes")); c.identifierURI == "" || v != wantScope {
		c.fail(OAuthScope, cf, conn.Line, "scopes is %s, want %s", v, wantScope)
	}
}

var anyGUID = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// rolesOf returns, per resolved principal, the role definition ids assigned to it.
func (c *checker) rolesOf() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, r := range c.resources("Microsoft.Authorization/roleAssignments") {
		principal := c.in.Resolve(r.File, r.Body.Get("properties.principalId"))
		text := r.LoopHeader + r.Body.Get("properties.roleDefinitionId").textOr("")
		// Role ids usually sit in vars: read the vars the expression names.
		for _, name := range identToken.FindAllString(text, -1) {
			if v, ok := r.File.Vars[name]; ok {
				text += " " + v.Value.Text
			}
		}
		if out[principal] == nil {
			out[principal] = map[string]bool{}
		}
		for _, g := range anyGUID.FindAllString(text, -1) {
			out[principal][strings.ToLower(g)] = true
		}
	}
	return out
}

func (c *checker) checkStorageAndVault() {
	accounts := c.resources("Microsoft.Storage/storageAccounts")
	if len(accounts) == 0 {
		c.fail(StorageSharedKey, nil, 0, "no storage account declared")
	}
	for _, a := range accounts {
		if v := strings.TrimSpace(a.Body.Get("properties.allowSharedKeyAccess").textOr("")); v != "false" {
			c.fail(StorageSharedKey, a.File, a.Line, "storage account %s: allowSharedKeyAccess is %q, want false", a.Symbol, v)
		}
		if v, _ := c.in.Literal(a.File, a.Body.Get("properties.minimumTlsVersion")); v != "TLS1_2" {
			c.fail(StorageTLS, a.File, a.Line, "storage account %s: minimumTlsVersion is %q, want TLS1_2", a.Symbol, v)
		}
	}
	roles := c.rolesOf()[c.uami+".properties.principalId"]
	for id, name := range map[string]string{
		roleTableDataContributor: "Storage Table Data Contributor",
		roleQueueDataContributor: "Storage Queue Data Contributor",
		roleBlobDataOwner:        "Storage Blob Data Owner",
	} {
		if !roles[id] {
			c.fail(StorageDataRoles, nil, 0, "the Function App identity lacks %s (%s)", name, id)
		}
	}
	vaults := c.resources("Microsoft.KeyVault/vaults")
	if len(vaults) == 0 {
		c.fail(KeyVaultRBAC, nil, 0, "no key vault declared")
	}
	for _, v := range vaults {
		if e := strings.TrimSpace(v.Body.Get("properties.enableRbacAuthorization").textOr("")); e != "true" {
			c.fail(KeyVaultRBAC, v.File, v.Line, "key vault %s: enableRbacAuthorization is %q, want true", v.Symbol, e)
		}
		if v.Body.Get("properties.accessPolicies") != nil {
			c.fail(KeyVaultRBAC, v.File, v.Line, "key vault %s declares access policies; use RBAC only", v.Symbol)
		}
	}
	if !roles[roleKeyVaultSecretsUser] {
		c.fail(KeyVaultRBAC, nil, 0, "the Function App identity lacks Key Vault Secrets User (%s)", roleKeyVaultSecretsUser)
	}
	for _, ai := range c.resources("Microsoft.Insights/components") {
		if v := strings.TrimSpace(ai.Body.Get("properties.DisableLocalAuth").textOr("")); v != "true" {
			c.fail(MonitoringEntraOnly, ai.File, ai.Line, "Application Insights %s: DisableLocalAuth is %q, want true", ai.Symbol, v)
		}
	}
	if !roles[roleMonitoringMetricsPublisher] {
		c.fail(MonitoringEntraOnly, nil, 0, "the Function App identity lacks Monitoring Metrics Publisher (%s) for its audit events", roleMonitoringMetricsPublisher)
	}
}

func (c *checker) checkAppSettings() {
	var settings map[string]located
	var at *Resource
	for _, r := range c.resources("Microsoft.Web/sites/config") {
		if name, _ := c.in.Literal(r.File, r.Body.Get("name")); name == "appsettings" {
			settings, at = c.in.ObjectKeys(r.File, r.Body.Get("properties")), r
		}
	}
	if at == nil {
		c.fail(AppSettings, nil, 0, "no Microsoft.Web/sites/config 'appsettings' resource")
		return
	}
	for _, k := range RequiredAppSettings {
		if _, ok := settings[k]; !ok {
			c.fail(AppSettings, at.File, at.Line, "app setting %s is missing", k)
		}
	}
	for _, k := range ForbiddenAppSettings {
		if l, ok := settings[k]; ok {
			c.fail(AppSettings, l.file, l.node.Line, "app setting %s must not be deployed", k)
		}
	}
	expect := func(key, want, what string) {
		l, ok := settings[key]
		if !ok {
			return
		}
		if got := c.in.Resolve(l.file, l.node); want == "" || got != want {
			c.fail(AppSettings, l.file, l.node.Line, "app setting %s is %s, want %s", key, got, what)
		}
	}
	expect("BOT_APP_ID", c.appID, "the SSO application's appId")
	expect("BOT_TENANT_ID", "tenant().tenantId", "tenant().tenantId")
	expect("BOT_MANAGED_IDENTITY_CLIENT_ID", nonEmpty(c.uami, ".properties.clientId"), "the Function App identity's clientId")
	expect("AzureWebJobsStorage__clientId", nonEmpty(c.uami, ".properties.clientId"), "the Function App identity's clientId")
	expect("AzureWebJobsStorage__credential", "'managedidentity'", "'managedidentity'")
	expect("BOT_OAUTH_CONNECTION", c.connName, "the OAuth connection's name")
	expect("BOT_PUBLIC_URL", nonEmpty(c.siteHost, "", "'https://${", "}'"), "https://{the Function App host}")
	// The assistant's model: an endpoint needs its deployment, and the other way round.
	_, endpoint := settings["AZURE_OPENAI_ENDPOINT"]
	_, deployment := settings["AZURE_OPENAI_DEPLOYMENT"]
	if endpoint != deployment {
		c.fail(AppSettings, at.File, at.Line, "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT must be deployed together")
	}
	for k, l := range settings {
		v := l.node.textOr("")
		if strings.Contains(v, "listKeys(") || strings.Contains(v, "AccountKey=") || strings.Contains(v, "SharedAccessKey=") {
			c.fail(AppSettings, l.file, l.node.Line, "app setting %s carries a key", k)
		}
	}
}

// nonEmpty builds prefix+s+suffix, or "" when s is empty (nothing to compare with).
func nonEmpty(s, suffix string, wrap ...string) string {
	if s == "" {
		return ""
	}
	if len(wrap) == 2 {
		return wrap[0] + s + suffix + wrap[1]
	}
	return s + suffix
}

// checkModel holds the assistant's model to keyless access: each account declared has local
// (key) authentication disabled and a custom subdomain (Entra tokens need it), and every role
// assignment on a model account — declared or existing — gives the Function App identity
// Cognitive Services OpenAI User and nothing else.
func (c *checker) checkModel() {
	for _, a := range c.resources("Microsoft.CognitiveServices/accounts") {
		if v := strings.TrimSpace(a.Body.Get("properties.disableLocalAuth").textOr("")); v != "true" {
			c.fail(ModelKeyless, a.File, a.Line, "account %s: disableLocalAuth is %q, want true", a.Symbol, v)
		}
		if a.Body.Get("properties.customSubDomainName") == nil {
			c.fail(ModelKeyless, a.File, a.Line, "account %s has no customSubDomainName (Entra token authentication needs one)", a.Symbol)
		}
	}
	accounts := map[*File]map[string]bool{} // file → symbols of model accounts, declared or existing
	for _, f := range c.sortedFiles() {
		for _, r := range f.Resources {
			if strings.EqualFold(r.Type, "Microsoft.CognitiveServices/accounts") {
				if accounts[f] == nil {
					accounts[f] = map[string]bool{}
				}
				accounts[f][r.Symbol] = true
			}
		}
	}
	for f, syms := range accounts {
		granted := false
		for _, r := range f.Resources {
			if !strings.EqualFold(r.Type, "Microsoft.Authorization/roleAssignments") || !syms[strings.TrimSpace(r.Body.Get("scope").textOr(""))] {
				continue
			}
			text := r.Body.Get("properties.roleDefinitionId").textOr("")
			for _, name := range identToken.FindAllString(text, -1) {
				if v, ok := f.Vars[name]; ok {
					text += " " + v.Value.Text
				}
			}
			principal := c.in.Resolve(f, r.Body.Get("properties.principalId"))
			for _, g := range anyGUID.FindAllString(text, -1) {
				if !strings.EqualFold(g, roleOpenAIUser) {
					c.fail(ModelDataRole, f, r.Line, "role assignment %s on the model gives role %s; only Cognitive Services OpenAI User (%s) is allowed", r.Symbol, g, roleOpenAIUser)
				}
			}
			if principal != c.uami+".properties.principalId" {
				c.fail(ModelDataRole, f, r.Line, "role assignment %s on the model is for %s, want the Function App identity", r.Symbol, principal)
				continue
			}
			granted = granted || strings.Contains(strings.ToLower(text), roleOpenAIUser)
		}
		if !granted {
			c.fail(ModelDataRole, f, 0, "the Function App identity gets no Cognitive Services OpenAI User role on the model account in %s", f.Path)
		}
	}
}
