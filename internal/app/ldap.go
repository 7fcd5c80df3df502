package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/secrets"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// registerLDAP opens the LDAP connector (no network call) and adds its commands.
func (a *App) registerLDAP(cfg *config.Config, opts Options) error {
	l := cfg.LDAP
	if !l.Configured() {
		return nil
	}
	secret, err := connectorSecrets(cfg, opts)
	if err != nil {
		return err
	}
	if l.BindPassword != "" {
		secret = secrets.WithOverrides(map[string]string{l.BindPasswordSecretName: l.BindPassword}, secret)
	}
	var pool *x509.CertPool
	if l.CACert != "" {
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM([]byte(l.CACert))
	}
	d, err := ldap.Open(ldap.Config{
		URL: l.URL, BaseDN: l.BaseDN, UserBaseDN: l.UserBaseDN, UserClaim: l.UserClaim, UserAttribute: l.UserAttribute,
		BindDN: l.BindDN, BindPasswordSecret: l.BindPasswordSecretName, ClientCertSecret: l.ClientCertSecretName,
		Secret: ldap.SecretFunc(secret), RootCAs: pool, AllowPlain: l.AllowPlain, Now: opts.Now, Audit: a.Audit,
	})
	if err != nil {
		return err
	}
	a.LDAP = d
	var ids ldap.Identities = noSSOIdentities{}
	if a.SSO != nil {
		ids = &ssoIdentities{flow: a.SSO}
	}
	ldap.Register(a.Bot, d, ids, opts.Log)
	return nil
}

// checkLDAP binds and reads the root DSE once at start-up, so an operator sees a wrong
// credential or a directory without proxied authorization in the log before any user asks.
func (a *App) checkLDAP(ctx context.Context) {
	if a.LDAP == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := a.LDAP.Check(ctx)
	var se *ldap.SettingError
	switch {
	case err == nil:
		a.log.Info("LDAP directory ready: proxied authorization supported")
	case errors.As(err, &se):
		a.log.Error("LDAP connector misconfigured; LDAP commands will fail until it is fixed", slog.String("setting", se.Setting), slog.String("error", err.Error()))
	case errors.Is(err, ldap.ErrControlUnsupported):
		a.log.Error("LDAP commands refused: the directory cannot act for users", slog.String("error", err.Error()))
	default:
		a.log.Warn("LDAP directory not reachable at start-up; will retry on demand", slog.String("error", err.Error()))
	}
}

// ssoIdentities gives the LDAP connector the claims of the user's own token for the bot,
// fetched from the Bot Service token service and validated (signature, issuer, audience,
// and that it is the activity sender's).
type ssoIdentities struct{ flow *sso.Flow }

var _ ldap.Identities = (*ssoIdentities)(nil)

func (s *ssoIdentities) Identity(ctx context.Context, t *bot.Turn) (ldap.Identity, error) {
	c, err := sso.CallerOf(t.Activity, s.flow.TenantID)
	if err != nil {
		_ = t.ReplyText(ctx, "I can only do that for a signed-in Microsoft Teams user.")
		return ldap.Identity{}, ldap.ErrPrompted
	}
	tok, err := s.flow.M.Assertion(ctx, c, "")
	if errors.Is(err, sso.ErrSignInNeeded) {
		t.Outcome = "sign-in"
		if err := s.flow.SendCard(ctx, t, "Sign in so I can read the directory as you, then ask again."); err != nil {
			return ldap.Identity{}, err
		}
		return ldap.Identity{}, ldap.ErrPrompted
	}
	if err != nil {
		return ldap.Identity{}, fmt.Errorf("ldap identity: %w", err)
	}
	claims, err := s.flow.Validator.AssertionClaims(ctx, tok, c.User.TenantID, c.User.ObjectID)
	if err != nil {
		return ldap.Identity{}, fmt.Errorf("ldap identity: %w", err)
	}
	return ldap.Identity{TenantID: claims.TenantID, ObjectID: claims.ObjectID, UPN: claims.UPN, Mail: claims.Email}, nil
}

// noSSOIdentities answers LDAP commands when single sign-on is not configured: without a
// validated token there is no identity to act as.
type noSSOIdentities struct{}

func (noSSOIdentities) Identity(ctx context.Context, t *bot.Turn) (ldap.Identity, error) {
	_ = t.ReplyText(ctx, "Directory search needs Teams single sign-on, which is not configured for this bot.")
	return ldap.Identity{}, ldap.ErrPrompted
}
