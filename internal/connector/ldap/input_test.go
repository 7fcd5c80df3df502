package ldap_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

// Filter metacharacters, NUL bytes and very long input change nothing: they match only
// entries that literally contain them (none here), or are refused before anything is sent.
func TestInjectionAttemptsMatchNothingExtra(t *testing.T) {
	srv := slapd.Start(t)
	d := open(t, config(srv))
	for _, text := range []string{
		"*)(uid=*", "*", "**", `\2a`, `\00`, "*)(|(objectClass=*)", "bob)(description=*",
		"x*)(objectClass=*))(|(cn=*", "salary)(|(cn=*", "(cn=*)", ")(", `\*`,
	} {
		for _, as := range []string{slapd.BobDN, slapd.AliceDN} {
			for name, f := range map[string]func(context.Context, string, string) (*ldap.Result, error){"search": d.Search, "people": d.People} {
				r, err := f(context.Background(), as, text)
				if errors.Is(err, ldap.ErrBadInput) {
					continue
				}
				if err != nil {
					t.Fatalf("%s %q as %s: %v", name, text, as, err)
				}
				if len(r.Entries) != 0 {
					t.Errorf("%s %q as %s matched %v", name, text, as, dns(r))
				}
			}
		}
	}
	for _, text := range []string{strings.Repeat("a", 201), strings.Repeat("ab ", 7), "a", "", "\xff\xfe", "bo\x00b", "bob\n", "\x1bbob"} {
		_, err := d.Search(context.Background(), slapd.BobDN, text)
		wantErr(t, err, ldap.ErrBadInput)
	}
}
