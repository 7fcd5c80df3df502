package config

import (
	"strings"
	"testing"
)

func TestLDAPSettings(t *testing.T) {
	base := map[string]string{"BOT_ALLOW_ANONYMOUS": "true"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	ok := []string{"LDAP_URL", "ldaps://ldap.contoso.example", "LDAP_BASE_DN", "dc=contoso,dc=example", "LDAP_BIND_DN", "cn=bot,dc=contoso,dc=example", "LDAP_BIND_PASSWORD", "pw"}
	c, err := Load(env(with(ok...)))
	if err != nil {
		t.Fatal(err)
	}
	if c.LDAP.UserClaim != "upn" || c.LDAP.UserAttribute != "mail" || c.LDAP.BindPasswordSecretName != DefaultLDAPBindPasswordSecretName {
		t.Fatalf("defaults %+v", c.LDAP)
	}
	cases := []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"setting without LDAP_URL", with("LDAP_BASE_DN", "dc=x"), "LDAP_BASE_DN"},
		{"http URL", with(append(ok, "LDAP_URL", "https://ldap.contoso.example")...), "LDAP_URL"},
		{"no base", with(append(ok, "LDAP_BASE_DN", "")...), "LDAP_BASE_DN"},
		{"malformed base", with(append(ok, "LDAP_BASE_DN", "contoso")...), "LDAP_BASE_DN"},
		{"bad claim", with(append(ok, "LDAP_USER_CLAIM", "name")...), "LDAP_USER_CLAIM"},
		{"attribute with filter syntax", with(append(ok, "LDAP_USER_ATTRIBUTE", "mail)(uid=*")...), "LDAP_USER_ATTRIBUTE"},
		{"no credential", with("LDAP_URL", "ldaps://l", "LDAP_BASE_DN", "dc=x"), "LDAP_CLIENT_CERT_SECRET_NAME"},
		{"two credentials", with(append(ok, "LDAP_CLIENT_CERT_SECRET_NAME", "c")...), "LDAP_BIND_DN"},
		{"password without vault", with(append(ok, "LDAP_BIND_PASSWORD", "")...), "LDAP_BIND_PASSWORD_SECRET_NAME"},
		{"certificate without vault", with("LDAP_URL", "ldaps://l", "LDAP_BASE_DN", "dc=x", "LDAP_CLIENT_CERT_SECRET_NAME", "c"), "LDAP_CLIENT_CERT_SECRET_NAME"},
		{"CA not PEM", with(append(ok, "LDAP_CA_CERT", "nope")...), "LDAP_CA_CERT"},
		{"plain to a remote host", with(append(ok, "LDAP_URL", "ldap://ldap.contoso.example", "LDAP_ALLOW_PLAIN", "true")...), "LDAP_ALLOW_PLAIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("want a problem naming %s, got %v", tc.setting, err)
			}
		})
	}
	azure := map[string]string{"WEBSITE_SITE_NAME": "f", "BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID,
		"TOKENSTORE_TABLE_ENDPOINT": "https://st.table.core.windows.net", "TOKENSTORE_KEYVAULT_URL": "https://kv.vault.azure.net",
		"LDAP_URL": "ldap://127.0.0.1:389", "LDAP_BASE_DN": "dc=x", "LDAP_BIND_DN": "cn=bot,dc=x", "LDAP_BIND_PASSWORD": "pw", "LDAP_ALLOW_PLAIN": "true"}
	_, err = Load(env(azure))
	for _, name := range []string{"LDAP_BIND_PASSWORD", "LDAP_ALLOW_PLAIN"} {
		if err == nil || !strings.Contains(err.Error(), name+": refused when running in Azure") {
			t.Errorf("want %s refused in Azure, got %v", name, err)
		}
	}
}
