// Command funchost plays the Azure Functions host's part for the non-HTTP functions during
// make dev (Functions Core Tools cannot be installed here): it polls each queue-triggered
// function's queue and invokes the handler with the custom-handler payload, and fires each
// timer-triggered function every -timer-every (a fixed period, not its NCRONTAB schedule).
//
//	funchost -handler http://127.0.0.1:3978 -queue-connection "$WORK_QUEUE_CONNECTION_STRING" \
//	  -host-json host.json -functions functions
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
)

func main() {
	handler := flag.String("handler", "http://127.0.0.1:3978", "the custom handler's base URL")
	conn := flag.String("queue-connection", "", "queue service connection string (Azurite)")
	hostJSON := flag.String("host-json", "host.json", "host.json")
	dir := flag.String("functions", "functions", "folder of <name>/function.json")
	every := flag.Duration("timer-every", 10*time.Minute, "how often timer functions run")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if err := run(*handler, *conn, *hostJSON, *dir, *every, log); err != nil {
		fmt.Fprintln(os.Stderr, "funchost:", err)
		os.Exit(1)
	}
}

func run(handler, conn, hostJSON, dir string, every time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := azqueue.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		return err
	}
	h := &funchost.Host{HandlerURL: handler, Log: log, PollInterval: 500 * time.Millisecond}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		f, err := funchost.LoadFunction(dir, e.Name())
		if err != nil {
			return err
		}
		tr, err := f.Trigger()
		if err != nil {
			return err
		}
		switch tr.Type {
		case "queueTrigger":
			qf, err := funchost.QueueFunctionFrom(svc, hostJSON, dir, e.Name())
			if err != nil {
				return err
			}
			if _, err := qf.Queue.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "QueueAlreadyExists") {
				return err
			}
			log.Info("polling", slog.String("function", e.Name()), slog.String("queue", tr.QueueName))
			go h.Poll(ctx, qf)
		case "timerTrigger":
			log.Info("timer", slog.String("function", e.Name()), slog.Duration("every", every))
			go func(name, binding string) {
				last := time.Now()
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(every):
					}
					now := time.Now()
					resp, err := h.FireTimer(ctx, name, binding, funchost.TimerStatus{Last: last, Next: now.Add(every), LastUpdated: now})
					if err != nil {
						log.Warn("timer invocation failed", slog.String("function", name), slog.String("error", err.Error()))
					} else {
						log.Info("timer invocation", slog.String("function", name), slog.Any("logs", resp.Logs))
					}
					last = now
				}
			}(e.Name(), tr.Name)
		}
	}
	<-ctx.Done()
	return nil
}
