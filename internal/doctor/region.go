package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
)

// tokenService is the token-service URL the handler uses: its BOTFRAMEWORK_TOKEN_SERVICE_URL,
// or the default when the settings do not name one.
func (s *Snapshot) tokenService() string {
	if v := strings.TrimSpace(s.Settings["BOTFRAMEWORK_TOKEN_SERVICE_URL"]); v != "" {
		return v
	}
	return config.DefaultTokenServiceURL
}

// redirectURI is the OAuth redirect URI of the token service the handler uses: the one the
// app registration must list for the Bot Service to complete sign-ins there.
func (s *Snapshot) redirectURI() string {
	r, _ := botframework.RegionOf(s.tokenService())
	if r.RedirectURI == "" {
		return BotFrameworkRedirectURI
	}
	return r.RedirectURI
}

// checkTokenRegion keeps the handler's token service, the app registration's redirect URIs and
// the Azure Bot's location in one data-residency region (Learn ref-oauth-redirect-urls,
// bot-builder-concept-regionalization): a bot kept in Europe whose handler calls the global
// token service, or whose app registration only lets another region's service finish sign-in,
// loses its users' sign-ins.
func checkTokenRegion(s *Snapshot) Result {
	if s.Settings == nil {
		return skip("no handler settings to read BOTFRAMEWORK_TOKEN_SERVICE_URL from")
	}
	url := s.tokenService()
	region, known := botframework.RegionOf(url)
	if !known {
		if h := strings.ToLower(hostOf(url)); strings.Contains(h, "botframework") {
			return fail(s.setTokenServiceFix("https://token.botframework.com"),
				"BOTFRAMEWORK_TOKEN_SERVICE_URL %s is not a documented token service (token., europe.token., unitedstates.token., india.token.botframework.com …)", url)
		}
		return warn("", "BOTFRAMEWORK_TOKEN_SERVICE_URL %s is not a documented token service; its region is not checked", url)
	}
	var problems []string
	fix := ""
	if s.App != nil {
		var others []string
		for _, u := range s.App.Web.RedirectURIs {
			if u != region.RedirectURI && botframework.IsTokenServiceRedirect(u) {
				others = append(others, u)
			}
		}
		if !slices.Contains(s.App.Web.RedirectURIs, region.RedirectURI) {
			problems = append(problems, fmt.Sprintf("the app registration's redirect URIs (%s) lack %s", listOrNone(others), region.RedirectURI))
			fix = s.fixPatch(map[string]any{"web": s.plan().wholeWeb()})
		}
	}
	if s.Bot != nil && len(region.BotLocations) > 0 && !slices.ContainsFunc(region.BotLocations, func(l string) bool { return strings.EqualFold(l, s.Bot.Location) }) {
		problems = append(problems, fmt.Sprintf("the Azure Bot is in %q, the %s token service serves %s", orPlaceholder(s.Bot.Location, "no location"), region.Name, strings.Join(region.BotLocations, ", ")))
		if want := tokenServiceForLocation(s.Bot.Location); want != "" && fix == "" {
			fix = s.setTokenServiceFix(want)
		}
	}
	if len(problems) > 0 {
		return fail(fix, "token service %s (%s): %s", url, region.Name, strings.Join(problems, "; "))
	}
	return pass("%s (%s), redirect URI %s", url, region.Name, region.RedirectURI)
}

// tokenServiceForLocation is the documented token service of an Azure Bot location, or "".
func tokenServiceForLocation(location string) string {
	for _, u := range []string{"https://token.botframework.com", "https://europe.token.botframework.com", "https://india.token.botframework.com"} {
		r, _ := botframework.RegionOf(u)
		if slices.ContainsFunc(r.BotLocations, func(l string) bool { return strings.EqualFold(l, location) }) {
			return u
		}
	}
	return ""
}

func (s *Snapshot) setTokenServiceFix(url string) string {
	region := "global"
	if r, ok := botframework.RegionOf(url); ok {
		region = r.Name
	}
	return "az functionapp config appsettings set --resource-group " + s.resourceGroup() + " --name " + s.functionAppName() +
		" --settings BOTFRAMEWORK_TOKEN_SERVICE_URL=" + url + "   # or: azd env set BOT_TOKEN_REGION " + region + " && azd provision"
}
