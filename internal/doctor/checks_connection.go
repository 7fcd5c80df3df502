package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onbehalf/onbehalf/internal/config"
)

// BotServiceAPIVersion is the Microsoft.BotService api-version the doctor reads and writes.
const BotServiceAPIVersion = "2022-09-15"

// expectedConnectionName is the connection the handler uses (BOT_OAUTH_CONNECTION, default sso).
func (s *Snapshot) expectedConnectionName() string {
	if s.ConnectionName != "" {
		return s.ConnectionName
	}
	if v := strings.TrimSpace(s.Settings["BOT_OAUTH_CONNECTION"]); v != "" {
		return v
	}
	return config.DefaultOAuthConnection
}

// connectionFix is one ARM PUT that writes the whole correct connection.
func (s *Snapshot) connectionFix() string {
	appID := orPlaceholder(s.appID(), "<app-id>")
	uid := s.uniqueIdentifier()
	if uid == "" {
		uid = "<unique-identifier>"
	}
	body := map[string]any{
		"location": "global",
		"properties": map[string]any{
			"serviceProviderId":          FICProviderID,
			"serviceProviderDisplayName": FICProviderName,
			"scopes":                     "api://botid-" + appID + "/.default",
			"parameters": []map[string]string{
				{"key": "ClientId", "value": appID},
				{"key": "TenantId", "value": orPlaceholder(s.tenantID(), "<tenant-id>")},
				{"key": "TokenExchangeUrl", "value": "api://botid-" + appID},
				{"key": "UniqueIdentifier", "value": uid},
			},
		},
	}
	id := "/subscriptions/<subscription>/resourceGroups/" + s.resourceGroup() + "/providers/Microsoft.BotService/botServices/" + s.botName()
	if s.Bot != nil && s.Bot.ID != "" {
		id = s.Bot.ID
	}
	url := strings.TrimRight(s.ARMURL, "/") + id + "/connections/" + s.expectedConnectionName() + "?api-version=" + BotServiceAPIVersion
	return "az rest --method put --url " + quote(url) + " --body " + quote(compactJSON(body))
}

func checkConnectionFound(s *Snapshot) Result {
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	want := s.expectedConnectionName()
	if got := s.Connection.ShortName(); !strings.EqualFold(got, want) {
		return fail(s.connectionFix(), "the handler uses OAuth connection %q (BOT_OAUTH_CONNECTION) but the connection given is %q", want, got)
	}
	return pass("%q", want)
}

func checkConnectionProvider(s *Snapshot) Result {
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	p := s.Connection.Properties
	if !strings.EqualFold(p.ServiceProviderID, FICProviderID) {
		return fail(s.connectionFix(), "provider is %q (%s), not %s (%s): only that kind works without a client secret and with single-tenant apps",
			orPlaceholder(p.ServiceProviderDisplayName, "unknown"), orPlaceholder(p.ServiceProviderID, "no id"), FICProviderName, FICProviderID)
	}
	return pass("%s", FICProviderName)
}

func checkConnectionClient(s *Snapshot) Result {
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	var problems []string
	clientID, _ := s.Connection.Param("ClientId")
	if clientID == "" {
		clientID = s.Connection.Properties.ClientID
	}
	if app := s.appID(); app != "" && !strings.EqualFold(clientID, app) {
		problems = append(problems, fmt.Sprintf("ClientId is %q, not the bot's app id %s", clientID, app))
	}
	tenant, _ := s.Connection.Param("TenantId")
	if want := s.tenantID(); want != "" && !strings.EqualFold(tenant, want) {
		problems = append(problems, fmt.Sprintf("TenantId is %q, not the bot's tenant %s", tenant, want))
	}
	if len(problems) > 0 {
		return fail(s.connectionFix(), "%s", strings.Join(problems, "; "))
	}
	return pass("client %s in tenant %s", strings.ToLower(clientID), strings.ToLower(tenant))
}

func checkTokenExchangeURL(s *Snapshot) Result {
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	got, _ := s.Connection.Param("TokenExchangeUrl")
	want := s.identifierURI()
	if !strings.EqualFold(strings.TrimRight(got, "/"), want) {
		return fail(s.connectionFix(), "token exchange URL is %q, not the identifier URI %s: Bot Service will refuse Teams' SSO token", got, want)
	}
	if s.App != nil && !containsFold(s.App.IdentifierURIs, got) {
		return fail(s.fixPatch(map[string]any{"identifierUris": append(slices.Clone(s.App.IdentifierURIs), want)}),
			"token exchange URL %s is not among the app's identifier URIs", got)
	}
	if s.Manifest != nil && s.Manifest.WebApplicationInfo != nil && !strings.EqualFold(s.Manifest.WebApplicationInfo.Resource, got) {
		return fail(s.manifestFix("webApplicationInfo", map[string]string{"id": s.appID(), "resource": want}),
			"token exchange URL %s differs from the manifest's webApplicationInfo.resource %q", got, s.Manifest.WebApplicationInfo.Resource)
	}
	return pass("%s", got)
}

func checkConnectionScope(s *Snapshot) Result {
	if r, ok := s.need("connection", s.Connection != nil); !ok {
		return r
	}
	base := s.identifierURI()
	scopes := strings.Fields(strings.ReplaceAll(s.Connection.Properties.Scopes, ",", " "))
	for _, sc := range scopes {
		if strings.EqualFold(sc, base+"/.default") {
			return pass("%s", sc)
		}
		if strings.EqualFold(sc, base+"/"+SSOScope) {
			return warn(s.connectionFix(), "scopes are %q: this works only with admin consent; signing in through the card consents to %s alone, so a user of a tenant without admin consent is asked again and again — use %s/.default, whose consent covers every permission the app registration lists",
				s.Connection.Properties.Scopes, SSOScope, base)
		}
	}
	return fail(s.connectionFix(), "scopes are %q, not %s/.default: the token the store returns must be for the bot's own API to be usable as the OBO assertion",
		s.Connection.Properties.Scopes, base)
}
