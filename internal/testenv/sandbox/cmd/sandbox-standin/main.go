// Command sandbox-standin runs the Microsoft side of the local sandbox (make dev): the Entra,
// Bot Framework channel, token service and Graph stand-ins with the users Alice and Bob, and
// the channel bridge the Agents Playground talks to (package sandbox). It is a development
// tool built from internal/testenv, never part of the handler binary.
//
//	sandbox-standin -addr 127.0.0.1:3980 -bot http://127.0.0.1:3978/api/messages -dir .dev/sandbox
//
// In -dir it writes env (the handler's settings, as shell assignments; mode 0600), ca.pem (the
// stand-ins' CA certificate) and one directory per user holding that user's
// .m365agentsplayground.yml; then it runs until interrupted.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/onbehalf/onbehalf/internal/testenv/sandbox"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3980", "the bridge's listen address (loopback only)")
	bot := flag.String("bot", "http://127.0.0.1:3978/api/messages", "the handler's messaging endpoint")
	dir := flag.String("dir", ".dev/sandbox", "where to write env, ca.pem and the Playground configurations")
	flag.Parse()

	s, err := sandbox.Start(sandbox.Options{Addr: *addr, BotEndpoint: *bot})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox-standin:", err)
		os.Exit(2)
	}
	defer s.Close()
	if err := write(s, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox-standin:", err)
		os.Exit(1)
	}
	fmt.Printf("sandbox: bridge on %s; users:", s.URL)
	for _, u := range s.Users {
		fmt.Printf(" %s (%s)", u.Entra.Name, u.Entra.UPN)
	}
	fmt.Println()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

func write(s *sandbox.Sandbox, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), s.CertificatePEM(), 0o644); err != nil {
		return err
	}
	for _, u := range s.Users {
		d := filepath.Join(dir, strings.TrimPrefix(u.PlaygroundID, "sandbox-"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, ".m365agentsplayground.yml"), []byte(s.PlaygroundConfig(u)), 0o644); err != nil {
			return err
		}
	}
	env := s.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	// Written last and renamed into place: its presence says the sandbox is ready.
	tmp := filepath.Join(dir, ".env.tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "env"))
}
