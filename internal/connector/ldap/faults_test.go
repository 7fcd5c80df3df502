package ldap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

// slapd stopped mid-session: the next operation reports ErrUnavailable promptly; once slapd is
// back the connector recovers on its own (the dead pooled connection is replaced).
func TestDirectoryStoppedMidSessionThenRecovers(t *testing.T) {
	srv := slapd.Start(t)
	cfg := config(srv)
	cfg.Timeout = 2 * time.Second
	d := open(t, cfg)
	ctx := context.Background()
	if _, err := d.Search(ctx, slapd.BobDN, "bob"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err := d.Search(ctx, slapd.BobDN, "bob")
	wantErr(t, err, ldap.ErrUnavailable)
	_, err = d.WhoAmI(ctx, slapd.BobDN)
	wantErr(t, err, ldap.ErrUnavailable)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("unavailable took %s", time.Since(start))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	r, err := d.Search(ctx, slapd.BobDN, "bob")
	if err != nil || len(r.Entries) != 1 {
		t.Fatalf("after restart: %v %+v", err, r)
	}
}

// A wrong service credential names the setting to fix; the secret never appears in the error.
func TestWrongServiceCredentialNamesTheSetting(t *testing.T) {
	srv := slapd.Start(t)
	cases := []struct {
		name    string
		mod     func(*ldap.Config)
		setting string
	}{
		{"wrong password", func(c *ldap.Config) { c.Secret = secrets{"ldap-bind-password": "not-the-password"}.get }, ldap.SettingBindPassword},
		{"missing secret", func(c *ldap.Config) { c.Secret = secrets{}.get }, ldap.SettingBindPassword},
		{"empty password", func(c *ldap.Config) { c.Secret = secrets{"ldap-bind-password": ""}.get }, ldap.SettingBindPassword},
		{"unknown bind DN", func(c *ldap.Config) { c.BindDN = "cn=nobody,ou=services," + slapd.Base }, ldap.SettingBindPassword},
		{"malformed bind DN", func(c *ldap.Config) { c.BindDN = "nobody" }, ldap.SettingBindDN},
		{"untrusted certificate", func(c *ldap.Config) { c.RootCAs = nil }, ldap.SettingCACert},
		{"untrusted certificate over LDAPS", func(c *ldap.Config) { c.RootCAs, c.URL = nil, srv.LDAPSURL() }, ldap.SettingCACert},
		{"client certificate secret is not PEM", func(c *ldap.Config) {
			c.BindDN, c.ClientCertSecret, c.Secret = "", "ldap-client-cert", secrets{"ldap-client-cert": "garbage"}.get
		}, ldap.SettingClientCert},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(srv)
			c.mod(&cfg)
			d := open(t, cfg)
			err := d.Check(context.Background())
			var se *ldap.SettingError
			if !errors.As(err, &se) || se.Setting != c.setting {
				t.Fatalf("error %v, want a setting error naming %s", err, c.setting)
			}
			if !strings.Contains(err.Error(), c.setting) || strings.Contains(err.Error(), "not-the-password") {
				t.Fatalf("message %q", err)
			}
			// Commands get the same error, not a crash or a bind as someone else.
			_, err = d.Search(context.Background(), slapd.BobDN, "bob")
			if !errors.As(err, &se) {
				t.Fatalf("search: %v", err)
			}
		})
	}
}

// SASL EXTERNAL with the client certificate from the secret: the bot binds as its service
// entry (slapd maps the subject) and proxies exactly as with a simple bind.
func TestClientCertificateBind(t *testing.T) {
	srv := slapd.Start(t)
	for _, url := range []string{srv.LDAPSURL(), srv.URL()} {
		cfg := config(srv)
		cfg.URL = url
		cfg.BindDN, cfg.BindPasswordSecret = "", ""
		cfg.ClientCertSecret = "ldap-client-cert"
		cfg.Secret = secrets{"ldap-client-cert": string(srv.ClientCertPEM()) + string(srv.ClientKeyPEM())}.get
		d := open(t, cfg)
		if err := d.Check(context.Background()); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		who, err := d.WhoAmI(context.Background(), slapd.AliceDN)
		if err != nil || who != "dn:"+slapd.AliceDN {
			t.Fatalf("%s: whoami %q %v", url, who, err)
		}
		if got := dns(mustSearch(t, d, slapd.BobDN, "salary")); len(got) != 0 {
			t.Fatalf("%s: Bob reads %v", url, got)
		}
		// The bot's own identity is known from Who am I?, so it is never a proxy target.
		_, err = d.Search(context.Background(), slapd.ServiceDN, "bob")
		wantErr(t, err, ldap.ErrProxyDenied)
	}
	if !strings.Contains(srv.Log(), "mech=EXTERNAL") {
		t.Fatal("slapd saw no SASL EXTERNAL bind")
	}
}

// A server whose root DSE does not list the control is refused with a message naming the fix,
// and no data operation is attempted.
func TestControlNotListedRefusesCommands(t *testing.T) {
	srv := slapd.StartWith(t, slapd.Options{HideProxyControl: true})
	d := open(t, config(srv))
	err := d.Check(context.Background())
	wantErr(t, err, ldap.ErrControlUnsupported)
	for _, want := range []string{ldap.ProxiedAuthzOID, "authzTo", "Active Directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %s", err, want)
		}
	}
	_, err = d.Search(context.Background(), slapd.BobDN, "bob")
	wantErr(t, err, ldap.ErrControlUnsupported)
	_, err = d.MapUser(context.Background(), ldap.Identity{UPN: "bob@contoso.example"})
	wantErr(t, err, ldap.ErrControlUnsupported)
	if strings.Contains(srv.Log(), "mail=bob") || strings.Contains(srv.Log(), "cn=*bob*") {
		t.Fatal("a search reached the directory although the control is not supported")
	}
}

// ldap:// always upgrades with StartTLS unless plain LDAP is allowed (tests only): the
// plain-text bind never happens.
func TestPlainLDAPNeedsStartTLS(t *testing.T) {
	srv := slapd.Start(t)
	d := open(t, config(srv))
	if err := d.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := srv.Log()
	if !strings.Contains(log, "STARTTLS") || strings.Contains(log, "bind_ssf=0 ssf=0") {
		t.Fatalf("bind without TLS:\n%s", log)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	base := ldap.Config{URL: "ldaps://ldap.example", BaseDN: "dc=example", BindDN: "cn=bot", BindPasswordSecret: "p", Secret: secrets{}.get}
	cases := map[string]struct {
		mod     func(*ldap.Config)
		setting string
	}{
		"http URL":           {func(c *ldap.Config) { c.URL = "https://ldap.example" }, ldap.SettingURL},
		"no base":            {func(c *ldap.Config) { c.BaseDN = "" }, ldap.SettingBaseDN},
		"bad claim":          {func(c *ldap.Config) { c.UserClaim = "name" }, ldap.SettingUserClaim},
		"attribute injected": {func(c *ldap.Config) { c.UserAttribute = "mail)(uid=*" }, ldap.SettingUserAttribute},
		"no credential":      {func(c *ldap.Config) { c.BindDN = "" }, ldap.SettingClientCert},
		"both credentials":   {func(c *ldap.Config) { c.ClientCertSecret = "cert" }, ldap.SettingBindDN},
		"no password":        {func(c *ldap.Config) { c.BindPasswordSecret = "" }, ldap.SettingBindPassword},
	}
	for name, c := range cases {
		cfg := base
		c.mod(&cfg)
		_, err := ldap.Open(cfg)
		var se *ldap.SettingError
		if !errors.As(err, &se) || se.Setting != c.setting {
			t.Errorf("%s: %v, want %s", name, err, c.setting)
		}
	}
	if _, err := ldap.Open(base); err != nil {
		t.Fatal(err)
	}
}

// A hung directory (accepting connections, answering nothing) costs a bounded wait, not a
// stuck turn: pooled and new connections both give up within the configured timeout.
func TestHungDirectoryIsUnavailableWithinTheTimeout(t *testing.T) {
	srv := slapd.Start(t)
	cfg := config(srv)
	cfg.Timeout = time.Second
	d := open(t, cfg)
	ctx := context.Background()
	if _, err := d.Search(ctx, slapd.BobDN, "bob"); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	start := time.Now()
	_, err := d.Search(ctx, slapd.BobDN, "bob")
	wantErr(t, err, ldap.ErrUnavailable)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a hung directory held the search for %s", took)
	}
	// A fresh connector (no pooled connection) is bounded too: TCP connects, TLS never answers.
	fresh := open(t, cfg)
	start = time.Now()
	err = fresh.Check(ctx)
	wantErr(t, err, ldap.ErrUnavailable)
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("a hung directory held the connection for %s", took)
	}
	srv.Resume()
	if _, err := d.Search(ctx, slapd.BobDN, "bob"); err != nil {
		t.Fatalf("after resume: %v", err)
	}
}
