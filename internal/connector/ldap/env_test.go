package ldap_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

// secrets is a Key Vault stand-in for the connector: name → value.
type secrets map[string]string

func (s secrets) get(_ context.Context, name string) (string, error) {
	v, ok := s[name]
	if !ok {
		return "", fmt.Errorf("secret %q not found", name)
	}
	return v, nil
}

// config is a working simple-bind configuration over StartTLS for srv.
func config(srv *slapd.Server) ldap.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM())
	return ldap.Config{
		URL:                srv.URL(),
		BaseDN:             slapd.Base,
		UserBaseDN:         slapd.PeopleDN,
		UserClaim:          "upn",
		UserAttribute:      "mail",
		BindDN:             slapd.ServiceDN,
		BindPasswordSecret: "ldap-bind-password",
		Secret:             secrets{"ldap-bind-password": slapd.ServicePassword}.get,
		RootCAs:            pool,
	}
}

func open(t testing.TB, cfg ldap.Config) *ldap.Directory {
	t.Helper()
	d, err := ldap.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func dns(r *ldap.Result) []string {
	var out []string
	for _, e := range r.Entries {
		out = append(out, e.DN)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func mustSearch(t *testing.T, d *ldap.Directory, as, text string) *ldap.Result {
	t.Helper()
	r, err := d.Search(context.Background(), as, text)
	if err != nil {
		t.Fatalf("search %q as %s: %v", text, as, err)
	}
	return r
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}
