package deploycheck

import "strings"

// flexDeprecatedSiteProperties are the site properties Flex Consumption lists as deprecated
// ("Flex Consumption plan deprecations", learn.microsoft.com azure-functions
// functions-app-settings): some regions refuse a Flex site that sets them. Paths are relative
// to the site's properties; both siteConfig and top-level spellings appear in templates.
var flexDeprecatedSiteProperties = []string{
	"siteConfig.ftpsState", "ftpsState",
	"siteConfig.use32BitWorkerProcess", "use32BitWorkerProcess",
	"siteConfig.alwaysOn", "alwaysOn",
	"siteConfig.windowsFxVersion", "windowsFxVersion",
	"siteConfig.linuxFxVersion", "linuxFxVersion",
	"siteConfig.javaVersion", "javaVersion",
	"siteConfig.powerShellVersion", "powerShellVersion",
	"siteConfig.netFrameworkVersion", "netFrameworkVersion",
	"siteConfig.preWarmedInstanceCount", "siteConfig.functionAppScaleLimit",
	"containerSize", "isXenon",
}

// FlexDeprecatedAppSettings are the app settings the same list replaces with functionAppConfig
// or the platform sets itself (FUNCTIONS_WORKER_RUNTIME is checked as ForbiddenAppSettings).
var FlexDeprecatedAppSettings = []string{
	"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION", "FUNCTIONS_MAX_HTTP_CONCURRENCY",
	"FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_NODE_DEFAULT_VERSION",
}

// checkFlexDeprecations holds the Function App to what Flex Consumption accepts: no deprecated
// site property, no deprecated app setting, and no basicPublishingCredentialsPolicies child
// (Flex has no FTP(S) endpoint and no public source shows these policies applying to a Flex
// site; azd deploys the package with Entra, so they would protect nothing).
func (c *checker) checkFlexDeprecations() {
	for _, site := range c.resources("Microsoft.Web/sites") {
		for _, p := range flexDeprecatedSiteProperties {
			if n := site.Body.Get("properties." + p); n != nil {
				c.fail(FlexDeprecatedProperties, site.File, n.Line, "the Flex Consumption site sets properties.%s, a deprecated property on Flex (see Flex Consumption plan deprecations)", p)
			}
		}
	}
	for _, r := range c.resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies") {
		name, _ := c.in.Literal(r.File, r.Body.Get("name"))
		c.fail(FlexPublishingPolicies, r.File, r.Line, "basicPublishingCredentialsPolicies %q on the Flex Consumption site: no source shows Flex accepting it, and Flex has no FTP endpoint", name)
	}
	for _, r := range c.resources("Microsoft.Web/sites/config") {
		if name, _ := c.in.Literal(r.File, r.Body.Get("name")); name != "appsettings" {
			continue
		}
		keys := c.in.ObjectKeys(r.File, r.Body.Get("properties"))
		for _, k := range FlexDeprecatedAppSettings {
			for have, l := range keys {
				if strings.EqualFold(have, k) {
					c.fail(FlexDeprecatedProperties, l.file, l.node.Line, "app setting %s is deprecated on Flex Consumption (functionAppConfig or the platform sets it)", have)
				}
			}
		}
	}
}
