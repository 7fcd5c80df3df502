package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/activity"
	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/secrets"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// registerOAuth wires the per-user OAuth connectors (Atlassian and OAUTH2_CONNECTORS): their
// commands, the link confirmation through signin/verifyState, and a.OAuth, whose HTTP side
// mountOAuth serves. It does nothing when no connector is configured.
func (a *App) registerOAuth(cfg *config.Config, opts Options) error {
	if !cfg.ConnectorsConfigured() {
		return nil
	}
	if a.Store == nil {
		return errors.New("the OAuth connectors need the token store")
	}
	secret, err := connectorSecrets(cfg, opts)
	if err != nil {
		return err
	}
	rt := oauth2.Runtime{
		RedirectURL: strings.TrimRight(cfg.PublicURL, "/") + "/api/oauth/callback",
		Secret:      oauth2.SecretFunc(secret),
		HTTPClient:  opts.HTTPClient,
		Now:         opts.Now,
	}
	svc := &oauthlink.Service{
		Background: a.Background,
		Store:      a.Store, PublicURL: cfg.PublicURL, TenantID: cfg.TenantID, Anonymous: cfg.Anonymous,
		Log: opts.Log, Now: opts.Now,
		Resume:         a.resumeActivity,
		Sender:         a.Connector,
		LastUsed:       a.lastUsed(opts),
		KeepAliveAfter: cfg.KeepAliveAfter,
	}
	if cfg.Atlassian.Configured() {
		conn, err := atlassian.Config{
			ClientID: cfg.Atlassian.ClientID, ClientSecretName: cfg.Atlassian.ClientSecretName,
			AuthURL: cfg.Atlassian.AuthURL, APIURL: cfg.Atlassian.APIURL, DataCenterBaseURL: cfg.Atlassian.DataCenterBaseURL,
		}.Open(rt)
		if err != nil {
			return err
		}
		err = svc.Add(oauthlink.Provider{
			Conn: conn.OAuth, Words: []string{"jira", "confluence"},
			Account: func(ctx context.Context, hc *http.Client) (string, error) {
				acct, err := conn.Me(ctx, hc)
				if acct.Name == "" {
					return acct.Email, err
				}
				return acct.Name, err
			},
			Connected: func(account string) mdtext.Markdown { return atlassian.ConnectedText(atlassian.Account{Name: account}) },
			Message:   atlassian.UserMessage,
			DisconnectNote: "Atlassian has no way for me to revoke the app's access myself: to remove it completely, " +
				"open your Atlassian account's Security → Connected apps.",
			RefreshIdle: atlassianIdle(cfg), RefreshAbsolute: atlassianAbsolute(cfg),
		})
		if err != nil {
			return err
		}
		atlassian.Register(a.Bot, conn, svc, opts.Log)
		a.tools = append(a.tools, assistant.AtlassianTools(atlassian.NewReader(conn, svc, opts.Log))...)
		atlassian.RegisterExtension(a.Bot, conn, svc, opts.Log)
	}
	for _, oc := range cfg.OAuth2Connectors {
		conn, err := oc.Open(rt)
		if err != nil {
			return err
		}
		if err := svc.Add(oauthlink.Provider{Conn: conn}); err != nil {
			return err
		}
	}
	svc.Register(a.Bot)
	// A user's every request keeps their idle-lapsing connections alive (in the background).
	a.Bot.Active = func(ctx context.Context, act *botframework.Activity) {
		if u, err := svc.UserOf(act); err == nil {
			svc.Active(ctx, u)
		}
	}
	if a.SSO != nil {
		a.SSO.Verifiers = append(a.SSO.Verifiers, svc.VerifyState)
	} else {
		a.Bot.HandleInvoke("signin/verifyState", svc.VerifyInvoke)
	}
	a.OAuth = svc
	return nil
}

// connectorSecrets reads client secrets from Key Vault (TOKENSTORE_KEYVAULT_URL's vault) with the
// managed identity; local-development values (ATLASSIAN_CLIENT_SECRET, OAUTH2_DEV_SECRETS),
// which the settings refuse in Azure, take precedence.
func connectorSecrets(cfg *config.Config, opts Options) (secrets.Func, error) {
	local := map[string]string{}
	for k, v := range cfg.OAuth2DevSecrets {
		local[k] = v
	}
	if cfg.Atlassian.ClientSecret != "" {
		local[cfg.Atlassian.ClientSecretName] = cfg.Atlassian.ClientSecret
	}
	var vault secrets.Func
	if cfg.TokenStore.KeyVaultURL != "" {
		mi, err := managedIdentity(cfg, opts)
		if err != nil {
			return nil, err
		}
		v, err := secrets.NewVault(secrets.VaultOptions{VaultURL: cfg.TokenStore.KeyVaultURL, Credential: mi, HTTPClient: opts.HTTPClient, Now: opts.Now})
		if err != nil {
			return nil, err
		}
		vault = v.Secret
	}
	return secrets.WithOverrides(local, vault), nil
}

// mountOAuth serves the OAuth start and callback pages (functions/oauth: GET /api/oauth/{action}).
func (a *App) mountOAuth(mux *http.ServeMux) {
	if a.OAuth != nil {
		mux.Handle("/api/oauth/", a.OAuth)
	}
}

// Atlassian Cloud's rotating refresh tokens lapse after 90 days unused and 365 days after the
// user authorized the app, however often they are refreshed (community.developer.atlassian.com
// "Refresh token expire after 36000 seconds", staff answer; developer.atlassian.com
// cloud/oauth/getting-started/refresh-tokens). Data Center's lifetimes are the
// administrator's choice: unknown here.
func atlassianIdle(cfg *config.Config) time.Duration {
	if cfg.Atlassian.DataCenterBaseURL != "" {
		return 0
	}
	return 90 * 24 * time.Hour
}

func atlassianAbsolute(cfg *config.Config) time.Duration {
	if cfg.Atlassian.DataCenterBaseURL != "" {
		return 0
	}
	return 365 * 24 * time.Hour
}

// lastUsed reads, from the user's own audit records, when each connector last called its
// back end for them.
func (a *App) lastUsed(opts Options) func(ctx context.Context, u tokenstore.UserKey) map[string]time.Time {
	return func(ctx context.Context, u tokenstore.UserKey) map[string]time.Time {
		recs, err := audit.Recent(ctx, &flushed{store: a.Store, pending: a.AuditWrites}, u, opts.Now().Add(-activity.Window), 0)
		if err != nil {
			return nil
		}
		out := map[string]time.Time{}
		for _, r := range recs { // newest first
			if _, seen := out[r.Connector]; !seen {
				out[r.Connector] = r.Time
			}
		}
		return out
	}
}

// WarnLapsing warns, once per connection across all instances, each user whose OAuth
// connection will lapse within oauthlink.LapseWarning; a timer calls it. It returns how many
// warnings this call sent.
func (a *App) WarnLapsing(ctx context.Context, now time.Time) (int, error) {
	if a.OAuth == nil {
		return 0, nil
	}
	return a.OAuth.WarnLapsing(ctx, now)
}
