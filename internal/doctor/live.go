package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// API versions the live mode uses; the ARM stand-in accepts exactly these families.
const (
	WebAPIVersion            = "2023-12-01"
	AuthorizationAPIVersion  = "2022-04-01"
	defaultProbeTimeout      = 15 * time.Second
	defaultLiveClientTimeout = 30 * time.Second
)

// LiveConfig says where a live diagnosis reads the deployment.
//
// Example:
//
//	doctor.LiveConfig{
//		Subscription:  "11111111-2222-4333-8444-555555555555",
//		ResourceGroup: "rg-onbehalf",
//		BotName:       "bot-onbehalf",
//	}
type LiveConfig struct {
	Subscription  string
	ResourceGroup string
	BotName       string
	// AppID overrides the bot's msaAppId as the app registration to read.
	AppID string
	// FunctionApp names the Function App; by default it is the site in the resource group
	// whose host serves the messaging endpoint.
	FunctionApp string
	// GraphURL and ARMURL default to the public cloud.
	GraphURL string
	ARMURL   string
	// Credential defaults to the Azure CLI login; HTTPClient to a client with a 30 s timeout.
	Credential TokenCredential
	HTTPClient *http.Client
	// ProbeTimeout bounds the messaging endpoint probe (default 15 s).
	ProbeTimeout time.Duration
}

func (c LiveConfig) withDefaults() LiveConfig {
	if c.GraphURL == "" {
		c.GraphURL = DefaultGraphURL
	}
	if c.ARMURL == "" {
		c.ARMURL = DefaultARMURL
	}
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
	c.ARMURL = strings.TrimRight(c.ARMURL, "/")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultLiveClientTimeout}
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = defaultProbeTimeout
	}
	return c
}

// live reads one deployment through Graph and Resource Manager.
type live struct {
	cfg   LiveConfig
	graph *restClient
	arm   *restClient
}

func newLive(cfg LiveConfig) (*live, error) {
	cfg = cfg.withDefaults()
	if cfg.Subscription == "" || cfg.ResourceGroup == "" || cfg.BotName == "" {
		return nil, errors.New("doctor: live mode needs --subscription, --resource-group and --bot-name")
	}
	if cfg.Credential == nil {
		return nil, errors.New("doctor: live mode needs a credential")
	}
	return &live{
		cfg:   cfg,
		graph: &restClient{base: cfg.GraphURL, cred: cfg.Credential, hc: cfg.HTTPClient},
		arm:   &restClient{base: cfg.ARMURL, cred: cfg.Credential, hc: cfg.HTTPClient},
	}, nil
}

func (l *live) rgPath() string {
	return "/subscriptions/" + url.PathEscape(l.cfg.Subscription) + "/resourceGroups/" + url.PathEscape(l.cfg.ResourceGroup)
}

func (l *live) botPath() string {
	return l.rgPath() + "/providers/Microsoft.BotService/botServices/" + url.PathEscape(l.cfg.BotName)
}

// fatal reports errors that make the whole diagnosis meaningless (refused login).
func fatal(err error) bool { return errors.Is(err, ErrUnauthorized) }

// load builds the snapshot. Missing resources become NotFound (their checks fail); other read
// errors become Absent (their checks skip and say why); a refused login is returned.
func (l *live) load(ctx context.Context, extra OfflineFiles) (*Snapshot, error) {
	s := &Snapshot{
		Mode: "live", Absent: map[string]string{}, NotFound: map[string]string{},
		Subscription: l.cfg.Subscription, GraphURL: l.cfg.GraphURL, ARMURL: l.cfg.ARMURL,
	}
	unread := func(source string, err error) error {
		if fatal(err) {
			return err
		}
		s.Absent[source] = "could not read: " + err.Error()
		return nil
	}

	// Azure Bot and its Teams channel.
	var bot Bot
	switch err := l.arm.do(ctx, http.MethodGet, l.botPath()+"?api-version="+BotServiceAPIVersion, nil, &bot); {
	case err == nil:
		s.Bot = &bot
	case isNotFound(err):
		s.NotFound["bot"] = fmt.Sprintf("no Azure Bot %q in resource group %s", l.cfg.BotName, l.cfg.ResourceGroup)
	default:
		if e := unread("bot", err); e != nil {
			return nil, e
		}
	}
	if s.Bot != nil {
		var ch struct {
			Properties struct {
				Properties struct {
					IsEnabled bool `json:"isEnabled"`
				} `json:"properties"`
			} `json:"properties"`
		}
		err := l.arm.do(ctx, http.MethodGet, l.botPath()+"/channels/MsTeamsChannel?api-version="+BotServiceAPIVersion, nil, &ch)
		switch {
		case err == nil:
			s.TeamsChannel = &ch.Properties.Properties.IsEnabled
		case isNotFound(err):
			off := false
			s.TeamsChannel = &off
		default:
			if fatal(err) {
				return nil, err
			}
		}
	}

	// App registration, its credentials, service principal and grants.
	appID := strings.ToLower(l.cfg.AppID)
	if appID == "" && s.Bot != nil {
		appID = strings.ToLower(s.Bot.Properties.MsaAppID)
	}
	if appID == "" {
		for _, src := range []string{"app", "fics", "sp", "grants"} {
			s.Absent[src] = "no app id (the bot was not read and no --app-id was given)"
		}
	} else if err := l.loadApp(ctx, s, appID); err != nil {
		return nil, err
	}

	// Function App: settings and managed identity.
	if err := l.loadFunctionApp(ctx, s); err != nil {
		return nil, err
	}
	if s.Settings != nil {
		if err := l.loadModel(ctx, s, unread); err != nil {
			return nil, err
		}
	}

	// OAuth connection named by the handler's settings.
	name := s.expectedConnectionName()
	if s.Bot != nil {
		var conn Connection
		err := l.arm.do(ctx, http.MethodGet, l.botPath()+"/connections/"+url.PathEscape(name)+"?api-version="+BotServiceAPIVersion, nil, &conn)
		switch {
		case err == nil:
			s.Connection = &conn
		case isNotFound(err):
			s.NotFound["connection"] = fmt.Sprintf("the bot has no OAuth connection %q (BOT_OAUTH_CONNECTION)", name)
		default:
			if e := unread("connection", err); e != nil {
				return nil, e
			}
		}
	} else {
		s.Absent["connection"] = "the bot was not read"
	}

	// SAML applications' enterprise apps (after the settings and the bot's grants).
	if err := l.loadSAML(ctx, s); err != nil {
		return nil, err
	}

	// Role assignments on the token-key vault.
	if s.vaultName() != "" {
		roles, err := l.rolesAt(ctx, s.vaultID())
		if err != nil {
			if e := unread("roles", err); e != nil {
				return nil, e
			}
		} else {
			s.RolesKnown = true
			s.RoleAssignments = append(s.RoleAssignments, roles...)
		}
	} else {
		s.Absent["roles"] = "no TOKENSTORE_KEYVAULT_URL in the Function App settings"
	}

	// The messaging endpoint itself.
	if s.Bot != nil && s.Bot.Properties.Endpoint != "" {
		s.Probe = probe(ctx, l.cfg.HTTPClient, s.Bot.Properties.Endpoint, l.cfg.ProbeTimeout)
	} else {
		s.Absent["probe"] = "no messaging endpoint to probe"
	}

	// The manifest is not in Azure: it comes from a file in live mode too.
	if extra.Manifest != "" {
		var m Manifest
		if err := readJSON(extra.Manifest, &m); err != nil {
			return nil, fmt.Errorf("doctor: read --manifest %s: %w", extra.Manifest, err)
		}
		s.Manifest = &m
	} else {
		s.Absent["manifest"] = "no --manifest file given"
	}
	return s, nil
}

func (l *live) loadApp(ctx context.Context, s *Snapshot, appID string) error {
	var app App
	err := l.graph.do(ctx, http.MethodGet, appPath(appID), nil, &app)
	switch {
	case err == nil:
		app.FederatedIdentityCredentials = nil
		s.App = &app
	case isNotFound(err):
		s.NotFound["app"] = fmt.Sprintf("no app registration with app id %s in this tenant", appID)
		s.Absent["fics"] = "no app registration"
	default:
		if fatal(err) {
			return err
		}
		s.Absent["app"] = "could not read: " + err.Error()
		s.Absent["fics"] = "could not read the app registration"
	}
	if s.App != nil {
		var page struct {
			Value []FederatedCredential `json:"value"`
		}
		if err := l.graph.do(ctx, http.MethodGet, "/v1.0/applications/"+url.PathEscape(s.App.ID)+"/federatedIdentityCredentials", nil, &page); err != nil {
			if fatal(err) {
				return err
			}
			s.Absent["fics"] = "could not read: " + err.Error()
		} else {
			s.FederatedCredentials, s.FICsKnown = page.Value, true
		}
	}

	var sp ServicePrincipal
	err = l.graph.do(ctx, http.MethodGet, "/v1.0/servicePrincipals(appId='"+appID+"')", nil, &sp)
	switch {
	case err == nil:
		s.ServicePrincipal = &sp
	case isNotFound(err):
		s.NotFound["sp"] = fmt.Sprintf("the app %s has no service principal in this tenant: nobody can sign in to it", appID)
		s.Absent["grants"] = "no service principal, so no grants"
	default:
		if fatal(err) {
			return err
		}
		s.Absent["sp"] = "could not read: " + err.Error()
		s.Absent["grants"] = "could not read the service principal"
	}
	if s.ServicePrincipal == nil {
		return nil
	}
	var graphSP ServicePrincipal
	if err := l.graph.do(ctx, http.MethodGet, "/v1.0/servicePrincipals(appId='"+GraphAppID+"')", nil, &graphSP); err == nil {
		s.GraphSPID = graphSP.ID
	} else if fatal(err) {
		return err
	}
	var grants struct {
		Value []PermissionGrant `json:"value"`
	}
	filter := url.QueryEscape("clientId eq '" + s.ServicePrincipal.ID + "'")
	if err := l.graph.do(ctx, http.MethodGet, "/v1.0/oauth2PermissionGrants?$filter="+filter, nil, &grants); err != nil {
		if fatal(err) {
			return err
		}
		s.Absent["grants"] = "could not read: " + err.Error()
	} else {
		s.Grants, s.GrantsKnown = grants.Value, true
	}
	return nil
}

// site is the part of a Microsoft.Web/sites resource the doctor reads.
type site struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		DefaultHostName string   `json:"defaultHostName"`
		HostNames       []string `json:"hostNames"`
	} `json:"properties"`
	Identity *struct {
		UserAssignedIdentities map[string]struct {
			PrincipalID string `json:"principalId"`
			ClientID    string `json:"clientId"`
		} `json:"userAssignedIdentities"`
	} `json:"identity"`
}

func (l *live) loadFunctionApp(ctx context.Context, s *Snapshot) error {
	var fa *site
	if l.cfg.FunctionApp != "" {
		var one site
		err := l.arm.do(ctx, http.MethodGet, l.rgPath()+"/providers/Microsoft.Web/sites/"+url.PathEscape(l.cfg.FunctionApp)+"?api-version="+WebAPIVersion, nil, &one)
		switch {
		case err == nil:
			fa = &one
		case isNotFound(err):
			s.Absent["settings"] = fmt.Sprintf("no Function App %q in resource group %s", l.cfg.FunctionApp, l.cfg.ResourceGroup)
		default:
			if fatal(err) {
				return err
			}
			s.Absent["settings"] = "could not read the Function App: " + err.Error()
		}
	} else {
		host := s.endpointHost()
		var page struct {
			Value []site `json:"value"`
		}
		err := l.arm.do(ctx, http.MethodGet, l.rgPath()+"/providers/Microsoft.Web/sites?api-version="+WebAPIVersion, nil, &page)
		switch {
		case err != nil:
			if fatal(err) {
				return err
			}
			s.Absent["settings"] = "could not list Function Apps: " + err.Error()
		case host == "":
			s.Absent["settings"] = "no messaging endpoint to find the Function App by (give --function-app)"
		default:
			for i, st := range page.Value {
				if strings.EqualFold(st.Properties.DefaultHostName, host) || containsFold(st.Properties.HostNames, host) {
					fa = &page.Value[i]
					break
				}
			}
			if fa == nil {
				s.Absent["settings"] = fmt.Sprintf("no Function App in resource group %s serves %s (give --function-app)", l.cfg.ResourceGroup, host)
			}
		}
	}
	if fa == nil {
		s.Absent["identity"] = s.Absent["settings"]
		return nil
	}
	s.FunctionApp, s.FunctionAppHost = fa.Name, strings.ToLower(fa.Properties.DefaultHostName)

	var settings struct {
		Properties map[string]string `json:"properties"`
	}
	if err := l.arm.do(ctx, http.MethodPost, l.rgPath()+"/providers/Microsoft.Web/sites/"+url.PathEscape(fa.Name)+"/config/appsettings/list?api-version="+WebAPIVersion, nil, &settings); err != nil {
		if fatal(err) {
			return err
		}
		s.Absent["settings"] = "could not list the Function App settings: " + err.Error()
	} else {
		s.Settings, s.SettingsInAzure = settings.Properties, true
		if s.Settings == nil {
			s.Settings = map[string]string{}
		}
	}

	if fa.Identity == nil || len(fa.Identity.UserAssignedIdentities) == 0 {
		s.NotFound["identity"] = fmt.Sprintf("Function App %s has no user-assigned managed identity", fa.Name)
		return nil
	}
	want := strings.ToLower(s.Settings["BOT_MANAGED_IDENTITY_CLIENT_ID"])
	for id, mi := range fa.Identity.UserAssignedIdentities {
		cand := &ManagedIdentity{ResourceID: id, PrincipalID: strings.ToLower(mi.PrincipalID), ClientID: strings.ToLower(mi.ClientID)}
		if want != "" && cand.ClientID == want {
			s.Identity = cand
			break
		}
		if len(fa.Identity.UserAssignedIdentities) == 1 {
			s.Identity = cand
		}
	}
	if s.Identity == nil {
		s.NotFound["identity"] = fmt.Sprintf("none of Function App %s's managed identities has client id %s (BOT_MANAGED_IDENTITY_CLIENT_ID)", fa.Name, want)
	}
	return nil
}

// probeActivity is a well-formed activity of a type the bot does not answer, so a handler in
// anonymous mode accepts it (200) instead of rejecting its shape (400); its serviceUrl is the
// handler's own loopback, so even a reply goes nowhere.
const probeActivity = `{"type":"typing","id":"onbehalf-doctor-probe","channelId":"onbehalf-doctor",` +
	`"serviceUrl":"https://127.0.0.1/onbehalf-doctor-probe","conversation":{"id":"onbehalf-doctor-probe"},` +
	`"from":{"id":"onbehalf-doctor"},"recipient":{"id":"bot"}}`

// probe POSTs an activity without a token: a correctly configured handler refuses it with 401
// before reading it.
func probe(ctx context.Context, hc *http.Client, endpoint string, timeout time.Duration) *ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &ProbeResult{URL: endpoint}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(probeActivity))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	resp.Body.Close()
	res.Status = resp.StatusCode
	return res
}

// apply sends the planned Graph requests in order and stops at the first failure.
func (l *live) apply(ctx context.Context, reqs []GraphRequest) error {
	for _, r := range reqs {
		if err := l.graph.do(ctx, r.Method, r.Path, r.Body, nil); err != nil {
			return fmt.Errorf("doctor: apply fix: %w", err)
		}
	}
	return nil
}
