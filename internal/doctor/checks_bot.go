package doctor

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

func (s *Snapshot) botCreateFix() string {
	endpoint := "https://" + s.functionAppHost() + "/api/messages"
	if s.functionAppHost() == "" {
		endpoint = "https://<function-app-host>/api/messages"
	}
	return fmt.Sprintf("az bot create --resource-group %s --name %s --app-type SingleTenant --appid %s --tenant-id %s --endpoint %s   # or: azd provision",
		s.resourceGroup(), s.botName(), orPlaceholder(s.appID(), "<app-id>"), orPlaceholder(s.tenantID(), "<tenant-id>"), endpoint)
}

func orPlaceholder(v, p string) string {
	if v == "" {
		return p
	}
	return v
}

func checkBotRegistered(s *Snapshot) Result {
	if r, ok := s.need("bot", s.Bot != nil); !ok {
		return r
	}
	msa := strings.ToLower(s.Bot.Properties.MsaAppID)
	if msa == "" {
		return fail(s.botCreateFix(), "bot %s has no Microsoft App ID", s.Bot.Name)
	}
	if s.App != nil && !strings.EqualFold(s.App.AppID, msa) {
		return fail("az bot delete --resource-group "+s.resourceGroup()+" --name "+s.botName()+" && "+s.botCreateFix(),
			"bot %s uses app %s but the app registration checked is %s (an Azure Bot's app id cannot be changed: recreate it)", s.Bot.Name, msa, s.App.AppID)
	}
	return pass("bot %s uses app %s", s.Bot.Name, msa)
}

func checkBotAppType(s *Snapshot) Result {
	if r, ok := s.need("bot", s.Bot != nil); !ok {
		return r
	}
	p := s.Bot.Properties
	if !strings.EqualFold(p.MsaAppType, "SingleTenant") {
		return fail("az bot delete --resource-group "+s.resourceGroup()+" --name "+s.botName()+" && "+s.botCreateFix(),
			"bot app type is %q, not SingleTenant: the secret-free OAuth connection (AAD v2 with Federated Credentials) supports single-tenant apps only; the app type cannot be changed, recreate the bot", orPlaceholder(p.MsaAppType, "unset"))
	}
	if p.MsaAppTenantID == "" {
		return fail(s.botCreateFix(), "single-tenant bot has no msaAppTenantId")
	}
	return pass("single tenant %s", strings.ToLower(p.MsaAppTenantID))
}

func checkTeamsChannel(s *Snapshot) Result {
	if r, ok := s.need("bot", s.Bot != nil); !ok {
		return r
	}
	fix := "az bot msteams create --resource-group " + s.resourceGroup() + " --name " + s.botName()
	enabled := false
	switch {
	case s.TeamsChannel != nil:
		enabled = *s.TeamsChannel
	default:
		has := func(list []string) bool {
			return slices.ContainsFunc(list, func(c string) bool { return strings.EqualFold(c, "msteams") })
		}
		enabled = has(s.Bot.Properties.EnabledChannels) || has(s.Bot.Properties.ConfiguredChannel)
	}
	if !enabled {
		return fail(fix, "the bot has no enabled Microsoft Teams channel: Teams cannot reach it")
	}
	return pass("msteams")
}

func checkEndpointSet(s *Snapshot) Result {
	if r, ok := s.need("bot", s.Bot != nil); !ok {
		return r
	}
	host := s.functionAppHost()
	if host == "" {
		host = "<function-app-host>"
	}
	fix := "az bot update --resource-group " + s.resourceGroup() + " --name " + s.botName() + " --endpoint https://" + host + "/api/messages"
	ep := strings.TrimSpace(s.Bot.Properties.Endpoint)
	if ep == "" {
		return fail(fix, "the bot has no messaging endpoint")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fail(fix, "messaging endpoint %q is not an https URL", ep)
	}
	if strings.TrimRight(u.Path, "/") != "/api/messages" {
		return fail(fix, "messaging endpoint %q does not end in /api/messages, the handler's route", ep)
	}
	return pass("%s", ep)
}

func checkEndpointHost(s *Snapshot) Result {
	if r, ok := s.need("bot", s.Bot != nil); !ok {
		return r
	}
	fa := s.FunctionAppHost
	if fa == "" {
		fa = hostOf(s.Settings["BOT_PUBLIC_URL"])
	}
	if fa == "" {
		return skip("the Function App's host is unknown (no ARM site, no BOT_PUBLIC_URL)")
	}
	got := s.endpointHost()
	if got != strings.ToLower(fa) {
		return fail("az bot update --resource-group "+s.resourceGroup()+" --name "+s.botName()+" --endpoint https://"+fa+"/api/messages",
			"messaging endpoint host %q is not the Function App's host %q", got, fa)
	}
	return pass("%s", got)
}

func checkEndpointAuth(s *Snapshot) Result {
	if r, ok := s.need("probe", s.Probe != nil); !ok {
		return r
	}
	p := s.Probe
	app := s.functionAppName()
	switch {
	case p.Err != "":
		return fail("az functionapp show --resource-group "+s.resourceGroup()+" --name "+app+" --query state   # then: azd deploy",
			"%s is unreachable: %s", p.URL, p.Err)
	case p.Status == 401:
		return pass("%s answered 401 to a POST without a token", p.URL)
	case p.Status >= 200 && p.Status < 300:
		return fail("az functionapp config appsettings delete --resource-group "+s.resourceGroup()+" --name "+app+" --setting-names BOT_ALLOW_ANONYMOUS\n"+
			"az functionapp config appsettings set --resource-group "+s.resourceGroup()+" --name "+app+" --settings BOT_APP_ID="+orPlaceholder(s.appID(), "<app-id>"),
			"anonymous mode in production: %s accepted a POST without a token (HTTP %d); anyone can post as anyone", p.URL, p.Status)
	case p.Status == 400 || p.Status == 415:
		return fail("az functionapp config appsettings list --resource-group "+s.resourceGroup()+" --name "+app+" --query \"[?name=='BOT_APP_ID' || name=='BOT_ALLOW_ANONYMOUS']\"",
			"%s read a POST without a token far enough to judge its body (HTTP %d) instead of refusing it with 401: anonymous mode, or something in front of the handler", p.URL, p.Status)
	default:
		return fail("azd deploy   # the handler is not answering on /api/messages",
			"%s answered HTTP %d to a POST without a token (expected 401)", p.URL, p.Status)
	}
}
