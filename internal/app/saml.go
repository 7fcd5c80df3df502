package app

import (
	"errors"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/saml"
	"github.com/onbehalf/onbehalf/internal/connector/saml/samlbot"
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
