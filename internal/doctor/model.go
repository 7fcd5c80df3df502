package doctor

import (
	"net/url"
	"strings"
)

// Well-known identifiers the checks compare against.
const (
	// TeamsDesktopClientID is the Teams desktop and mobile client, which must be pre-authorized
	// for the bot's access_as_user scope so Teams can get an SSO token silently.
	TeamsDesktopClientID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
	// TeamsWebClientID is the Teams web client.
	TeamsWebClientID = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
	// BotFrameworkRedirectURI is where the Bot Service token store completes OAuth sign-ins.
	BotFrameworkRedirectURI = "https://token.botframework.com/.auth/web/redirect"
	// SSOScope is the delegated scope Teams asks for.
	SSOScope = "access_as_user"
	// FederatedAudience is the audience of every federated identity credential here.
	FederatedAudience = "api://AzureADTokenExchange"
	// FICProviderID is the serviceProviderId of the "AAD v2 with Federated Credentials"
	// OAuth connection kind.
	FICProviderID = "c00b44ab-5e16-c44c-af26-2fd5bc55eb18"
	// FICProviderName is that kind's display name.
	FICProviderName = "AAD v2 with Federated Credentials"
	// TokenStoreAppSegment is the Bot Service Token Store's first-party application id
	// (5b404cf4-a79d-4cfe-b866-24bf8e1a4921) encoded as a federated-credential subject segment.
	TokenStoreAppSegment = "9ExAW52n_ky4ZiS_jhpJIQ"
	// GraphAppID is Microsoft Graph's application id (its service principal is the resource
	// of delegated permission grants).
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// KeyVaultSecretsUserRole and KeyVaultSecretsOfficerRole are the built-in role definitions
	// that let a principal read secrets in an RBAC-mode vault.
	KeyVaultSecretsUserRole    = "4633458b-17de-408a-b874-0445c86b69e6"
	KeyVaultSecretsOfficerRole = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
)

// Public-cloud endpoints; sovereign clouds and tests override them.
const (
	DefaultGraphURL = "https://graph.microsoft.com"
	DefaultARMURL   = "https://management.azure.com"
)

// DefaultOBOScopes are the Microsoft Graph delegated permissions the connectors request
// through On-Behalf-Of.
var DefaultOBOScopes = []string{"User.Read", "Mail.Read", "Files.Read.All"}

// App is the part of a Microsoft Graph application object (`az ad app show`) the checks read.
// Collections keep every documented field so a PATCH built from them loses nothing.
type App struct {
	ID                           string                `json:"id,omitempty"`
	AppID                        string                `json:"appId"`
	DisplayName                  string                `json:"displayName,omitempty"`
	SignInAudience               string                `json:"signInAudience,omitempty"`
	IdentifierURIs               []string              `json:"identifierUris"`
	API                          APIApplication        `json:"api"`
	Web                          WebApplication        `json:"web"`
	PasswordCredentials          []PasswordCredential  `json:"passwordCredentials"`
	KeyCredentials               []KeyCredential       `json:"keyCredentials"`
	FederatedIdentityCredentials []FederatedCredential `json:"federatedIdentityCredentials,omitempty"`
}

// APIApplication is application.api, every property Graph v1.0 defines, so a repair can send
// it back whole.
type APIApplication struct {
	RequestedAccessTokenVersion *int                       `json:"requestedAccessTokenVersion"`
	OAuth2PermissionScopes      []PermissionScope          `json:"oauth2PermissionScopes"`
	PreAuthorizedApplications   []PreAuthorizedApplication `json:"preAuthorizedApplications"`
	KnownClientApplications     []string                   `json:"knownClientApplications,omitempty"`
	AcceptMappedClaims          *bool                      `json:"acceptMappedClaims,omitempty"`
}

// PermissionScope is a delegated permission the app exposes.
type PermissionScope struct {
	ID                      string `json:"id"`
	Value                   string `json:"value"`
	Type                    string `json:"type,omitempty"`
	IsEnabled               bool   `json:"isEnabled"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName,omitempty"`
	AdminConsentDescription string `json:"adminConsentDescription,omitempty"`
	UserConsentDisplayName  string `json:"userConsentDisplayName,omitempty"`
	UserConsentDescription  string `json:"userConsentDescription,omitempty"`
	Origin                  string `json:"origin,omitempty"`
}

// PreAuthorizedApplication is a client allowed to get tokens for the listed scopes without consent.
type PreAuthorizedApplication struct {
	AppID                  string   `json:"appId"`
	DelegatedPermissionIDs []string `json:"delegatedPermissionIds"`
}

// WebApplication is application.web; the writable properties a repair sends back with the
// redirect URIs (redirectUriSettings mirrors redirectUris and is left to Graph).
type WebApplication struct {
	RedirectURIs          []string       `json:"redirectUris"`
	HomePageURL           *string        `json:"homePageUrl,omitempty"`
	LogoutURL             *string        `json:"logoutUrl,omitempty"`
	ImplicitGrantSettings map[string]any `json:"implicitGrantSettings,omitempty"`
}

// PasswordCredential is a client secret (the value is never returned by Graph).
type PasswordCredential struct {
	KeyID       string `json:"keyId"`
	DisplayName string `json:"displayName,omitempty"`
	EndDateTime string `json:"endDateTime,omitempty"`
}

// KeyCredential is a certificate credential.
type KeyCredential struct {
	KeyID       string `json:"keyId"`
	DisplayName string `json:"displayName,omitempty"`
	EndDateTime string `json:"endDateTime,omitempty"`
}

// FederatedCredential is a federated identity credential on the app registration.
type FederatedCredential struct {
	ID        string   `json:"id,omitempty"`
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

// ServicePrincipal is the app's enterprise application in the tenant.
type ServicePrincipal struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
}

// PermissionGrant is an oAuth2PermissionGrant: delegated permissions granted to a client,
// for every user (consentType AllPrincipals, admin consent) or for one (Principal, the user
// named by PrincipalID consented).
type PermissionGrant struct {
	ClientID    string `json:"clientId"`
	ConsentType string `json:"consentType"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	Scope       string `json:"scope"`
}

// Bot is an Azure Bot resource (`az bot show`).
type Bot struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Location is "global" or, for a regional bot, the region its data stays in.
	Location   string        `json:"location"`
	Properties BotProperties `json:"properties"`
}

// BotProperties are the bot's settings.
type BotProperties struct {
	DisplayName       string   `json:"displayName"`
	Endpoint          string   `json:"endpoint"`
	MsaAppID          string   `json:"msaAppId"`
	MsaAppTenantID    string   `json:"msaAppTenantId"`
	MsaAppType        string   `json:"msaAppType"`
	EnabledChannels   []string `json:"enabledChannels"`
	ConfiguredChannel []string `json:"configuredChannels"`
}

// Connection is an Azure Bot OAuth connection setting (`az bot authsetting show`).
type Connection struct {
	ID         string               `json:"id"`
	Name       string               `json:"name"`
	Properties ConnectionProperties `json:"properties"`
}

// ConnectionProperties are the connection's settings.
type ConnectionProperties struct {
	ServiceProviderID          string           `json:"serviceProviderId"`
	ServiceProviderDisplayName string           `json:"serviceProviderDisplayName"`
	ClientID                   string           `json:"clientId"`
	Scopes                     string           `json:"scopes"`
	Parameters                 []ConnectionPara `json:"parameters"`
}

// ConnectionPara is one key/value parameter of an OAuth connection.
type ConnectionPara struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param returns a connection parameter; keys compare case-insensitively because the two AAD v2
// providers spell them differently (TokenExchangeUrl vs tokenExchangeUrl).
func (c *Connection) Param(key string) (string, bool) {
	for _, p := range c.Properties.Parameters {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// ShortName is the connection's own name (ARM names it "bot/connection").
func (c *Connection) ShortName() string {
	if i := strings.LastIndex(c.Name, "/"); i >= 0 {
		return c.Name[i+1:]
	}
	return c.Name
}

// Manifest is the part of a Teams app manifest the checks read.
type Manifest struct {
	Bots []ManifestBot `json:"bots"`
	// ComposeExtensions are the message extensions; each names the bot that answers it.
	ComposeExtensions []ManifestBot `json:"composeExtensions"`
	// CopilotAgents lists the bot as a custom engine agent in Microsoft 365 Copilot.
	CopilotAgents *struct {
		CustomEngineAgents []struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		} `json:"customEngineAgents"`
	} `json:"copilotAgents"`
	WebApplicationInfo *WebApplicationInfo `json:"webApplicationInfo"`
	ValidDomains       []string            `json:"validDomains"`
}

// ManifestBot is one entry of manifest.bots.
type ManifestBot struct {
	BotID string `json:"botId"`
}

// WebApplicationInfo tells Teams which app registration and resource to get SSO tokens for.
type WebApplicationInfo struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
}

// ManagedIdentity is the Function App's user-assigned managed identity.
type ManagedIdentity struct {
	ResourceID  string
	PrincipalID string
	ClientID    string
}

// RoleAssignment is an Azure RBAC role assignment.
type RoleAssignment struct {
	Scope            string
	RoleDefinitionID string
	PrincipalID      string
}

// ProbeResult is what the messaging endpoint answered to an unauthenticated POST.
type ProbeResult struct {
	URL    string
	Status int
	Err    string
}

// Snapshot is the normalized view of a deployment that every check reads. Offline files
// and live Graph/ARM reads both produce one, so the checks are shared. A nil field (or a
// false *Known flag) means that source was not available; Absent says why.
type Snapshot struct {
	// Mode is "offline" or "live".
	Mode string

	App                  *App
	ServicePrincipal     *ServicePrincipal
	FederatedCredentials []FederatedCredential
	FICsKnown            bool
	Grants               []PermissionGrant
	GrantsKnown          bool
	// GraphSPID is Microsoft Graph's service principal object id in the tenant.
	GraphSPID string
	// SAML are the SAML applications of SAML_APPS as Graph shows them (saml.go).
	SAML      []SAMLEnterpriseApp
	SAMLKnown bool

	Bot          *Bot
	TeamsChannel *bool
	Connection   *Connection
	// ConnectionName is the OAuth connection the handler uses (BOT_OAUTH_CONNECTION).
	ConnectionName string

	Manifest *Manifest

	Settings map[string]string
	// SettingsInAzure says the settings are a deployed Function App's (so dev-only ones are refused).
	SettingsInAzure bool
	// FunctionApp is the Function App's name and default host name, when known.
	FunctionApp     string
	FunctionAppHost string
	Identity        *ManagedIdentity

	RoleAssignments []RoleAssignment
	RolesKnown      bool

	// Model is the assistant's model account (live mode; assistant.go).
	Model *ModelAccount

	Probe *ProbeResult

	// OBOScopes are the Graph delegated permissions the connectors need.
	OBOScopes []string
	// Subscription is the Azure subscription id, when known (live mode).
	Subscription string

	// GraphURL is the Graph base URL used in fix requests.
	GraphURL string
	// ARMURL is the Resource Manager base URL used in fix requests.
	ARMURL string

	// Absent says, per source, why it was not read ("app", "bot", "connection", "manifest",
	// "settings", "fics", "grants", "roles", "identity", "probe", "sp", "channel"): its checks skip.
	Absent map[string]string
	// NotFound says, per source, that it was looked for and does not exist: its checks fail.
	NotFound map[string]string
}

func (s *Snapshot) absent(source string) string {
	if r, ok := s.Absent[source]; ok && r != "" {
		return r
	}
	return "not available"
}

// appID is the bot's application id as the deployment knows it, preferring the app registration.
func (s *Snapshot) appID() string {
	switch {
	case s.App != nil && s.App.AppID != "":
		return strings.ToLower(s.App.AppID)
	case s.Bot != nil && s.Bot.Properties.MsaAppID != "":
		return strings.ToLower(s.Bot.Properties.MsaAppID)
	case s.Settings["BOT_APP_ID"] != "":
		return strings.ToLower(s.Settings["BOT_APP_ID"])
	case s.Manifest != nil && len(s.Manifest.Bots) > 0:
		// Only the manifest was given: check it against itself.
		return strings.ToLower(s.Manifest.Bots[0].BotID)
	}
	return ""
}

// appIDKnown reports whether the app id comes from somewhere other than the manifest.
func (s *Snapshot) appIDKnown() bool {
	return (s.App != nil && s.App.AppID != "") || (s.Bot != nil && s.Bot.Properties.MsaAppID != "") || s.Settings["BOT_APP_ID"] != ""
}

// tenantID is the bot's tenant, from the bot resource, the settings or the connection.
func (s *Snapshot) tenantID() string {
	if s.Bot != nil && s.Bot.Properties.MsaAppTenantID != "" {
		return strings.ToLower(s.Bot.Properties.MsaAppTenantID)
	}
	if t := s.Settings["BOT_TENANT_ID"]; t != "" {
		return strings.ToLower(t)
	}
	if s.Connection != nil {
		if t, ok := s.Connection.Param("TenantId"); ok {
			return strings.ToLower(t)
		}
	}
	return ""
}

// identifierURI is the identifier URI Teams SSO requires.
func (s *Snapshot) identifierURI() string { return "api://botid-" + s.appID() }

// endpointHost is the messaging endpoint's host name.
func (s *Snapshot) endpointHost() string {
	if s.Bot == nil {
		return ""
	}
	return hostOf(s.Bot.Properties.Endpoint)
}

// functionAppHost is the Function App's public host: ARM's default host name, else the host of
// BOT_PUBLIC_URL, else the messaging endpoint's.
func (s *Snapshot) functionAppHost() string {
	if s.FunctionAppHost != "" {
		return strings.ToLower(s.FunctionAppHost)
	}
	if h := hostOf(s.Settings["BOT_PUBLIC_URL"]); h != "" {
		return h
	}
	return s.endpointHost()
}

func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// resourceGroup and botName come from the bot's ARM id, for the az commands in fixes.
func (s *Snapshot) resourceGroup() string {
	if s.Bot != nil {
		if rg := armSegment(s.Bot.ID, "resourceGroups"); rg != "" {
			return rg
		}
	}
	return "<resource-group>"
}

func (s *Snapshot) botName() string {
	if s.Bot != nil && s.Bot.Name != "" {
		return s.Bot.Name
	}
	return "<bot-name>"
}

func (s *Snapshot) functionAppName() string {
	if s.FunctionApp != "" {
		return s.FunctionApp
	}
	if h := s.functionAppHost(); strings.HasSuffix(h, ".azurewebsites.net") {
		return strings.SplitN(h, ".", 2)[0]
	}
	return "<function-app>"
}

// armSegment returns the value after a named segment of an ARM resource id.
func armSegment(id, name string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], name) {
			return parts[i+1]
		}
	}
	return ""
}
