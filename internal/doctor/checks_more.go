package doctor

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// --- Teams manifest ---

func (s *Snapshot) manifestFix(field string, value any) string {
	return fmt.Sprintf("in the Teams manifest (appPackage/manifest.json) set %q: %s, then rebuild the app package and upload it again", field, compactJSON(value))
}

// checkManifestExtensionBotIDs: a message extension (composeExtensions[].botId) and the
// Copilot custom engine agent (copilotAgents.customEngineAgents[].id, type bot) are answered by
// the bot, so each must name the bot's app id (msteams-docs resources/schema/manifest-schema.md).
func checkManifestExtensionBotIDs(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	app := s.appID()
	var named []string
	for i, x := range s.Manifest.ComposeExtensions {
		if s.appIDKnown() && !strings.EqualFold(x.BotID, app) {
			return fail(s.manifestFix(fmt.Sprintf("composeExtensions[%d].botId", i), app), "message extension %d names bot %q, not the app id %s: its searches would reach another bot", i, x.BotID, app)
		}
		named = append(named, "composeExtensions")
	}
	if ca := s.Manifest.CopilotAgents; ca != nil {
		for i, a := range ca.CustomEngineAgents {
			if s.appIDKnown() && a.Type == "bot" && !strings.EqualFold(a.ID, app) {
				return fail(s.manifestFix(fmt.Sprintf("copilotAgents.customEngineAgents[%d].id", i), app), "the Copilot agent names bot %q, not the app id %s", a.ID, app)
			}
			named = append(named, "copilotAgents")
		}
	}
	if len(named) == 0 {
		return info("no message extension or Copilot agent declared")
	}
	return pass("%s name %s", strings.Join(slices.Compact(named), " and "), orPlaceholder(app, "the bot"))
}

func checkManifestBotID(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	app := s.appID()
	if len(s.Manifest.Bots) == 0 {
		return fail(s.manifestFix("bots", []map[string]any{{"botId": app, "scopes": []string{"personal"}}}), "the manifest declares no bot")
	}
	got := s.Manifest.Bots[0].BotID
	if !s.appIDKnown() {
		return pass("%s (no app registration, bot or settings to compare with)", strings.ToLower(got))
	}
	if !strings.EqualFold(got, app) {
		return fail(s.manifestFix("bots[0].botId", app), "manifest bot id %q is not the app id %s", got, app)
	}
	return pass("%s", strings.ToLower(got))
}

func (s *Snapshot) webAppInfoFix() string {
	return s.manifestFix("webApplicationInfo", map[string]string{"id": s.appID(), "resource": s.identifierURI()})
}

func checkManifestWebAppID(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	w := s.Manifest.WebApplicationInfo
	if w == nil {
		return fail(s.webAppInfoFix(), "the manifest has no webApplicationInfo: Teams will not attempt SSO")
	}
	if !strings.EqualFold(w.ID, s.appID()) {
		return fail(s.webAppInfoFix(), "webApplicationInfo.id is %q, not the bot id %s", w.ID, s.appID())
	}
	return pass("%s", strings.ToLower(w.ID))
}

func checkManifestResource(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	w := s.Manifest.WebApplicationInfo
	if w == nil {
		return fail(s.webAppInfoFix(), "the manifest has no webApplicationInfo.resource")
	}
	if !strings.EqualFold(strings.TrimRight(w.Resource, "/"), s.identifierURI()) {
		return fail(s.webAppInfoFix(), "webApplicationInfo.resource is %q, not %s", w.Resource, s.identifierURI())
	}
	return pass("%s", w.Resource)
}

func (s *Snapshot) validDomainsFix(extra ...string) string {
	domains := slices.Clone(s.Manifest.ValidDomains)
	for _, d := range extra {
		if d != "" && !containsFold(domains, d) {
			domains = append(domains, d)
		}
	}
	return s.manifestFix("validDomains", domains)
}

func checkManifestBotFrameworkDomain(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	if !containsFold(s.Manifest.ValidDomains, "*.botframework.com") {
		return fail(s.validDomainsFix("*.botframework.com"), "*.botframework.com is not in validDomains (has %s): the sign-in card cannot open", listOrNone(s.Manifest.ValidDomains))
	}
	return pass("*.botframework.com")
}

func checkManifestHostDomain(s *Snapshot) Result {
	if r, ok := s.need("manifest", s.Manifest != nil); !ok {
		return r
	}
	var hosts []string
	for _, h := range []string{s.endpointHost(), s.functionAppHost()} {
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return skip("neither the messaging endpoint nor the Function App host is known")
	}
	var missing []string
	for _, h := range hosts {
		if !slices.ContainsFunc(s.Manifest.ValidDomains, func(d string) bool { return matchDomain(d, h) }) {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return fail(s.validDomainsFix(missing...), "%s not in validDomains (has %s)", strings.Join(missing, ", "), listOrNone(s.Manifest.ValidDomains))
	}
	return pass("%s", strings.Join(hosts, ", "))
}

// --- Graph permissions ---

// checkGrants reports which consent path On-Behalf-Of calls to Graph rely on. With admin
// consent (an AllPrincipals oAuth2PermissionGrant on Microsoft Graph covering every OBO scope)
// no user is ever asked; that is what infra/ grants by default and what the doctor recommends.
// Without it the bot still works through per-user consent: the first Graph command a user
// runs gets one consent card, and each acceptance shows up as a Principal grant for that user
// (entra-docs v2-oauth2-on-behalf-of-flow.md, "Gaining consent for the middle-tier
// application"; learn.microsoft.com graph/api/resources/oauth2permissiongrant). That path
// depends on the tenant letting users consent to this app, so it is reported as a warning.
func checkGrants(s *Snapshot) Result {
	if r, ok := s.need("grants", s.GrantsKnown); !ok {
		return r
	}
	admin := map[string]bool{}
	consented := map[string]bool{} // users with their own grant to Graph
	for _, g := range s.Grants {
		if s.GraphSPID != "" && !strings.EqualFold(g.ResourceID, s.GraphSPID) {
			continue
		}
		switch {
		case strings.EqualFold(g.ConsentType, "AllPrincipals"):
			for _, sc := range strings.Fields(g.Scope) {
				admin[strings.ToLower(sc)] = true
			}
		case strings.EqualFold(g.ConsentType, "Principal") && g.PrincipalID != "":
			consented[strings.ToLower(g.PrincipalID)] = true
		}
	}
	var missing []string
	for _, want := range s.OBOScopes {
		if !admin[strings.ToLower(want)] {
			missing = append(missing, want)
		}
	}
	if len(missing) == 0 {
		return pass("admin consent: a tenant-wide grant covers %s, so no user is asked", strings.Join(s.OBOScopes, ", "))
	}
	users := "no user has consented yet"
	if n := len(consented); n == 1 {
		users = "1 user has consented so far"
	} else if n > 1 {
		users = fmt.Sprintf("%d users have consented so far", n)
	}
	fix := "az ad app permission grant --id " + orPlaceholder(s.appID(), "<app-id>") + " --api " + GraphAppID + " --scope " + quote(strings.Join(missing, " "))
	return warn(fix, "per-user consent: no tenant-wide (admin) grant for %s, so each user accepts a consent card once before Graph answers (%s); where the tenant does not let users consent to this app, those commands fail for everyone. Admin consent is the recommended default", strings.Join(missing, ", "), users)
}

// --- Handler settings ---

func (s *Snapshot) appSettingsFix(kv ...string) string {
	return "az functionapp config appsettings set --resource-group " + s.resourceGroup() + " --name " + s.functionAppName() + " --settings " + strings.Join(kv, " ")
}

// settingsEnv is the settings as the handler would see them: in Azure the platform adds
// WEBSITE_SITE_NAME, which the app settings list does not show.
func (s *Snapshot) settingsEnv(name string) string {
	if v, ok := s.Settings[name]; ok {
		return v
	}
	if name == "WEBSITE_SITE_NAME" && s.SettingsInAzure {
		return orPlaceholder(s.FunctionApp, "onbehalf")
	}
	return ""
}

func checkSettingsValid(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	where := "local settings"
	if s.SettingsInAzure {
		where = "Function App settings (running in Azure)"
	}
	_, err := config.Load(s.settingsEnv)
	if err == nil {
		return pass("%s load without problems", where)
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		return fail("", "%s: %v", where, err)
	}
	var lines, fixes []string
	for _, p := range cerr.Problems {
		lines = append(lines, p.Setting+": "+p.Reason)
		if s.SettingsInAzure {
			if _, present := s.Settings[p.Setting]; present && strings.Contains(p.Reason, "refused") {
				fixes = append(fixes, "az functionapp config appsettings delete --resource-group "+s.resourceGroup()+" --name "+s.functionAppName()+" --setting-names "+p.Setting)
			} else {
				fixes = append(fixes, s.appSettingsFix(p.Setting+"=<value>"))
			}
		} else {
			fixes = append(fixes, "edit local.settings.json: Values."+p.Setting)
		}
	}
	return fail(strings.Join(fixes, "\n"), "%s: %s", where, strings.Join(lines, "; "))
}

func checkSettingsMatch(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	var problems, fixes []string
	cmp := func(name, want, what string) {
		got := strings.TrimSpace(s.Settings[name])
		if want == "" || got == "" {
			return
		}
		if !strings.EqualFold(got, want) {
			problems = append(problems, fmt.Sprintf("%s is %s, not %s", name, got, what))
			fixes = append(fixes, name+"="+want)
		}
	}
	cmp("BOT_APP_ID", s.appID(), "the bot's app id "+s.appID())
	cmp("BOT_TENANT_ID", s.tenantID(), "the bot's tenant "+s.tenantID())
	if s.Identity != nil {
		cmp("BOT_MANAGED_IDENTITY_CLIENT_ID", s.Identity.ClientID, "the Function App's managed identity client id "+s.Identity.ClientID)
	}
	// The queue trigger reads the host's storage account; the handler enqueues to
	// AzureWebJobsStorage__queueServiceUri. On another account, queued work is never run.
	if acct, q := strings.TrimSpace(s.Settings["AzureWebJobsStorage__accountName"]), strings.TrimSpace(s.Settings["AzureWebJobsStorage__queueServiceUri"]); acct != "" && q != "" {
		if u, err := url.Parse(q); err != nil || !strings.HasPrefix(strings.ToLower(u.Hostname()), strings.ToLower(acct)+".queue.") {
			problems = append(problems, fmt.Sprintf("AzureWebJobsStorage__queueServiceUri is %s, not the queue service of the host's storage account %s", q, acct))
			fixes = append(fixes, "AzureWebJobsStorage__queueServiceUri=https://"+acct+".queue.core.windows.net")
		}
	}
	if len(problems) > 0 {
		return fail(s.appSettingsFix(fixes...), "%s", strings.Join(problems, "; "))
	}
	if s.Identity == nil {
		return pass("BOT_APP_ID and BOT_TENANT_ID match the bot (managed identity not read: %s)", s.absent("identity"))
	}
	return pass("BOT_APP_ID, BOT_TENANT_ID and BOT_MANAGED_IDENTITY_CLIENT_ID match the deployment")
}

// --- Key Vault ---

func (s *Snapshot) vaultName() string {
	h := hostOf(s.Settings["TOKENSTORE_KEYVAULT_URL"])
	if h == "" {
		return ""
	}
	return strings.SplitN(h, ".", 2)[0]
}

func (s *Snapshot) keyName() string {
	return orPlaceholder(strings.TrimSpace(s.Settings["TOKENSTORE_KEY_NAME"]), config.DefaultTokenStoreKeyName)
}

func checkKeyVaultSettings(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	raw := strings.TrimSpace(s.Settings["TOKENSTORE_KEYVAULT_URL"])
	if raw == "" {
		if !s.SettingsInAzure && s.Settings["TOKENSTORE_DEV_KEY"] != "" {
			return info("local development: the token store uses TOKENSTORE_DEV_KEY, not Key Vault")
		}
		return fail(s.appSettingsFix("TOKENSTORE_KEYVAULT_URL=https://<vault>.vault.azure.net/"), "TOKENSTORE_KEYVAULT_URL is not set: the token store has no encryption key")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fail(s.appSettingsFix("TOKENSTORE_KEYVAULT_URL=https://<vault>.vault.azure.net/"), "TOKENSTORE_KEYVAULT_URL %q is not an https URL", raw)
	}
	return pass("secret %q in %s", s.keyName(), raw)
}

func (s *Snapshot) vaultID() string {
	sub := orPlaceholder(s.Subscription, "<subscription>")
	return "/subscriptions/" + sub + "/resourceGroups/" + s.resourceGroup() + "/providers/Microsoft.KeyVault/vaults/" + orPlaceholder(s.vaultName(), "<vault>")
}

func checkKeyVaultAccess(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	if s.vaultName() == "" {
		return skip("no TOKENSTORE_KEYVAULT_URL")
	}
	if r, ok := s.need("roles", s.RolesKnown); !ok {
		return r
	}
	if r, ok := s.need("identity", s.Identity != nil && s.Identity.PrincipalID != ""); !ok {
		return r
	}
	vault := strings.ToLower(s.vaultID())
	vaultSuffix := strings.ToLower("/providers/Microsoft.KeyVault/vaults/" + s.vaultName())
	for _, ra := range s.RoleAssignments {
		if !strings.EqualFold(ra.PrincipalID, s.Identity.PrincipalID) {
			continue
		}
		role := strings.ToLower(ra.RoleDefinitionID[strings.LastIndex(ra.RoleDefinitionID, "/")+1:])
		if role != KeyVaultSecretsUserRole && role != KeyVaultSecretsOfficerRole {
			continue
		}
		scope := strings.ToLower(strings.TrimRight(ra.Scope, "/"))
		if strings.HasSuffix(scope, vaultSuffix) || strings.HasPrefix(vault, scope+"/") {
			name := "Key Vault Secrets User"
			if role == KeyVaultSecretsOfficerRole {
				name = "Key Vault Secrets Officer"
			}
			return pass("principal %s has %s at %s, so it can read %q", s.Identity.PrincipalID, name, ra.Scope, s.keyName())
		}
	}
	fix := "az role assignment create --assignee-object-id " + s.Identity.PrincipalID + " --assignee-principal-type ServicePrincipal --role " + KeyVaultSecretsUserRole + " --scope " + s.vaultID()
	return fail(fix, "the managed identity (principal %s) has no Key Vault Secrets User or Officer role on vault %s: the handler cannot read its token-encryption key", s.Identity.PrincipalID, s.vaultName())
}

// --- Connectors ---

// connectorRef is one configured OAuth 2.0 connector: its name and where its secret lives.
type connectorRef struct {
	Name             string
	ClientID         string
	ClientSecretName string
}

// connectors lists the configured per-user OAuth connectors, parsed by the connectors' own
// code: OAUTH2_CONNECTORS through oauth2.ParseConnectors (which also validates every entry),
// and the built-in Atlassian connector from ATLASSIAN_CLIENT_ID / ATLASSIAN_CLIENT_SECRET_NAME.
func (s *Snapshot) connectors() ([]connectorRef, error) {
	var out []connectorRef
	if id := strings.TrimSpace(s.Settings["ATLASSIAN_CLIENT_ID"]); id != "" {
		out = append(out, connectorRef{Name: atlassian.Name, ClientID: id, ClientSecretName: strings.TrimSpace(s.Settings["ATLASSIAN_CLIENT_SECRET_NAME"])})
	}
	cs, err := oauth2.ParseConnectors(s.Settings["OAUTH2_CONNECTORS"], atlassian.Name)
	if err != nil {
		return out, err
	}
	for _, c := range cs {
		out = append(out, connectorRef{Name: c.Name, ClientID: c.ClientID, ClientSecretName: c.ClientSecretName})
	}
	return out, nil
}

func checkConnectorsCallback(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	cs, _ := s.connectors()
	host := s.FunctionAppHost
	if host == "" {
		host = s.endpointHost()
	}
	fix := s.appSettingsFix("BOT_PUBLIC_URL=https://" + orPlaceholder(host, "<function-app-host>"))
	raw := strings.TrimRight(strings.TrimSpace(s.Settings["BOT_PUBLIC_URL"]), "/")
	if raw == "" {
		if len(cs) == 0 {
			return info("no OAuth 2.0 connectors configured; BOT_PUBLIC_URL is not needed yet")
		}
		return fail(fix, "BOT_PUBLIC_URL is not set, so connectors have no callback URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fail(fix, "BOT_PUBLIC_URL %q is not an https URL; providers will refuse the callback", raw)
	}
	if host != "" && !strings.EqualFold(u.Hostname(), host) {
		return fail(fix, "BOT_PUBLIC_URL host %q is not the Function App's host %q: the callback would never reach the handler", u.Hostname(), host)
	}
	callback := raw + "/api/oauth/callback"
	if len(cs) == 0 {
		return pass("%s (no connectors configured yet)", callback)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return pass("%s, to register at %s", callback, strings.Join(names, ", "))
}

// secretLike names settings that would hold a secret value in plain app settings.
func secretLike(name string) bool {
	n := strings.ToUpper(name)
	if strings.HasSuffix(n, "_NAME") || n == "BOT_CLIENT_SECRET" || n == "TOKENSTORE_DEV_KEY" || n == "TOKENSTORE_CONNECTION_STRING" {
		return false // named secrets are fine; the dev-only ones are refused by settings validation
	}
	return strings.HasSuffix(n, "_SECRET") || strings.HasSuffix(n, "_PASSWORD") || strings.HasSuffix(n, "_CLIENT_SECRET")
}

func checkConnectorsSecrets(s *Snapshot) Result {
	if r, ok := s.need("settings", s.Settings != nil); !ok {
		return r
	}
	cs, err := s.connectors()
	var problems, fixes, named []string
	if err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
		fixes = append(fixes, s.appSettingsFix(`OAUTH2_CONNECTORS='[{"name":"…","authURL":"https://…","tokenURL":"https://…","apiBaseURL":"https://…","clientID":"…","clientSecretName":"…"}]'`))
	}
	for _, c := range cs {
		if c.ClientID == "" {
			problems = append(problems, fmt.Sprintf("connector %q has no clientID", c.Name))
		}
		if c.ClientSecretName == "" {
			problems = append(problems, fmt.Sprintf("connector %q has no client secret name (the Key Vault secret holding its client secret)", c.Name))
			where := "clientSecretName in OAUTH2_CONNECTORS"
			if c.Name == atlassian.Name {
				where = "ATLASSIAN_CLIENT_SECRET_NAME"
			}
			fixes = append(fixes, "az keyvault secret set --vault-name "+orPlaceholder(s.vaultName(), "<vault>")+" --name "+c.Name+"-client-secret --file <file-with-the-secret>   # then set "+where+" to "+c.Name+"-client-secret")
		} else {
			named = append(named, c.Name+" → "+c.ClientSecretName)
		}
	}
	if s.SettingsInAzure {
		var keys []string
		for k, v := range s.Settings {
			if secretLike(k) && strings.TrimSpace(v) != "" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			problems = append(problems, k+" holds a secret value in app settings")
			fixes = append(fixes, "az keyvault secret set --vault-name "+orPlaceholder(s.vaultName(), "<vault>")+" --name "+strings.ToLower(strings.ReplaceAll(k, "_", "-"))+" --file <file-with-the-secret> && az functionapp config appsettings delete --resource-group "+s.resourceGroup()+" --name "+s.functionAppName()+" --setting-names "+k)
		}
	}
	if len(problems) > 0 {
		return fail(strings.Join(fixes, "\n"), "%s", strings.Join(problems, "; "))
	}
	if len(cs) == 0 {
		return info("no OAuth 2.0 connectors configured")
	}
	return pass("client secrets in Key Vault: %s", strings.Join(named, ", "))
}
