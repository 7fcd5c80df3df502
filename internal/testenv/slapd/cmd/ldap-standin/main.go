// Command ldap-standin runs the test directory of internal/testenv/slapd (a real slapd) for
// local development and writes the handler's LDAP_* settings, as shell assignments, to the
// file named by -env (or standard output). It stops slapd on SIGINT/SIGTERM; slapd also dies
// with this process.
//
//	go run ./internal/testenv/slapd/cmd/ldap-standin -env .dev/ldap.env
//
// Sign in as a Teams user whose UPN is alice@contoso.example or bob@contoso.example to see the
// two users' different answers.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

func main() {
	envFile := flag.String("env", "", "write the LDAP_* settings here (default: standard output)")
	flag.Parse()
	// Before slapd starts, so an early signal still removes its folder.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	srv, err := slapd.Launch(slapd.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ldap-standin:", err)
		os.Exit(1)
	}
	defer srv.Close()
	settings := map[string]string{
		"LDAP_URL":            srv.URL(),
		"LDAP_BASE_DN":        slapd.Base,
		"LDAP_USER_BASE_DN":   slapd.PeopleDN,
		"LDAP_USER_CLAIM":     "upn",
		"LDAP_USER_ATTRIBUTE": "mail",
		"LDAP_BIND_DN":        slapd.ServiceDN,
		"LDAP_BIND_PASSWORD":  slapd.ServicePassword,
		"LDAP_CA_CERT":        string(srv.CAPEM()),
	}
	var out io.Writer = os.Stdout
	if *envFile != "" {
		f, err := os.OpenFile(*envFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ldap-standin:", err)
			return
		}
		defer f.Close()
		out = f
	}
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(out, "%s='%s'\n", k, strings.ReplaceAll(settings[k], "'", `'\''`))
	}
	fmt.Fprintf(os.Stderr, "ldap-standin: slapd on %s and %s (folder %s)\n", srv.URL(), srv.LDAPSURL(), srv.Dir())
	<-stop
}
