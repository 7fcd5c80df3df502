package ldap_test

import (
	"context"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

// The user's entry is found from the configured claim of the validated token; unmapped and
// ambiguous users are told apart; a claim value is an assertion value, never filter syntax.
func TestMapUserFromTokenClaims(t *testing.T) {
	srv := slapd.Start(t)
	byUPN := open(t, config(srv))
	oidCfg := config(srv)
	oidCfg.UserClaim, oidCfg.UserAttribute = "oid", "employeeNumber"
	byOID := open(t, oidCfg)
	mailCfg := config(srv)
	mailCfg.UserClaim = "mail"
	byMail := open(t, mailCfg)

	cases := []struct {
		name string
		d    *ldap.Directory
		id   ldap.Identity
		want string
		err  error
	}{
		{"upn to mail", byUPN, ldap.Identity{UPN: "alice@contoso.example"}, slapd.AliceDN, nil},
		{"upn is case-insensitive", byUPN, ldap.Identity{UPN: "Bob@Contoso.Example"}, slapd.BobDN, nil},
		{"oid to employeeNumber", byOID, ldap.Identity{ObjectID: slapd.BobOID, UPN: "alice@contoso.example"}, slapd.BobDN, nil},
		{"mail claim", byMail, ldap.Identity{Mail: "alice@contoso.example", UPN: "bob@contoso.example"}, slapd.AliceDN, nil},
		{"mail claim missing", byMail, ldap.Identity{UPN: "bob@contoso.example"}, "", ldap.ErrUnmapped},
		{"no such user", byUPN, ldap.Identity{UPN: "eve@contoso.example"}, "", ldap.ErrUnmapped},
		{"outside the user base", byUPN, ldap.Identity{UPN: "admin@contoso.example"}, "", ldap.ErrUnmapped},
		{"contractor outside the user base", byOID, ldap.Identity{ObjectID: slapd.MalloryOID}, "", ldap.ErrUnmapped},
		{"two entries share the mail", byUPN, ldap.Identity{UPN: "shared@contoso.example"}, "", ldap.ErrAmbiguous},
		{"wildcard claim", byUPN, ldap.Identity{UPN: "*"}, "", ldap.ErrUnmapped},
		{"filter injection in a claim", byUPN, ldap.Identity{UPN: "x)(|(mail=*"}, "", ldap.ErrUnmapped},
		{"NUL in a claim", byUPN, ldap.Identity{UPN: "bob@contoso.example\x00x"}, "", ldap.ErrUnmapped},
		{"empty claim", byUPN, ldap.Identity{UPN: " "}, "", ldap.ErrUnmapped},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.d.MapUser(context.Background(), c.id)
			if c.err != nil {
				wantErr(t, err, c.err)
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("mapped to %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// A mapping is remembered for MapTTL, then looked up again.
func TestMapUserIsRemembered(t *testing.T) {
	srv := slapd.Start(t)
	now := time.Unix(1_800_000_000, 0)
	cfg := config(srv)
	cfg.Now = func() time.Time { return now }
	cfg.MapTTL = time.Minute
	d := open(t, cfg)
	id := ldap.Identity{UPN: "alice@contoso.example"}
	if _, err := d.MapUser(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if dn, err := d.MapUser(context.Background(), id); err != nil || dn != slapd.AliceDN {
		t.Fatalf("remembered mapping: %q %v", dn, err)
	}
	now = now.Add(2 * time.Minute)
	_, err := d.MapUser(context.Background(), id)
	wantErr(t, err, ldap.ErrUnavailable)
}
