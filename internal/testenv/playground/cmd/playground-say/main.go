// Command playground-say types a message into a running Microsoft 365 Agents
// Playground (the one `make dev` starts) and prints what the bot answers, the
// way its chat window would show it — a headless check that the whole local
// stack works.
//
// Usage:
//
//	go run ./internal/testenv/playground/cmd/playground-say [-url http://127.0.0.1:56150] [-install] [-timeout 20s] [-quiet 1s] help
//
// It exits 1 when the bot refuses the message or no reply arrives in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/playground"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:56150", "base URL of the running Playground")
	install := flag.Bool("install", false, "first send the install events (installationUpdate, conversationUpdate) as the UI does when the chat opens")
	timeout := flag.Duration("timeout", 20*time.Second, "how long to wait for the first reply")
	quiet := flag.Duration("quiet", time.Second, "after a reply, keep printing further replies until none comes for this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: playground-say [flags] MESSAGE\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	text := strings.Join(flag.Args(), " ")
	if text == "" && !*install {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*url, text, *install, *timeout, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "playground-say:", err)
		os.Exit(1)
	}
}

func run(url, text string, install bool, timeout, quiet time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p, err := playground.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer p.Close()
	// Replies from before this run (the Playground buffers them while no client
	// is connected, then flushes them to the first one) must not count; the
	// Playground stamps messages with this machine's clock.
	since := time.Now().Truncate(time.Millisecond)
	fresh := func(m playground.Message) bool {
		return m.Action != playground.ActionTyping && !m.Timestamp.Before(since)
	}
	if install {
		if _, err := p.Install(ctx); err != nil {
			return err
		}
		fmt.Printf("> (installed in %s)\n", p.ConversationID)
	}
	if text != "" {
		x, err := p.Send(ctx, text)
		if err != nil {
			return err
		}
		fmt.Printf("> %s   [bot answered HTTP %d]\n", text, x.Status)
	}
	m, err := p.WaitForReply(ctx, fresh)
	if err != nil {
		return fmt.Errorf("no reply: %w", err)
	}
	for {
		printMessage(m)
		qctx, qcancel := context.WithTimeout(context.Background(), quiet)
		m, err = p.WaitForReply(qctx, fresh)
		qcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func printMessage(m playground.Message) {
	prefix := "<"
	if m.Action == playground.ActionUpdate {
		prefix = "< (updated)"
	}
	if m.Text != "" {
		fmt.Printf("%s %s\n", prefix, m.Text)
	}
	for _, a := range m.Attachments {
		fmt.Printf("%s [attachment %s] %s\n", prefix, a.ContentType, a.Content)
	}
}
