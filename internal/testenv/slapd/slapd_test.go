package slapd_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

func ldapsearch(t *testing.T, s *slapd.Server, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"-x", "-H", s.URL(), "-ZZ", "-D", slapd.ServiceDN, "-w", slapd.ServicePassword, "-LLL"}, args...)
	cmd := exec.Command("ldapsearch", full...)
	cmd.Env = append(cmd.Environ(), "LDAPTLS_CACERT="+s.Dir()+"/ca.pem")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The server answers over StartTLS, lists the proxied authorization control and lets the
// service proxy for people only.
func TestServerProxiesOnlyForPeople(t *testing.T) {
	if _, err := exec.LookPath("ldapsearch"); err != nil {
		t.Skip("ldapsearch (ldap-utils) not installed")
	}
	s := slapd.Start(t)
	out, err := ldapsearch(t, s, "-b", "", "-s", "base", "supportedControl")
	if err != nil || !strings.Contains(out, "2.16.840.1.113730.3.4.18") {
		t.Fatalf("root DSE: %v\n%s\n%s", err, out, s.Log())
	}
	out, err = ldapsearch(t, s, "-e", "!authzid=dn:"+slapd.BobDN, "-b", slapd.Base, "(objectClass=document)", "dn")
	if err != nil || strings.Contains(out, "hr-record") {
		t.Fatalf("Bob reads HR: %v\n%s", err, out)
	}
	out, err = ldapsearch(t, s, "-e", "!authzid=dn:"+slapd.AliceDN, "-b", slapd.Base, "(objectClass=document)", "dn")
	if err != nil || !strings.Contains(out, "hr-record-bob") {
		t.Fatalf("Alice cannot read HR: %v\n%s", err, out)
	}
	out, err = ldapsearch(t, s, "-e", "!authzid=dn:"+slapd.AdminDN, "-b", slapd.Base, "(objectClass=*)", "dn")
	if err == nil {
		t.Fatalf("proxying for admin accepted:\n%s", out)
	}
	t.Log(out)
}
