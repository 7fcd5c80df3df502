// Command atlassian-standin runs the Atlassian stand-in for the local sandbox
// (make dev): a consent page with one button per test user, the token endpoint,
// accessible-resources, /me and the Jira/Confluence subset. It is a development tool, never
// part of the handler binary.
//
//	atlassian-standin -addr 127.0.0.1:8443 -redirect http://127.0.0.1:3978/api/oauth/callback -cert .dev/atlassian.pem
//
// It prints the settings the handler needs (ATLASSIAN_AUTH_URL, ATLASSIAN_API_URL,
// ATLASSIAN_CLIENT_ID and the client secret) and runs until interrupted.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address (loopback only)")
	redirect := flag.String("redirect", "http://127.0.0.1:3978/api/oauth/callback", "the bot's OAuth callback URL")
	cert := flag.String("cert", "", "write the self-signed certificate (PEM) to this file")
	clientID := flag.String("client-id", "sandbox-client", "OAuth client id")
	secret := flag.String("client-secret", "sandbox-secret", "OAuth client secret")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*addr); err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		fmt.Fprintln(os.Stderr, "atlassian-standin: -addr must be a loopback address")
		os.Exit(2)
	}

	s := standin.Start(standin.Options{Addr: *addr, RedirectURIs: []string{*redirect}, ClientID: *clientID, ClientSecret: *secret})
	defer s.Close()
	if *cert != "" {
		if err := os.WriteFile(*cert, s.CertificatePEM(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "atlassian-standin:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("ATLASSIAN_AUTH_URL=%s\nATLASSIAN_API_URL=%s\nATLASSIAN_CLIENT_ID=%s\n# client secret: %s\n", s.URL, s.URL, *clientID, *secret)
	fmt.Printf("# test users: %s (Alice), %s (Bob)\n", standin.Alice, standin.Bob)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
