package app

import (
	"context"
	"errors"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/saml"
	"github.com/onbehalf/onbehalf/internal/connector/saml/samlbot"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// registerSAML makes each SAML application (SAML_APPS) a resource of single sign-on, whose
// token comes from OBO for a SAML assertion redeemed at the application, and adds the saml
// command. It does nothing when no SAML application is configured.
func (a *App) registerSAML(cfg *config.Config, opts Options) error {
	if len(cfg.SAMLApps) == 0 {
		return nil
	}
	if a.SSO == nil {
		return errors.New("SAML applications need single sign-on (a bot identity and the token store)")
	}
	secret, err := connectorSecrets(cfg, opts)
	if err != nil {
		return err
	}
	var apps []*saml.App
	for _, c := range cfg.SAMLApps {
		app, err := c.Open(a.Entra, saml.SecretFunc(secret), opts.HTTPClient, opts.Now)
		if err != nil {
			return err
		}
		a.SSO.M.Resources[c.Name] = samlbot.Resource(app)
		apps = append(apps, app)
	}
	a.SAML = apps
	samlbot.Register(a.Bot, a.SSO, a.SSO.M, apps, cfg.TenantID, opts.HTTPClient.Transport, opts.Log)
	return nil
}

// listSAMLConnections shows the SAML applications in the connections command: the OAuth
// connectors' command when there is one, else a command of their own.
func (a *App) listSAMLConnections(cfg *config.Config, opts Options) {
	if len(a.SAML) == 0 {
		return
	}
	m := a.SSO.M
	if a.OAuth != nil {
		a.OAuth.More = func(ctx context.Context, u tokenstore.UserKey) ([]oauthlink.Status, error) {
			return samlbot.Statuses(ctx, m, u, a.SAML, opts.Now())
		}
		return
	}
	samlbot.RegisterConnections(a.Bot, m, a.SAML, cfg.TenantID, opts.Now)
}
