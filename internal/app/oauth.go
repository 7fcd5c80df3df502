package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/secrets"
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
		Resume: a.resumeActivity,
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
		mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(cfg.ManagedIdentityClientID), ClientOptions: azcore.ClientOptions{Transport: opts.HTTPClient},
		})
		if err != nil {
			return nil, fmt.Errorf("managed identity: %w", err)
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
