package botframework

import (
	"net/url"
	"strings"
)

// TokenRegion is one deployment of the Bot Service token service. The bot calls its OAuth URL
// (BOTFRAMEWORK_TOKEN_SERVICE_URL); identity providers (the app registration) must list its
// redirect URI; an Azure Bot whose data stays in a region must use that region's service.
//
// Source: Learn "OAuth URL support in Azure AI Bot Service" (azure/bot-service/ref-oauth-redirect-urls)
// for the URLs; Learn "Regionalization in Azure AI Bot Service" (bot-builder-concept-regionalization)
// for regional Azure Bot resources (Europe and India). Which Azure Bot location each regional
// service pairs with (westeurope, centralindia) is unverified.
type TokenRegion struct {
	// Name is the data-residency name: "global", "europe", "unitedstates", "india", "usgov", "china".
	Name string
	// OAuthURL is the service's base URL.
	OAuthURL string
	// RedirectURI is the OAuth redirect URI identity providers must allow.
	RedirectURI string
	// BotLocations are the Azure Bot resource locations this service serves; empty when
	// unchecked.
	BotLocations []string
}

// tokenRegions are the documented token services; hosts lists every host name that reaches one.
var tokenRegions = []struct {
	hosts  []string
	region TokenRegion
}{
	{[]string{"token.botframework.com", "api.botframework.com"}, TokenRegion{Name: "global", OAuthURL: "https://token.botframework.com", BotLocations: []string{"global"}}},
	{[]string{"europe.token.botframework.com"}, TokenRegion{Name: "europe", OAuthURL: "https://europe.token.botframework.com", BotLocations: []string{"westeurope"}}},
	{[]string{"unitedstates.token.botframework.com"}, TokenRegion{Name: "unitedstates", OAuthURL: "https://unitedstates.token.botframework.com"}},
	{[]string{"india.token.botframework.com"}, TokenRegion{Name: "india", OAuthURL: "https://india.token.botframework.com", BotLocations: []string{"centralindia"}}},
	{[]string{"token.botframework.azure.us"}, TokenRegion{Name: "usgov", OAuthURL: "https://token.botframework.azure.us"}},
	{[]string{"token.botframework.azure.cn"}, TokenRegion{Name: "china", OAuthURL: "https://token.botframework.azure.cn"}},
}

// RegionOf returns the documented token service a token-service URL reaches. For any other URL
// (a private deployment, a test stand-in) known is false and the region carries only the URL
// and its redirect URI ({origin}/.auth/web/redirect, the pattern every documented one follows).
func RegionOf(tokenServiceURL string) (r TokenRegion, known bool) {
	u, err := url.Parse(strings.TrimSpace(tokenServiceURL))
	if err != nil || u.Host == "" {
		return TokenRegion{}, false
	}
	host := strings.ToLower(u.Hostname())
	for _, tr := range tokenRegions {
		for _, h := range tr.hosts {
			if h == host {
				r = tr.region
				r.RedirectURI = r.OAuthURL + "/.auth/web/redirect"
				return r, true
			}
		}
	}
	origin := u.Scheme + "://" + u.Host
	return TokenRegion{Name: "custom", OAuthURL: origin, RedirectURI: origin + "/.auth/web/redirect"}, false
}

// IsTokenServiceRedirect reports whether uri is the redirect URI of a documented token service.
func IsTokenServiceRedirect(uri string) bool {
	for _, tr := range tokenRegions {
		if strings.EqualFold(uri, tr.region.OAuthURL+"/.auth/web/redirect") {
			return true
		}
	}
	return false
}
