// Package ldap reads a legacy LDAP directory as the Teams user: the bot authenticates as its
// own service identity, and every operation but one carries the RFC 4370 Proxied
// Authorization control naming the user's entry, so the directory applies that user's access
// rules. The one exception is the search that finds the user's entry from the validated SSO
// token's claims (MapUser).
//
// Connections are bound once and reused (a small pool); a connection that fails is dropped and
// the operation retried once on a fresh one, so a directory restart costs one failed turn at
// most. Only LDAPS or StartTLS are used, unless AllowPlain is set (tests, loopback only).
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/onbehalf/onbehalf/internal/audit"
	"net/url"
	"strings"
	"time"
)

// Setting names, used in errors an operator reads.
const (
	SettingURL             = "LDAP_URL"
	SettingBindDN          = "LDAP_BIND_DN"
	SettingBindPassword    = "LDAP_BIND_PASSWORD_SECRET_NAME"
	SettingClientCert      = "LDAP_CLIENT_CERT_SECRET_NAME"
	SettingCACert          = "LDAP_CA_CERT"
	SettingBaseDN          = "LDAP_BASE_DN"
	SettingUserBaseDN      = "LDAP_USER_BASE_DN"
	SettingUserClaim       = "LDAP_USER_CLAIM"
	SettingUserAttribute   = "LDAP_USER_ATTRIBUTE"
	defaultTimeout         = 5 * time.Second
	defaultMaxConns        = 4
	defaultMapTTL          = 5 * time.Minute
	defaultSizeLimit       = 20
	defaultPersonClass     = "person"
	defaultUserAttribute   = "mail"
	claimUPN, claimMail    = "upn", "mail"
	claimOID               = "oid"
	proxyControlNotListedF = "the directory at %s does not list the Proxied Authorization control (RFC 4370, %s) in its root DSE, so it cannot apply your own access rules; " +
		"the fix is on the directory server: use one that supports proxied authorization (OpenLDAP with authz-policy and authzTo on the bot's entry, 389 Directory Server with proxy ACIs); Active Directory does not support it"
)

// SecretFunc returns the current value of a named Key Vault secret (secrets.Func).
type SecretFunc func(ctx context.Context, name string) (string, error)

// Config describes the directory and the bot's credential. A complete example (settings):
//
//	LDAP_URL=ldaps://ldap.contoso.example:636          # or ldap://…:389 (StartTLS is then required)
//	LDAP_BASE_DN=dc=contoso,dc=example                 # where `ldap search` and `directory` look
//	LDAP_USER_BASE_DN=ou=people,dc=contoso,dc=example  # where users' entries are (default LDAP_BASE_DN)
//	LDAP_USER_CLAIM=upn                                # upn, mail or oid: the SSO token claim to map
//	LDAP_USER_ATTRIBUTE=mail                           # the attribute holding that claim's value
//	LDAP_CLIENT_CERT_SECRET_NAME=ldap-client-cert      # Key Vault secret: PEM certificate + key (SASL EXTERNAL)
//	# or a simple bind:
//	LDAP_BIND_DN=cn=onbehalf-bot,ou=services,dc=contoso,dc=example
//	LDAP_BIND_PASSWORD_SECRET_NAME=ldap-bind-password  # Key Vault secret
//	LDAP_CA_CERT=-----BEGIN CERTIFICATE-----…          # optional: a private CA for the directory
type Config struct {
	// URL is ldaps://host[:port] or ldap://host[:port] (StartTLS is then always used).
	URL string
	// BaseDN is the subtree searched by the commands.
	BaseDN string
	// UserBaseDN is the subtree holding users' entries (default BaseDN).
	UserBaseDN string
	// UserClaim is the validated SSO token claim that identifies the user: "upn" (default),
	// "mail" or "oid" (the Entra object id, an immutable id).
	UserClaim string
	// UserAttribute is the directory attribute compared with the claim (default "mail").
	UserAttribute string
	// PersonClass is the object class of people (default "person").
	PersonClass string

	// BindDN and BindPasswordSecret select a simple bind; ClientCertSecret (a PEM certificate
	// and private key) selects SASL EXTERNAL over TLS. Exactly one of the two is set.
	BindDN             string
	BindPasswordSecret string
	ClientCertSecret   string
	// Secret reads the secrets above (Key Vault). Required.
	Secret SecretFunc
	// RootCAs verifies the directory's certificate (nil: the system pool).
	RootCAs *x509.CertPool

	// AllowPlain permits ldap:// without StartTLS. Tests only; the settings refuse it in Azure.
	AllowPlain bool
	// Timeout bounds each dial and operation (default 5 s); a hung directory costs a turn at
	// most this long per connection tried.
	Timeout time.Duration
	// MaxConns bounds the idle connections kept (default 4).
	MaxConns int
	// MapTTL is how long a user's mapped DN is remembered (default 5 minutes).
	MapTTL time.Duration
	// SizeLimit bounds the entries one search returns (default 20).
	SizeLimit int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Audit records each operation made as a user (nil: none recorded).
	Audit *audit.Recorder
}

// SettingError is a configuration problem an operator must fix; Setting names the setting.
type SettingError struct {
	Setting string
	Reason  string
	Err     error
}

func (e *SettingError) Error() string {
	s := "ldap: " + e.Setting + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SettingError) Unwrap() error { return e.Err }

func (c *Config) withDefaults() (*Config, error) {
	cc := *c
	u, err := url.Parse(cc.URL)
	if err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps") {
		return nil, &SettingError{Setting: SettingURL, Reason: "must be ldaps://host[:port] or ldap://host[:port]"}
	}
	if cc.BaseDN == "" {
		return nil, &SettingError{Setting: SettingBaseDN, Reason: "required"}
	}
	if cc.UserBaseDN == "" {
		cc.UserBaseDN = cc.BaseDN
	}
	switch strings.ToLower(cc.UserClaim) {
	case "":
		cc.UserClaim = claimUPN
	case claimUPN, claimMail, claimOID:
		cc.UserClaim = strings.ToLower(cc.UserClaim)
	default:
		return nil, &SettingError{Setting: SettingUserClaim, Reason: "must be upn, mail or oid"}
	}
	if cc.UserAttribute == "" {
		cc.UserAttribute = defaultUserAttribute
	}
	if !isAttributeName(cc.UserAttribute) {
		return nil, &SettingError{Setting: SettingUserAttribute, Reason: "not an attribute name"}
	}
	if cc.PersonClass == "" {
		cc.PersonClass = defaultPersonClass
	}
	if !isAttributeName(cc.PersonClass) {
		return nil, &SettingError{Setting: "PersonClass", Reason: "not an object class name"}
	}
	switch {
	case cc.ClientCertSecret != "" && cc.BindDN != "":
		return nil, &SettingError{Setting: SettingBindDN, Reason: "set either " + SettingClientCert + " (SASL EXTERNAL) or " + SettingBindDN + " (simple bind), not both"}
	case cc.ClientCertSecret == "" && cc.BindDN == "":
		return nil, &SettingError{Setting: SettingClientCert, Reason: "the bot needs a credential: set " + SettingClientCert + " or " + SettingBindDN + " with " + SettingBindPassword}
	case cc.BindDN != "" && cc.BindPasswordSecret == "":
		return nil, &SettingError{Setting: SettingBindPassword, Reason: "required with " + SettingBindDN}
	}
	if cc.Secret == nil {
		return nil, errors.New("ldap: Config.Secret is required")
	}
	if cc.Timeout <= 0 {
		cc.Timeout = defaultTimeout
	}
	if cc.MaxConns <= 0 {
		cc.MaxConns = defaultMaxConns
	}
	if cc.MapTTL <= 0 {
		cc.MapTTL = defaultMapTTL
	}
	if cc.SizeLimit <= 0 {
		cc.SizeLimit = defaultSizeLimit
	}
	if cc.Now == nil {
		cc.Now = time.Now
	}
	return &cc, nil
}

// isAttributeName accepts attribute descriptors and OIDs (RFC 4512 section 1.4), so settings
// can never smuggle filter syntax.
func isAttributeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case (r >= '0' && r <= '9') || r == '-' || r == '.':
			if i == 0 && r == '-' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// tlsConfig is the client TLS configuration for host, with the client certificate when the
// bot uses SASL EXTERNAL.
func (d *Directory) tlsConfig(ctx context.Context, host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	if d.cfg.ClientCertSecret != "" {
		pemText, err := d.cfg.Secret(ctx, d.cfg.ClientCertSecret)
		if err != nil {
			return nil, &SettingError{Setting: SettingClientCert, Reason: "cannot read the Key Vault secret", Err: err}
		}
		cert, err := tls.X509KeyPair([]byte(pemText), []byte(pemText))
		if err != nil {
			return nil, &SettingError{Setting: SettingClientCert, Reason: "the secret is not a PEM certificate with its private key"}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
