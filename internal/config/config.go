// Package config reads the handler's settings from the environment (Azure Functions app
// settings, or local.settings.json through Functions Core Tools) and validates them in one
// pass, so a misconfigured deployment fails at start with one message naming every problem.
//
// Every endpoint has a public-cloud default and can be overridden, which is what sovereign
// clouds need and what the tests use to reach their stand-ins.
//
// A minimal production environment:
//
//	BOT_APP_ID=00000000-0000-0000-0000-000000000001
//	BOT_TENANT_ID=00000000-0000-0000-0000-0000000000aa
//	BOT_MANAGED_IDENTITY_CLIENT_ID=00000000-0000-0000-0000-000000000002
//	TOKENSTORE_TABLE_ENDPOINT=https://stonbehalf.table.core.windows.net
//	TOKENSTORE_KEYVAULT_URL=https://kv-onbehalf.vault.azure.net/
//
// A minimal local-development environment:
//
//	BOT_ALLOW_ANONYMOUS=true
package config

import (
	"github.com/onbehalf/onbehalf/internal/policy"

	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/connector/saml"
)

// Public-cloud defaults for every endpoint the handler talks to.
const (
	DefaultAuthorityHost      = "https://login.microsoftonline.com"
	DefaultOpenIDMetadataURL  = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	DefaultBotFrameworkScope  = "https://api.botframework.com/.default"
	DefaultTokenServiceURL    = "https://api.botframework.com"
	DefaultGraphURL           = "https://graph.microsoft.com"
	DefaultPort               = 3978
	DefaultOAuthConnection    = "sso"
	DefaultTokenStoreKeyName  = "tokenstore-key"
	DefaultMaxRequestBodySize = 256 << 10
	// DefaultAtlassianSecretName is the Key Vault secret of the Atlassian app's client secret.
	DefaultAtlassianSecretName = "atlassian-client-secret"
)

// Config is the validated set of settings the handler runs with.
type Config struct {
	// Port is FUNCTIONS_CUSTOMHANDLER_PORT: the loopback port the Functions host forwards to.
	Port int
	// InAzure is true when the process runs in an Azure Functions / App Service sandbox
	// (WEBSITE_INSTANCE_ID or WEBSITE_SITE_NAME is set). Development-only settings are refused there.
	InAzure bool
	// Anonymous is local-development mode: inbound requests are not authenticated and replies
	// carry no bearer token. Only possible with no BOT_APP_ID, outside Azure, and with
	// BOT_ALLOW_ANONYMOUS=true.
	Anonymous bool

	// TargetedMessages (TEAMS_TARGETED_MESSAGES) lets commands that read a user's own data run in
	// Teams group chats and channels, every answer going to the requester alone as a Teams
	// targeted message (public developer preview). Off, such commands answer only in a 1:1 chat.
	TargetedMessages bool

	// AppID is the bot's Entra application (client) id: the audience of channel tokens.
	AppID string
	// TenantID is the bot's Entra tenant (single-tenant bot).
	TenantID string
	// ManagedIdentityClientID is the user-assigned managed identity whose token for
	// api://AzureADTokenExchange is the bot's federated client assertion.
	ManagedIdentityClientID string
	// ClientSecret is a local-development-only alternative to the federated credential.
	ClientSecret string
	// OAuthConnection is the Azure Bot OAuth connection used for Teams SSO.
	OAuthConnection string
	// PublicURL is the https base URL of the Function App (OAuth callbacks); may be empty.
	PublicURL string

	// AuthorityHost is the Entra authority host (https://login.microsoftonline.com).
	AuthorityHost string
	// OpenIDMetadataURL is the Bot Framework channel's OpenID metadata document.
	OpenIDMetadataURL string
	// BotFrameworkScope is the scope of the bot's outbound connector token.
	BotFrameworkScope string
	// TokenServiceURL is the Bot Service token API base URL.
	TokenServiceURL string
	// GraphURL is the Microsoft Graph base URL.
	GraphURL string

	// GraphResource is the resource identifier of Microsoft Graph in tokens (its audience),
	// which prefixes GraphScopes: https://graph.microsoft.com, or a sovereign cloud's.
	GraphResource string
	// GraphScopes are the delegated Microsoft Graph permissions requested on the user's behalf
	// (GRAPH_SCOPES, default "User.Read Mail.Read Files.Read.All"), without the resource prefix.
	GraphScopes []string
	// EntraAPIs are the organisation's own Entra-protected APIs (ENTRA_APIS, a JSON array).
	EntraAPIs []EntraAPI

	// TokenStore holds the token-store settings.
	TokenStore TokenStore

	// Atlassian holds the Jira and Confluence connector's settings; it is off without a client id.
	Atlassian Atlassian
	// OAuth2Connectors are the generic OAuth 2.0 connectors (OAUTH2_CONNECTORS).
	OAuth2Connectors []oauth2.Config
	// SAMLApps are applications reached with a SAML assertion obtained on the user's behalf
	// and redeemed at the application's RFC 7522 token endpoint (SAML_APPS, a JSON array).
	SAMLApps []saml.Config
	// OAuth2DevSecrets maps Key Vault secret names to values for local development only
	// (OAUTH2_DEV_SECRETS, a JSON object); refused in Azure.
	OAuth2DevSecrets map[string]string

	// LDAP holds the legacy LDAP connector's settings; it is off without LDAP_URL.
	LDAP LDAP
	// Assistant holds the LLM assistant's settings; it is off without an endpoint.
	Assistant Assistant
	// Search is the assistant's knowledge base (Azure AI Search); off without an endpoint.
	Search Search

	// Work holds the work queue's settings (work.go).
	Work Work
	// RateLimit is the per-user limit on requests that reach back ends (ratelimit.go).
	RateLimit RateLimit

	// LogLevel is the minimum slog level.
	LogLevel slog.Level

	// Policy is the administrator's policy per connector (CONNECTOR_POLICY): writes off
	// unless enabled, allowed Atlassian sites, connectors turned off.
	Policy *policy.Policy
	// AdminRoles (BOT_ADMIN_ROLES, app role values) and AdminGroups (BOT_ADMIN_GROUPS, group
	// object ids), space separated, make a user an administrator of the bot.
	AdminRoles, AdminGroups []string

	// AppInsights receives audit records as custom events (audit.go); off when not set.
	AppInsights AppInsights
	// KeepAliveAfter is how long an idle-lapsing connection's refresh token may go unused
	// before an active user's connection is refreshed (CONNECTION_KEEPALIVE_DAYS, default 30;
	// negative: off).
	KeepAliveAfter time.Duration
}

// EntraAPI is one Entra-protected API the bot calls as the user. In ENTRA_APIS:
//
//	[{"name":"contoso","display":"Contoso HR","baseUrl":"https://hr.contoso.com/api","scopes":["api://contoso-hr/access_as_user"]}]
type EntraAPI struct {
	Name    string   `json:"name"`
	Display string   `json:"display,omitempty"`
	BaseURL string   `json:"baseUrl"`
	Scopes  []string `json:"scopes"`
}

// TokenStore holds the settings of the encrypted per-user token store.
type TokenStore struct {
	// TableEndpoint is https://<account>.table.core.windows.net, reached with the managed identity.
	TableEndpoint string
	// ConnectionString is a local-development-only connection string (Azurite).
	ConnectionString string
	// KeyVaultURL is the vault holding the token-encryption key.
	KeyVaultURL string
	// KeyName is the Key Vault secret whose versions are the key versions.
	KeyName string
	// DevKey is a local-development-only key: base64 of 32 bytes (validated).
	DevKey string
}

// Atlassian holds the settings of the Atlassian (Jira and Confluence) connector.
//
// Atlassian Cloud in Azure (the secret lives in TOKENSTORE_KEYVAULT_URL's vault):
//
//	ATLASSIAN_CLIENT_ID=aBcD1234eFgH5678iJkL9012mNoP3456
//	ATLASSIAN_CLIENT_SECRET_NAME=atlassian-client-secret
//	BOT_PUBLIC_URL=https://onbehalf-func.azurewebsites.net
//
// Local development against the stand-in (make dev sets these):
//
//	ATLASSIAN_CLIENT_ID=sandbox-client
//	ATLASSIAN_CLIENT_SECRET=sandbox-secret
//	ATLASSIAN_AUTH_URL=https://127.0.0.1:8443
//	ATLASSIAN_API_URL=https://127.0.0.1:8443
//	BOT_PUBLIC_URL=http://127.0.0.1:3978
type Atlassian struct {
	// ClientID is the Atlassian OAuth 2.0 (3LO) app's client id (ATLASSIAN_CLIENT_ID).
	ClientID string
	// ClientSecretName is the Key Vault secret holding the app's secret
	// (ATLASSIAN_CLIENT_SECRET_NAME, default atlassian-client-secret).
	ClientSecretName string
	// ClientSecret is the secret itself, for local development only (ATLASSIAN_CLIENT_SECRET).
	ClientSecret string
	// AuthURL, APIURL: the authorization server and API gateway (ATLASSIAN_AUTH_URL,
	// ATLASSIAN_API_URL); empty means Atlassian Cloud's.
	AuthURL string
	APIURL  string
	// DataCenterBaseURL switches to Jira/Confluence Data Center (ATLASSIAN_DC_BASE_URL).
	DataCenterBaseURL string
}

// Configured reports whether the Atlassian connector is on.
func (a Atlassian) Configured() bool { return a.ClientID != "" }

// ConnectorsConfigured reports whether any per-user OAuth connector is configured.
func (c *Config) ConnectorsConfigured() bool {
	return c.Atlassian.Configured() || len(c.OAuth2Connectors) > 0
}

// Configured reports whether any token-store backend is configured.
func (t TokenStore) Configured() bool { return t.TableEndpoint != "" || t.ConnectionString != "" }

// Problem is one missing or malformed setting.
type Problem struct {
	// Setting is the environment variable's name.
	Setting string
	// Reason says what is wrong and how to fix it.
	Reason string
}

// Error lists every problem found in one pass.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid settings (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  - %s: %s", p.Setting, p.Reason)
	}
	return b.String()
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s has the 8-4-4-4-12 hexadecimal form of Entra ids.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// Load reads and validates every setting through getenv (os.Getenv in production).
// On failure the error is an *Error naming every problem.
func Load(getenv func(string) string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{}

	c.InAzure = r.str("WEBSITE_INSTANCE_ID") != "" || r.str("WEBSITE_SITE_NAME") != ""
	r.inAzure = c.InAzure
	c.Port = r.port("FUNCTIONS_CUSTOMHANDLER_PORT", DefaultPort)

	c.AppID = r.guid("BOT_APP_ID")
	c.TenantID = r.guid("BOT_TENANT_ID")
	c.ManagedIdentityClientID = r.guid("BOT_MANAGED_IDENTITY_CLIENT_ID")
	c.ClientSecret = r.str("BOT_CLIENT_SECRET")
	allowAnon := r.boolean("BOT_ALLOW_ANONYMOUS")
	c.TargetedMessages = r.boolean("TEAMS_TARGETED_MESSAGES")
	c.OAuthConnection = r.strDefault("BOT_OAUTH_CONNECTION", DefaultOAuthConnection)
	c.PublicURL = r.httpsURL("BOT_PUBLIC_URL", "", false)

	c.AuthorityHost = r.httpsURL("ENTRA_AUTHORITY_HOST", DefaultAuthorityHost, true)
	c.OpenIDMetadataURL = r.httpsURL("BOTFRAMEWORK_OPENID_METADATA_URL", DefaultOpenIDMetadataURL, true)
	c.BotFrameworkScope = r.strDefault("BOTFRAMEWORK_SCOPE", DefaultBotFrameworkScope)
	c.TokenServiceURL = r.httpsURL("BOTFRAMEWORK_TOKEN_SERVICE_URL", DefaultTokenServiceURL, true)
	c.GraphURL = r.httpsURL("GRAPH_URL", DefaultGraphURL, true)

	c.TokenStore.TableEndpoint = r.httpsURL("TOKENSTORE_TABLE_ENDPOINT", "", false)
	c.TokenStore.ConnectionString = r.str("TOKENSTORE_CONNECTION_STRING")
	c.TokenStore.KeyVaultURL = r.httpsURL("TOKENSTORE_KEYVAULT_URL", "", false)
	c.TokenStore.KeyName = r.strDefault("TOKENSTORE_KEY_NAME", DefaultTokenStoreKeyName)
	c.TokenStore.DevKey = r.key32("TOKENSTORE_DEV_KEY")

	c.Atlassian = Atlassian{
		ClientID:          r.str("ATLASSIAN_CLIENT_ID"),
		ClientSecretName:  r.strDefault("ATLASSIAN_CLIENT_SECRET_NAME", DefaultAtlassianSecretName),
		ClientSecret:      r.str("ATLASSIAN_CLIENT_SECRET"),
		AuthURL:           r.httpsURL("ATLASSIAN_AUTH_URL", "", true),
		APIURL:            r.httpsURL("ATLASSIAN_API_URL", "", true),
		DataCenterBaseURL: r.httpsURL("ATLASSIAN_DC_BASE_URL", "", true),
	}
	c.OAuth2DevSecrets = r.stringMap("OAUTH2_DEV_SECRETS")

	c.LogLevel = r.level("LOG_LEVEL")
	c.GraphResource = r.httpsURL("GRAPH_RESOURCE", DefaultGraphURL, true)
	c.GraphScopes = strings.Fields(r.strDefault("GRAPH_SCOPES", "User.Read Mail.Read Files.Read.All"))
	c.EntraAPIs = r.entraAPIs("ENTRA_APIS")
	c.OAuth2Connectors = r.oauth2Connectors("OAUTH2_CONNECTORS", c.EntraAPIs)
	c.SAMLApps = r.samlApps("SAML_APPS", c.EntraAPIs, c.OAuth2Connectors)
	c.Assistant = r.assistant()
	c.Search = r.search()
	c.AdminRoles = strings.Fields(r.str("BOT_ADMIN_ROLES"))
	c.AdminGroups = strings.Fields(strings.ToLower(r.str("BOT_ADMIN_GROUPS")))
	for _, g := range c.AdminGroups {
		if !IsGUID(g) {
			r.fail("BOT_ADMIN_GROUPS", "group object ids (GUIDs) separated by spaces")
			break
		}
	}
	r.audit(c)
	if p, err := policy.Parse(r.str("CONNECTOR_POLICY")); err != nil {
		r.fail("CONNECTOR_POLICY", err.Error())
	} else {
		c.Policy = p
	}

	// Identity: either a real bot identity, or explicit local anonymous mode.
	switch {
	case c.AppID != "":
		if allowAnon {
			r.fail("BOT_ALLOW_ANONYMOUS", "anonymous mode cannot be combined with BOT_APP_ID; remove BOT_ALLOW_ANONYMOUS")
		}
		if c.TenantID == "" && !r.bad["BOT_TENANT_ID"] {
			r.fail("BOT_TENANT_ID", "required with BOT_APP_ID (the bot is single-tenant)")
		}
		if c.ManagedIdentityClientID == "" && c.ClientSecret == "" && !r.bad["BOT_MANAGED_IDENTITY_CLIENT_ID"] {
			r.fail("BOT_MANAGED_IDENTITY_CLIENT_ID", "required with BOT_APP_ID: the client id of the managed identity trusted by the app's federated credential")
		}
	case r.bad["BOT_APP_ID"]:
		// Already reported as malformed; never fall back to anonymous mode.
	case c.InAzure:
		r.fail("BOT_APP_ID", "required when running in Azure")
	case allowAnon:
		c.Anonymous = true
	default:
		r.fail("BOT_APP_ID", "required; for local development without a bot identity set BOT_ALLOW_ANONYMOUS=true instead")
	}
	if c.Search.Configured() && c.Anonymous {
		r.fail("AZURE_SEARCH_ENDPOINT", "needs signed-in Teams users (BOT_APP_ID and single sign-on): the index is queried with each user's own token")
	}
	if c.InAzure {
		if allowAnon {
			r.fail("BOT_ALLOW_ANONYMOUS", "refused when running in Azure: anonymous mode is for local development only")
		}
		if c.ClientSecret != "" {
			r.fail("BOT_CLIENT_SECRET", "refused when running in Azure: the bot authenticates with a federated credential (set BOT_MANAGED_IDENTITY_CLIENT_ID)")
		}
		if c.TokenStore.ConnectionString != "" {
			r.fail("TOKENSTORE_CONNECTION_STRING", "refused when running in Azure: use TOKENSTORE_TABLE_ENDPOINT with the managed identity")
		}
		if c.TokenStore.DevKey != "" {
			r.fail("TOKENSTORE_DEV_KEY", "refused when running in Azure: the key comes from Key Vault (TOKENSTORE_KEYVAULT_URL)")
		}
		if c.Atlassian.ClientSecret != "" {
			r.fail("ATLASSIAN_CLIENT_SECRET", "refused when running in Azure: the secret comes from Key Vault (ATLASSIAN_CLIENT_SECRET_NAME in TOKENSTORE_KEYVAULT_URL's vault)")
		}
		if len(c.OAuth2DevSecrets) > 0 {
			r.fail("OAUTH2_DEV_SECRETS", "refused when running in Azure: connector secrets come from Key Vault (TOKENSTORE_KEYVAULT_URL)")
		}
		if c.TokenStore.TableEndpoint == "" && !r.bad["TOKENSTORE_TABLE_ENDPOINT"] {
			r.fail("TOKENSTORE_TABLE_ENDPOINT", "required when running in Azure")
		}
		if c.TokenStore.KeyVaultURL == "" && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
			r.fail("TOKENSTORE_KEYVAULT_URL", "required when running in Azure")
		}
	}
	if c.TokenStore.TableEndpoint != "" && c.TokenStore.ConnectionString != "" {
		r.fail("TOKENSTORE_CONNECTION_STRING", "set either TOKENSTORE_TABLE_ENDPOINT or TOKENSTORE_CONNECTION_STRING, not both")
	}
	if c.TokenStore.Configured() && c.TokenStore.KeyVaultURL == "" && c.TokenStore.DevKey == "" &&
		!r.bad["TOKENSTORE_KEYVAULT_URL"] && !r.bad["TOKENSTORE_DEV_KEY"] {
		r.fail("TOKENSTORE_KEYVAULT_URL", "the token store needs a key: set TOKENSTORE_KEYVAULT_URL (or TOKENSTORE_DEV_KEY for local development)")
	}

	c.checkConnectors(&r)
	c.checkSAMLApps(&r)
	r.ldap(c)
	r.work(c)
	r.rateLimit(c)

	if len(r.problems) > 0 {
		sort.SliceStable(r.problems, func(i, j int) bool { return r.problems[i].Setting < r.problems[j].Setting })
		return nil, &Error{Problems: r.problems}
	}
	return c, nil
}

// reader collects problems while reading settings, so Load reports all of them at once.
type reader struct {
	getenv   func(string) string
	inAzure  bool // no plain http at all, not even to loopback
	problems []Problem
	bad      map[string]bool
}

func (r *reader) fail(name, reason string) {
	if r.bad == nil {
		r.bad = map[string]bool{}
	}
	r.bad[name] = true
	r.problems = append(r.problems, Problem{Setting: name, Reason: reason})
}

func (r *reader) str(name string) string { return strings.TrimSpace(r.getenv(name)) }

func (r *reader) strDefault(name, def string) string {
	if v := r.str(name); v != "" {
		return v
	}
	return def
}

func (r *reader) guid(name string) string {
	v := r.str(name)
	if v != "" && !IsGUID(v) {
		r.fail(name, "must be a GUID such as 00000000-0000-0000-0000-000000000000")
		return ""
	}
	return strings.ToLower(v)
}

func (r *reader) port(name string, def int) int {
	v := r.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		r.fail(name, "must be a TCP port number between 1 and 65535")
		return 0
	}
	return n
}

func (r *reader) boolean(name string) bool {
	v := r.str(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false")
		return false
	}
	return b
}

// httpsURL reads an absolute URL. Plain http is accepted only for loopback hosts, which is
// what local emulators use; everything reachable over a network must be https.
func (r *reader) httpsURL(name, def string, trimSlash bool) string {
	v := r.str(name)
	if v == "" {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		r.fail(name, "must be an absolute https URL")
		return ""
	}
	if u.Scheme == "http" && (r.inAzure || !isLoopback(u.Hostname())) {
		r.fail(name, "must use https (plain http is accepted only for 127.0.0.1/localhost, outside Azure)")
		return ""
	}
	if trimSlash {
		v = strings.TrimRight(v, "/")
	}
	return v
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

func (r *reader) key32(name string) string {
	v := r.str(name)
	if v == "" {
		return ""
	}
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(k) != 32 {
		r.fail(name, "must be the base64 encoding of exactly 32 random bytes (e.g. `openssl rand -base64 32`)")
		return ""
	}
	return v
}

var apiNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (r *reader) entraAPIs(name string) []EntraAPI {
	v := r.str(name)
	if v == "" {
		return nil
	}
	var apis []EntraAPI
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&apis); err != nil {
		r.fail(name, "must be a JSON array of {name, baseUrl, scopes[, display]}: "+err.Error())
		return nil
	}
	seen := map[string]bool{"graph": true, SearchResourceName: true}
	for i, a := range apis {
		u, err := url.Parse(a.BaseURL)
		switch {
		case !apiNameRE.MatchString(a.Name):
			r.fail(name, fmt.Sprintf("entry %d: name must be lower-case letters, digits and dashes", i))
		case seen[a.Name]:
			r.fail(name, fmt.Sprintf("entry %d: name %q is used twice (or is reserved)", i, a.Name))
		case err != nil || u.Scheme != "https" || u.Host == "":
			r.fail(name, fmt.Sprintf("entry %d (%s): baseUrl must be an absolute https URL", i, a.Name))
		case len(a.Scopes) == 0:
			r.fail(name, fmt.Sprintf("entry %d (%s): scopes must name at least one delegated scope of the API", i, a.Name))
		}
		seen[a.Name] = true
	}
	return apis
}

func (r *reader) level(name string) slog.Level {
	v := r.str(name)
	if v == "" {
		return slog.LevelInfo
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, "must be one of debug, info, warn, error")
		return slog.LevelInfo
	}
	return l
}

// checkConnectors validates what per-user OAuth connectors need: somewhere to keep tokens, a
// callback URL, and a source for each client secret.
func (c *Config) checkConnectors(r *reader) {
	if c.Atlassian.ClientID == "" {
		for _, name := range []string{"ATLASSIAN_CLIENT_SECRET", "ATLASSIAN_AUTH_URL", "ATLASSIAN_API_URL", "ATLASSIAN_DC_BASE_URL"} {
			if r.str(name) != "" && !r.bad[name] {
				r.fail(name, "set without ATLASSIAN_CLIENT_ID: the Atlassian connector is off; set ATLASSIAN_CLIENT_ID or remove this setting")
			}
		}
	}
	if !c.ConnectorsConfigured() {
		return
	}
	if c.PublicURL == "" && !r.bad["BOT_PUBLIC_URL"] {
		r.fail("BOT_PUBLIC_URL", "required with ATLASSIAN_CLIENT_ID or OAUTH2_CONNECTORS: the OAuth callback is {BOT_PUBLIC_URL}/api/oauth/callback")
	}
	if !c.TokenStore.Configured() && !r.bad["TOKENSTORE_TABLE_ENDPOINT"] && !r.bad["TOKENSTORE_CONNECTION_STRING"] {
		r.fail("TOKENSTORE_TABLE_ENDPOINT", "required with ATLASSIAN_CLIENT_ID or OAUTH2_CONNECTORS: users' tokens are kept in the token store")
	}
	vault := c.TokenStore.KeyVaultURL != ""
	if c.Atlassian.Configured() && !vault && c.Atlassian.ClientSecret == "" && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
		r.fail("ATLASSIAN_CLIENT_SECRET_NAME", "the Atlassian client secret is read from Key Vault: set TOKENSTORE_KEYVAULT_URL (or ATLASSIAN_CLIENT_SECRET for local development)")
	}
	for _, oc := range c.OAuth2Connectors {
		if _, dev := c.OAuth2DevSecrets[oc.ClientSecretName]; !vault && !dev && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
			r.fail("OAUTH2_CONNECTORS", fmt.Sprintf("connector %q: its client secret %q is read from Key Vault: set TOKENSTORE_KEYVAULT_URL (or OAUTH2_DEV_SECRETS for local development)", oc.Name, oc.ClientSecretName))
		}
	}
}

// ReservedConnectorNames are command words generic OAuth 2.0 connectors may not take.
var ReservedConnectorNames = []string{"atlassian", "jira", "confluence", "all", "graph", "microsoft"}

func (r *reader) oauth2Connectors(name string, apis []EntraAPI) []oauth2.Config {
	v := r.str(name)
	if v == "" {
		return nil
	}
	reserved := append([]string{}, ReservedConnectorNames...)
	for _, a := range apis {
		reserved = append(reserved, a.Name)
	}
	cs, err := oauth2.ParseConnectors(v, reserved...)
	if err != nil {
		r.fail(name, err.Error())
		return nil
	}
	return cs
}

func (r *reader) samlApps(name string, apis []EntraAPI, conns []oauth2.Config) []saml.Config {
	v := r.str(name)
	if v == "" {
		return nil
	}
	reserved := append([]string{}, ReservedConnectorNames...)
	for _, a := range apis {
		reserved = append(reserved, a.Name)
	}
	for _, c := range conns {
		reserved = append(reserved, c.Name)
	}
	apps, err := saml.ParseApps(v, reserved...)
	if err != nil {
		r.fail(name, err.Error())
		return nil
	}
	return apps
}

// checkSAMLApps validates what SAML applications need: the bot's identity for on-behalf-of,
// the token store for users' application tokens, and a source for each client secret.
func (c *Config) checkSAMLApps(r *reader) {
	if len(c.SAMLApps) == 0 {
		return
	}
	if c.Anonymous {
		r.fail("SAML_APPS", "needs the bot's identity (BOT_APP_ID): the SAML assertion is obtained on the user's behalf")
	}
	if !c.TokenStore.Configured() && !r.bad["TOKENSTORE_TABLE_ENDPOINT"] && !r.bad["TOKENSTORE_CONNECTION_STRING"] {
		r.fail("TOKENSTORE_TABLE_ENDPOINT", "required with SAML_APPS: users' application tokens are kept in the token store")
	}
	for _, a := range c.SAMLApps {
		if _, dev := c.OAuth2DevSecrets[a.ClientSecretName]; c.TokenStore.KeyVaultURL == "" && !dev && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
			r.fail("SAML_APPS", fmt.Sprintf("app %q: its client secret %q is read from Key Vault: set TOKENSTORE_KEYVAULT_URL (or OAUTH2_DEV_SECRETS for local development)", a.Name, a.ClientSecretName))
		}
	}
}

func (r *reader) stringMap(name string) map[string]string {
	v := r.str(name)
	if v == "" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		r.fail(name, "must be a JSON object of secret name to value, e.g. {\"github-client-secret\":\"…\"}")
		return nil
	}
	return m
}
