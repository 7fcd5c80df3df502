// Package app assembles the handler from validated settings: inbound authentication, the
// bot's outbound credential, the connector, the bot and its HTTP routes. The executable in
// handler/ only reads the environment and serves what this package builds.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/onbehalf/onbehalf/internal/activity"
	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/background"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/entraapi"
	"github.com/onbehalf/onbehalf/internal/connector/graph"
	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/connector/saml"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/ratelimit"
	"github.com/onbehalf/onbehalf/internal/server"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
	"github.com/onbehalf/onbehalf/internal/work"
)

// Options are the dependencies the environment does not describe.
type Options struct {
	// HTTPClient is used for every outbound call (channel keys, Entra, connector).
	HTTPClient *http.Client
	// Log is the structured logger.
	Log *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// MonitorCredential authenticates the audit events to Application Insights; nil uses the
	// managed identity (BOT_MANAGED_IDENTITY_CLIENT_ID).
	MonitorCredential azcore.TokenCredential
	// ModelCredential authenticates the assistant to Azure OpenAI; nil uses the managed
	// identity (BOT_MANAGED_IDENTITY_CLIENT_ID).
	ModelCredential azcore.TokenCredential

	identity *identity // the managed identity, shared once built (set by New)
}

// App is the assembled handler.
type App struct {
	Config    *config.Config
	Bot       *bot.Bot
	Connector *botframework.Connector
	Entra     *entra.Client      // nil in anonymous mode
	Store     *tokenstore.Store  // nil when no token store is configured
	SSO       *sso.Flow          // nil in anonymous mode or without a token store
	OAuth     *oauthlink.Service // nil when no OAuth connector (Atlassian, OAUTH2_CONNECTORS) is configured
	SAML      []*saml.App        // empty when no SAML application (SAML_APPS) is configured
	LDAP      *ldap.Directory    // nil when LDAP_URL is not set
	// Audit records every call made to a back end for a user (log line + the user's activity).
	Audit *audit.Recorder
	// HTTPClient is the outbound client every component uses: requests a connector marks as
	// made for a user are checked against the policy and recorded.
	HTTPClient *http.Client
	// AuditEvents sends the audit records to Application Insights as custom events; nil
	// without APPLICATIONINSIGHTS_CONNECTION_STRING (the records are then in the log only).
	AuditEvents *audit.EventSink
	// AuditWrites are the audit records being written to the users' activity after their
	// request went on; wait for them (Wait) before stopping.
	AuditWrites *background.Group
	// Background is work that goes on after a request was answered (resumed requests,
	// account-link announcements); wait for it before stopping.
	Background *background.Group
	Jobs       *work.Queue  // nil without a work queue (config.Work) or token store
	Worker     *work.Worker // serves /work; nil when Jobs is nil
	Handler    http.Handler
	keys       []*botframework.KeySet
	log        *slog.Logger

	// Assistant answers free text; nil when AZURE_OPENAI_ENDPOINT is not set, and free text
	// then gets the built-in answer.
	Assistant *assistant.Assistant
	tools     []assistant.Tool // the assistant's tools, gathered while the connectors are wired
}

// New builds the application. Its only network calls create the token store's tables when
// they are missing; Warm prefetches signing keys.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = DefaultHTTPClient()
	}
	opts.identity = &identity{}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &App{Config: cfg, log: opts.Log, Background: &background.Group{}, AuditWrites: &background.Group{}}
	// Every outbound call goes through the audit transport; those a connector marks as made
	// for a user are recorded.
	a.Audit = &audit.Recorder{Sinks: []audit.Sink{audit.LogSink{Log: opts.Log}}, Log: opts.Log, Now: opts.Now}
	// The administrator's policy is checked there too: a refused request is never sent.
	var guard audit.Guard
	if cfg.Policy != nil {
		guard = cfg.Policy
	}
	opts.HTTPClient = audit.Wrap(opts.HTTPClient, a.Audit, guard)
	if err := a.sendAuditEvents(cfg, opts); err != nil {
		return nil, fmt.Errorf("app: audit events: %w", err)
	}
	a.HTTPClient = opts.HTTPClient
	a.Connector = &botframework.Connector{HTTPClient: opts.HTTPClient}

	var auth server.Authenticator
	if !cfg.Anonymous {
		if cfg.AppID == "" {
			return nil, errors.New("app: a bot app id is required outside anonymous mode")
		}
		channel := &botframework.KeySet{MetadataURL: cfg.OpenIDMetadataURL, HTTPClient: opts.HTTPClient, Now: opts.Now}
		tenant := &botframework.KeySet{
			MetadataURL: strings.TrimRight(cfg.AuthorityHost, "/") + "/" + cfg.TenantID + "/v2.0/.well-known/openid-configuration",
			HTTPClient:  opts.HTTPClient, Now: opts.Now,
		}
		a.keys = []*botframework.KeySet{channel, tenant}
		auth = &botframework.Authenticator{AppID: cfg.AppID, TenantID: cfg.TenantID, Channel: channel, Entra: tenant, Now: opts.Now}

		ec, err := entra.NewClient(entra.ClientConfig{
			AuthorityHost:           cfg.AuthorityHost,
			TenantID:                cfg.TenantID,
			ClientID:                cfg.AppID,
			ManagedIdentityClientID: cfg.ManagedIdentityClientID,
			ClientSecret:            cfg.ClientSecret,
			InAzure:                 cfg.InAzure,
			HTTPClient:              opts.HTTPClient,
			Now:                     opts.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.Entra = ec
		a.Connector.Tokens = ec.TokenSource(cfg.BotFrameworkScope)
	}

	a.Bot = bot.New(a.Connector, opts.Log)
	a.Bot.Targeted = cfg.TargetedMessages
	if cfg.RateLimit.PerMinute > 0 {
		a.Bot.Limit = &ratelimit.Limiter{PerMinute: float64(cfg.RateLimit.PerMinute), Burst: cfg.RateLimit.Burst, Now: opts.Now}
	}
	a.Bot.Identify = func(act *botframework.Activity) (audit.User, bool) {
		c, err := sso.CallerOf(act, cfg.TenantID)
		if err != nil {
			return audit.User{}, false
		}
		return audit.User{TenantID: c.User.TenantID, ObjectID: c.User.ObjectID}, true
	}

	if cfg.TokenStore.Configured() {
		store, err := openStore(ctx, cfg, opts)
		if err != nil {
			return nil, fmt.Errorf("app: token store: %w", err)
		}
		a.Store = store
		a.Audit.Sinks = append(a.Audit.Sinks, audit.TableSink{Store: store, Pending: a.AuditWrites, Log: opts.Log})
		activity.Register(a.Bot, &flushed{store: store, pending: a.AuditWrites}, opts.Now)
	}
	var needer graph.TokenNeeder = notConfigured{}
	if a.Entra != nil && a.Store != nil {
		a.SSO = a.newSSO(cfg, opts)
		a.SSO.Register(a.Bot)
		a.Bot.Removed = a.onRemoved
		entraapi.Register(a.Bot, a.SSO, a.SSO.M, cfg.TenantID, opts.HTTPClient.Transport)
		needer = a.SSO
	}
	gc := &graph.Client{BaseURL: cfg.GraphURL, HTTPClient: opts.HTTPClient, Resource: cfg.GraphResource, Scopes: cfg.GraphScopes}
	graph.Register(a.Bot, gc, needer)
	if a.SSO != nil {
		a.tools = append(a.tools, assistant.GraphTools(gc, needer)...)
	}
	// The compose box searches Microsoft 365 as the user, with Teams SSO.
	a.Bot.HandleSearch("mailSearch", a.Bot.SearchByCommand("mail", "Mail"))
	a.Bot.HandleSearch("filesSearch", a.Bot.SearchByCommand("files", "Files"))
	if err := a.registerSAML(cfg, opts); err != nil {
		return nil, fmt.Errorf("app: SAML applications: %w", err)
	}
	a.registerSignOut()
	a.registerAdmin()
	if err := a.registerOAuth(cfg, opts); err != nil {
		return nil, fmt.Errorf("app: oauth connectors: %w", err)
	}
	a.listSAMLConnections(cfg, opts)
	if err := a.registerLDAP(cfg, opts); err != nil {
		return nil, fmt.Errorf("app: ldap: %w", err)
	}
	if err := a.openWork(ctx, cfg, opts); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	// Last: the assistant's tools are what the connectors above contributed.
	if err := a.registerAssistant(cfg, opts); err != nil {
		return nil, fmt.Errorf("app: assistant: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/api/messages", &server.Messages{
		Auth:  auth,
		Bot:   a.Bot,
		Trust: a.Connector,
		Log:   opts.Log,
		Seen:  &server.Dedupe{Now: opts.Now},
		Now:   opts.Now,
		// Local anonymous mode talks to the Playground or Emulator on http://localhost.
		AllowLoopbackHTTP: cfg.Anonymous,
	})
	a.mountOAuth(mux)
	a.mountWork(mux, opts.Now)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.Handler = mux
	return a, nil
}

// openStore opens the token store with its keys: Key Vault through the managed identity in
// Azure, the development key locally.
func openStore(ctx context.Context, cfg *config.Config, opts Options) (*tokenstore.Store, error) {
	setup := tokenstore.Setup{
		TableEndpoint: cfg.TokenStore.TableEndpoint, ConnectionString: cfg.TokenStore.ConnectionString,
		KeyVaultURL: cfg.TokenStore.KeyVaultURL, KeyName: cfg.TokenStore.KeyName, InAzure: cfg.InAzure,
		TableHTTPClient: opts.HTTPClient, KeyVaultHTTPClient: opts.HTTPClient, Logger: opts.Log, Now: opts.Now,
	}
	if cfg.TokenStore.DevKey != "" {
		k, err := keyring.DecodeKey(cfg.TokenStore.DevKey)
		if err != nil {
			return nil, err
		}
		setup.DevKey = k
	}
	if cfg.TokenStore.TableEndpoint != "" || cfg.TokenStore.KeyVaultURL != "" {
		mi, err := managedIdentity(cfg, opts)
		if err != nil {
			return nil, err
		}
		setup.Credential = mi
	}
	return tokenstore.Open(ctx, setup)
}

// newSSO builds Teams SSO and the resources reached on the user's behalf: Microsoft Graph and
// every configured Entra-protected API.
func (a *App) newSSO(cfg *config.Config, opts Options) *sso.Flow {
	graphScopes := make([]string, len(cfg.GraphScopes))
	for i, s := range cfg.GraphScopes {
		graphScopes[i] = cfg.GraphResource + "/" + s
	}
	resources := map[string]sso.Resource{
		graph.ResourceName: {Name: graph.ResourceName, Display: "Microsoft 365", BaseURL: cfg.GraphURL, Scopes: graphScopes},
	}
	for _, api := range cfg.EntraAPIs {
		resources[api.Name] = sso.Resource{Name: api.Name, Display: api.Display, BaseURL: api.BaseURL, Scopes: api.Scopes}
	}
	if cfg.Search.Configured() {
		resources[config.SearchResourceName] = searchResource()
	}
	m := &sso.Manager{
		Store: a.Store,
		TokenService: &botframework.TokenService{
			BaseURL: cfg.TokenServiceURL, AppID: cfg.AppID, Tokens: a.Connector.Tokens, HTTPClient: opts.HTTPClient,
		},
		OBO: a.Entra, Connection: cfg.OAuthConnection, Resources: resources, Log: opts.Log, Now: opts.Now,
	}
	validator := &entra.SSOValidator{AppID: cfg.AppID, TenantID: cfg.TenantID, Keys: a.keys[1], Now: opts.Now}
	m.Assertions = validator
	return &sso.Flow{
		M:          m,
		Background: a.Background,
		Validator:  validator,
		TenantID:   cfg.TenantID,
		Log:        opts.Log,
	}
}

// notConfigured answers Microsoft 365 commands when single sign-on cannot work.
type notConfigured struct{}

func (notConfigured) Need(context.Context, *bot.Turn, string) (string, error) {
	return "", sso.ErrNotConfigured
}

// DefaultHTTPClient is the outbound client: the system trust store, a bounded timeout, and
// enough idle connections per host that concurrent replies to one connector reuse their TLS
// sessions instead of handshaking again (net/http keeps only 2 by default).
func DefaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.MaxIdleConns = 256
	return &http.Client{Timeout: 30 * time.Second, Transport: t}
}

// Warm prefetches the channel's and tenant's signing keys, so the first activity does not
// pay for them, and checks the LDAP directory (credential, proxied authorization). Failures are logged; validation fetches again on demand.
func (a *App) Warm(ctx context.Context) {
	for _, k := range a.keys {
		if err := k.Warm(ctx); err != nil {
			a.log.Warn("prefetching signing keys failed; will retry on demand", slog.String("metadata", k.MetadataURL), slog.String("error", err.Error()))
		}
	}
	a.checkLDAP(ctx)
}

// Wait blocks until the work that goes on after requests (Background, AuditWrites, AuditEvents) is done or
// ctx ends; it reports whether everything finished.
func (a *App) Wait(ctx context.Context) bool {
	done := a.Background.Wait(ctx) && a.AuditWrites.Wait(ctx)
	if a.AuditEvents != nil {
		done = a.AuditEvents.Flush(ctx) && done
	}
	return done
}

// flushed reads a user's activity once the records still being written are in, so a user sees
// the calls of their previous message.
type flushed struct {
	store   audit.ActivityStore
	pending *background.Group
}

func (f *flushed) AddActivity(ctx context.Context, u tokenstore.UserKey, at time.Time, record []byte, ttl time.Duration) error {
	return f.store.AddActivity(ctx, u, at, record, ttl)
}

func (f *flushed) Activity(ctx context.Context, u tokenstore.UserKey, since time.Time, max int) ([][]byte, error) {
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	f.pending.Wait(wait)
	return f.store.Activity(ctx, u, since, max)
}

// onRemoved drops what the user left waiting for a sign-in when they remove the bot: the
// conversation it would be answered in is gone. Their sign-in itself is kept (removing an app
// is not signing out; "sign out" does that).
func (a *App) onRemoved(ctx context.Context, act *botframework.Activity) error {
	c, err := sso.CallerOf(act, a.Config.TenantID)
	if err != nil {
		return nil // no Entra user named: nothing of theirs is kept
	}
	n, err := a.SSO.DropParked(ctx, c, act.Conversation.ID)
	if n > 0 {
		a.log.Info("bot removed; requests waiting for sign-in dropped", slog.String("user", c.User.String()), slog.Int("dropped", n))
	}
	return err
}
