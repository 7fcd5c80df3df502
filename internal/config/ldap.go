package config

import (
	"crypto/x509"
	"net/url"
	"regexp"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// DefaultLDAPBindPasswordSecretName is the Key Vault secret holding the bot's LDAP bind password.
const DefaultLDAPBindPasswordSecretName = "ldap-bind-password"

// LDAP holds the settings of the legacy LDAP connector; it is off without LDAP_URL.
//
// A directory reached over LDAPS, the bot authenticating with a client certificate kept in
// TOKENSTORE_KEYVAULT_URL's vault (a Key Vault certificate's secret, PEM):
//
//	LDAP_URL=ldaps://ldap.contoso.example
//	LDAP_BASE_DN=dc=contoso,dc=example
//	LDAP_USER_BASE_DN=ou=people,dc=contoso,dc=example
//	LDAP_USER_CLAIM=upn
//	LDAP_USER_ATTRIBUTE=mail
//	LDAP_CLIENT_CERT_SECRET_NAME=ldap-client-cert
type LDAP struct {
	// URL is ldaps://host[:port] or ldap://host[:port] (StartTLS is then required) (LDAP_URL).
	URL string
	// BaseDN is where the commands search (LDAP_BASE_DN).
	BaseDN string
	// UserBaseDN is where users' entries are (LDAP_USER_BASE_DN, default LDAP_BASE_DN).
	UserBaseDN string
	// UserClaim is the validated SSO token claim mapped to an entry: upn, mail or oid (LDAP_USER_CLAIM).
	UserClaim string
	// UserAttribute is the entry attribute holding that claim's value (LDAP_USER_ATTRIBUTE, default mail).
	UserAttribute string
	// BindDN is the bot's entry for a simple bind (LDAP_BIND_DN).
	BindDN string
	// BindPasswordSecretName is the Key Vault secret with the bind password (LDAP_BIND_PASSWORD_SECRET_NAME).
	BindPasswordSecretName string
	// BindPassword is a local-development-only password instead of Key Vault (LDAP_BIND_PASSWORD).
	BindPassword string
	// ClientCertSecretName is the Key Vault secret with the bot's PEM certificate and key for
	// SASL EXTERNAL (LDAP_CLIENT_CERT_SECRET_NAME).
	ClientCertSecretName string
	// CACert is PEM of the CA that issued the directory's certificate, when it is private (LDAP_CA_CERT).
	CACert string
	// AllowPlain permits ldap:// to a loopback host without TLS, locally only (LDAP_ALLOW_PLAIN).
	AllowPlain bool
}

// Configured reports whether the LDAP connector is on.
func (l LDAP) Configured() bool { return l.URL != "" }

var ldapSettings = []string{"LDAP_BASE_DN", "LDAP_USER_BASE_DN", "LDAP_USER_CLAIM", "LDAP_USER_ATTRIBUTE", "LDAP_BIND_DN",
	"LDAP_BIND_PASSWORD_SECRET_NAME", "LDAP_BIND_PASSWORD", "LDAP_CLIENT_CERT_SECRET_NAME", "LDAP_CA_CERT", "LDAP_ALLOW_PLAIN"}

// ldap reads and checks the LDAP settings.
func (r *reader) ldap(c *Config) {
	l := LDAP{
		URL:                    r.str("LDAP_URL"),
		BaseDN:                 r.str("LDAP_BASE_DN"),
		UserBaseDN:             r.str("LDAP_USER_BASE_DN"),
		UserClaim:              strings.ToLower(r.strDefault("LDAP_USER_CLAIM", "upn")),
		UserAttribute:          r.strDefault("LDAP_USER_ATTRIBUTE", "mail"),
		BindDN:                 r.str("LDAP_BIND_DN"),
		BindPasswordSecretName: r.str("LDAP_BIND_PASSWORD_SECRET_NAME"),
		BindPassword:           r.getenv("LDAP_BIND_PASSWORD"),
		ClientCertSecretName:   r.str("LDAP_CLIENT_CERT_SECRET_NAME"),
		CACert:                 r.str("LDAP_CA_CERT"),
		AllowPlain:             r.boolean("LDAP_ALLOW_PLAIN"),
	}
	if l.URL == "" {
		for _, name := range ldapSettings {
			if r.str(name) != "" && !r.bad[name] {
				r.fail(name, "set without LDAP_URL: the LDAP connector is off; set LDAP_URL or remove this setting")
			}
		}
		return
	}
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ldaps" && u.Scheme != "ldap") || (u.Path != "" && u.Path != "/"):
		r.fail("LDAP_URL", "must be ldaps://host[:port] or ldap://host[:port] (StartTLS is then required)")
	case l.AllowPlain && (u.Scheme != "ldap" || !isLoopback(u.Hostname())):
		r.fail("LDAP_ALLOW_PLAIN", "plain LDAP is accepted only for ldap://127.0.0.1 or localhost, for local development")
	}
	for name, dn := range map[string]string{"LDAP_BASE_DN": l.BaseDN, "LDAP_USER_BASE_DN": l.UserBaseDN, "LDAP_BIND_DN": l.BindDN} {
		if dn == "" {
			continue
		}
		if _, err := goldap.ParseDN(dn); err != nil {
			r.fail(name, "not a valid DN (for example dc=contoso,dc=example)")
		}
	}
	if l.BaseDN == "" {
		r.fail("LDAP_BASE_DN", "required with LDAP_URL: the subtree the commands search (for example dc=contoso,dc=example)")
	}
	if l.UserClaim != "upn" && l.UserClaim != "mail" && l.UserClaim != "oid" {
		r.fail("LDAP_USER_CLAIM", "must be upn, mail or oid: the sign-in token claim that identifies the user's entry")
	}
	if !attributeNameRE.MatchString(l.UserAttribute) {
		r.fail("LDAP_USER_ATTRIBUTE", "must be an attribute name such as mail, userPrincipalName or employeeNumber")
	}
	switch {
	case l.BindDN != "" && l.ClientCertSecretName != "":
		r.fail("LDAP_BIND_DN", "set either LDAP_CLIENT_CERT_SECRET_NAME (SASL EXTERNAL, preferred) or LDAP_BIND_DN (simple bind), not both")
	case l.BindDN == "" && l.ClientCertSecretName == "" && !r.bad["LDAP_BIND_DN"]:
		r.fail("LDAP_CLIENT_CERT_SECRET_NAME", "the bot needs a directory credential: set LDAP_CLIENT_CERT_SECRET_NAME (a Key Vault certificate, SASL EXTERNAL) or LDAP_BIND_DN with LDAP_BIND_PASSWORD_SECRET_NAME")
	case l.BindDN == "" && (l.BindPasswordSecretName != "" || l.BindPassword != ""):
		r.fail("LDAP_BIND_DN", "required with LDAP_BIND_PASSWORD_SECRET_NAME or LDAP_BIND_PASSWORD")
	}
	if l.BindDN != "" && l.BindPasswordSecretName == "" {
		l.BindPasswordSecretName = DefaultLDAPBindPasswordSecretName
	}
	vault := c.TokenStore.KeyVaultURL != ""
	if l.BindDN != "" && l.BindPassword == "" && !vault && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
		r.fail("LDAP_BIND_PASSWORD_SECRET_NAME", "the bind password is read from Key Vault: set TOKENSTORE_KEYVAULT_URL (or LDAP_BIND_PASSWORD for local development)")
	}
	if l.ClientCertSecretName != "" && !vault && !r.bad["TOKENSTORE_KEYVAULT_URL"] {
		r.fail("LDAP_CLIENT_CERT_SECRET_NAME", "the client certificate is read from Key Vault: set TOKENSTORE_KEYVAULT_URL")
	}
	if l.CACert != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(l.CACert)) {
		r.fail("LDAP_CA_CERT", "must be one or more PEM certificates (-----BEGIN CERTIFICATE-----)")
	}
	if c.InAzure {
		if l.BindPassword != "" {
			r.fail("LDAP_BIND_PASSWORD", "refused when running in Azure: the password comes from Key Vault (LDAP_BIND_PASSWORD_SECRET_NAME in TOKENSTORE_KEYVAULT_URL's vault)")
		}
		if l.AllowPlain {
			r.fail("LDAP_ALLOW_PLAIN", "refused when running in Azure: use ldaps:// or StartTLS")
		}
	}
	c.LDAP = l
}

// attributeNameRE is an attribute descriptor (RFC 4512 section 1.4) or a numeric OID.
var attributeNameRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(\.[0-9]+)+)$`)
