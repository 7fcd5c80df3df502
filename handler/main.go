// Command onbehalf is the Azure Functions custom handler of the onbehalf Teams bot.
//
//	onbehalf [serve]      serve HTTP on FUNCTIONS_CUSTOMHANDLER_PORT (what host.json runs)
//	onbehalf doctor ...   find SSO and identity misconfigurations (onbehalf doctor --help)
//	onbehalf version      print the version
//
// Settings come from the environment; see local.settings.json.template.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/onbehalf/onbehalf/internal/app"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/doctor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(getenv, stdout, stderr)
	case "doctor":
		return doctor.Main(context.Background(), args, stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "onbehalf", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: onbehalf [serve|doctor|version]")
		return 0
	default:
		fmt.Fprintf(stderr, "onbehalf: unknown command %q (try: serve, doctor, version)\n", cmd)
		return 2
	}
}

func serve(getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "onbehalf: cannot start: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfg.Anonymous {
		log.Warn("ANONYMOUS MODE: inbound requests are NOT authenticated and replies carry no token. " +
			"This is for local development only; set BOT_APP_ID to run for real.")
	}
	now, err := soakClock(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "onbehalf: cannot start: %v\n", err)
		return 2
	}
	a, err := app.New(context.Background(), cfg, app.Options{Log: log, Now: now})
	if err != nil {
		fmt.Fprintf(stderr, "onbehalf: cannot start: %v\n", err)
		return 2
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		fmt.Fprintf(stderr, "onbehalf: cannot listen on port %d: %v\n", cfg.Port, err)
		return 1
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go a.Warm(ctx)
	soakStats(ctx, log, getenv)
	log.Info("listening", slog.String("address", ln.Addr().String()), slog.Bool("anonymous", cfg.Anonymous), slog.String("version", version))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "onbehalf: %v\n", err)
			return 1
		}
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		// Requests answered after a sign-in, and audit records, may still be in progress: let them finish.
		if !a.Wait(shutdown) {
			log.Warn("stopping with background work unfinished")
		}
	}
	return 0
}
