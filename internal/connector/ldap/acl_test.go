package ldap_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

const (
	hrBob   = "cn=hr-record-bob," + slapd.HRDN
	hrAlice = "cn=hr-record-alice," + slapd.HRDN
)

// The same search as Alice (HR) and as Bob returns exactly what slapd's ACLs give each: HR
// records to Alice only, and private attributes to their owner and HR only.
func TestSearchReturnsExactlyWhatEachUserMayRead(t *testing.T) {
	srv := slapd.Start(t)
	d := open(t, config(srv))

	cases := []struct {
		as, query string
		want      []string
	}{
		{slapd.AliceDN, "bob", sorted(slapd.BobDN, hrBob)},
		{slapd.BobDN, "bob", sorted(slapd.BobDN)},
		{slapd.AliceDN, "salary", sorted(hrAlice, hrBob)},
		{slapd.BobDN, "salary", nil},
		{slapd.CarolDN, "salary", nil},
		{slapd.BobDN, "sample", sorted(slapd.CarolDN, "uid=dave,"+slapd.PeopleDN)},
	}
	for _, c := range cases {
		if got := dns(mustSearch(t, d, c.as, c.query)); !slices.Equal(got, c.want) {
			t.Errorf("%q as %s: got %v, want %v", c.query, c.as, got, c.want)
		}
	}
	// Bob never gets an HR record, however he asks.
	for _, q := range []string{"salary", "hr-record", "band", "review bob", "hr"} {
		for _, e := range mustSearch(t, d, slapd.BobDN, q).Entries {
			if strings.HasSuffix(e.DN, slapd.HRDN) {
				t.Errorf("Bob's search %q returned HR record %s", q, e.DN)
			}
		}
	}

	// Private attributes: Bob's home phone to Bob and to HR (Alice), not to Carol.
	phone := func(as string) string {
		r, err := d.People(context.Background(), as, "bob")
		if err != nil || len(r.Entries) != 1 {
			t.Fatalf("people bob as %s: %v %+v", as, err, r)
		}
		if r.Entries[0].Get("mail") != "bob@contoso.example" {
			t.Fatalf("people bob as %s: no mail in %+v", as, r.Entries[0])
		}
		return r.Entries[0].Get("homePhone")
	}
	if got := phone(slapd.BobDN); got != "+1 555 0102" {
		t.Errorf("Bob reads his own home phone as %q", got)
	}
	if got := phone(slapd.AliceDN); got != "+1 555 0102" {
		t.Errorf("HR (Alice) reads Bob's home phone as %q", got)
	}
	if got := phone(slapd.CarolDN); got != "" {
		t.Errorf("Carol reads Bob's home phone %q", got)
	}
}

// The bot's own identity, without the control, sees HR records and private attributes: the
// control is what trims the answer to the user's rights.
func TestWithoutTheControlTheBotSeesMore(t *testing.T) {
	srv := slapd.Start(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM())
	c, err := goldap.DialURL(srv.LDAPSURL(), goldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(slapd.ServiceDN, slapd.ServicePassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(goldap.NewSearchRequest(slapd.Base, goldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(|(cn=*bob*)(mail=*bob*)(uid=*bob*)(title=*bob*)(description=*bob*))", []string{"homePhone"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var bot []string
	for _, e := range res.Entries {
		bot = append(bot, e.DN)
	}
	slices.Sort(bot)
	if want := sorted(slapd.BobDN, hrBob); !slices.Equal(bot, want) {
		t.Fatalf("the bot itself sees %v, want %v", bot, want)
	}

	d := open(t, config(srv))
	asBob := dns(mustSearch(t, d, slapd.BobDN, "bob"))
	if len(asBob) >= len(bot) {
		t.Fatalf("as Bob the bot sees %v, no less than without the control (%v)", asBob, bot)
	}
	// And the proxied search really is Bob's: Alice's private attribute is hidden.
	r, err := d.People(context.Background(), slapd.BobDN, "alice")
	if err != nil || len(r.Entries) != 1 || r.Entries[0].Get("homePhone") != "" {
		t.Fatalf("Bob reads Alice's private attributes: %v %+v", err, r)
	}
}

// The bot may proxy only for entries under ou=people: slapd refuses cn=admin, a contractor and
// a group even when the connector's user base is the whole tree, and the connector says so
// with ErrProxyDenied, for searches and Who am I? alike.
func TestProxyOutsidePeopleIsRefusedBySlapd(t *testing.T) {
	srv := slapd.Start(t)
	cfg := config(srv)
	cfg.UserBaseDN = slapd.Base // the connector's own check lets these through to slapd
	d := open(t, cfg)
	for _, dn := range []string{slapd.AdminDN, slapd.MalloryDN, slapd.HRGroupDN} {
		_, err := d.Search(context.Background(), dn, "bob")
		wantErr(t, err, ldap.ErrProxyDenied)
		_, err = d.WhoAmI(context.Background(), dn)
		wantErr(t, err, ldap.ErrProxyDenied)
	}
	if !strings.Contains(srv.Log(), "err=123") {
		t.Fatal("slapd did not answer authorizationDenied (123)")
	}
	// The refusal did not poison the pooled connection.
	if _, err := d.Search(context.Background(), slapd.BobDN, "bob"); err != nil {
		t.Fatal(err)
	}
}

// The connector itself never asks to act for an entry outside the user base, for the bot's
// own entry, or for something that is not a DN.
func TestProxyTargetsCheckedBeforeSending(t *testing.T) {
	srv := slapd.Start(t)
	cfg := config(srv)
	cfg.UserBaseDN = slapd.Base
	d := open(t, cfg)
	narrow := open(t, config(srv))
	for _, c := range []struct {
		d  *ldap.Directory
		dn string
	}{{narrow, slapd.AdminDN}, {narrow, slapd.MalloryDN}, {narrow, slapd.PeopleDN}, {d, slapd.ServiceDN}, {d, "CN=OnBehalf-Bot, OU=Services,DC=contoso,DC=example"}, {d, "not a dn"}} {
		_, err := c.d.Search(context.Background(), c.dn, "bob")
		wantErr(t, err, ldap.ErrProxyDenied)
	}
}

// Who am I? under the proxy answers with the user's own authorization identity.
func TestWhoAmIUnderTheProxy(t *testing.T) {
	srv := slapd.Start(t)
	d := open(t, config(srv))
	for _, dn := range []string{slapd.AliceDN, slapd.BobDN} {
		got, err := d.WhoAmI(context.Background(), dn)
		if err != nil || got != "dn:"+dn {
			t.Errorf("whoami as %s = %q, %v", dn, got, err)
		}
	}
}
