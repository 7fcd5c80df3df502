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

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/server"
)

// Options are the dependencies the environment does not describe.
type Options struct {
	// HTTPClient is used for every outbound call (channel keys, Entra, connector).
	HTTPClient *http.Client
	// Log is the structured logger.
	Log *slog.Logger
	// Now is the clock.
	Now func() time.Time
}

// App is the assembled handler.
type App struct {
	Config    *config.Config
	Bot       *bot.Bot
	Connector *botframework.Connector
	Entra     *entra.Client // nil in anonymous mode
	Handler   http.Handler
	keys      []*botframework.KeySet
	log       *slog.Logger
}

// New builds the application. It makes no network call; Warm prefetches what it can.
func New(cfg *config.Config, opts Options) (*App, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &App{Config: cfg, log: opts.Log}
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

	mux := http.NewServeMux()
	mux.Handle("/api/messages", &server.Messages{
		Auth:  auth,
		Bot:   a.Bot,
		Trust: a.Connector,
		Log:   opts.Log,
		Seen:  &server.Dedupe{Now: opts.Now},
		Now:   opts.Now,
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.Handler = mux
	return a, nil
}

// Warm prefetches the channel's and tenant's signing keys, so the first activity does not
// pay for them. Failures are logged; validation fetches again on demand.
func (a *App) Warm(ctx context.Context) {
	for _, k := range a.keys {
		if err := k.Warm(ctx); err != nil {
			a.log.Warn("prefetching signing keys failed; will retry on demand", slog.String("metadata", k.MetadataURL), slog.String("error", err.Error()))
		}
	}
}
