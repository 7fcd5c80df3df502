// Package e2e runs the built handler binary behind the real Microsoft 365 Agents
// Playground and checks what a person typing in the Playground would see.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/playground"
)

// handlerBin is the onbehalf binary built once for all tests.
var handlerBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "onbehalf-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		handlerBin = filepath.Join(dir, "onbehalf")
		build := exec.Command("go", "build", "-o", handlerBin, "github.com/onbehalf/onbehalf/handler")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build handler: %v\n%s", err, out)
			return 1
		}
		return logcheck.RunMain(m)
	}())
}

// handler is a running onbehalf process.
type handler struct {
	Endpoint string // its /api/messages URL
	outFile  string // its stdout and stderr
}

// output returns what the handler has printed so far.
func (h *handler) output() string {
	b, err := os.ReadFile(h.outFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// startHandler runs the handler binary with exactly env (plus PATH and HOME) on a
// free loopback port, waits until it accepts connections, and stops it at cleanup.
func startHandler(t *testing.T, env map[string]string) *handler {
	t.Helper()
	return startHandlerOn(t, freePort(t), env)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startHandlerOn is startHandler on a given port.
func startHandlerOn(t *testing.T, port int, env map[string]string) *handler {
	t.Helper()

	cmd := exec.Command(handlerBin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	h := &handler{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/api/messages", port), outFile: filepath.Join(t.TempDir(), "handler.log")}
	logcheck.Watch(t, h.output) // registered first: runs after the handler has stopped
	out, err := os.Create(h.outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = out, out
	// Killed by the kernel if this test process dies without stopping it.
	waited, err := testenv.StartChild(cmd)
	if err != nil {
		t.Fatalf("start handler: %v", err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = <-waited; close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("handler output:\n%s", h.output())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return h
		}
		select {
		case <-exited:
			t.Fatalf("handler exited during start-up: %v\n%s", exitErr, h.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler did not listen on port %d: %v\n%s", port, err, h.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPlaygroundGetsHelp is what `make dev` offers a developer: the handler in local
// anonymous mode behind the Playground, where opening the chat shows the welcome
// and typing "help" shows the command list.
func TestPlaygroundGetsHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Agents Playground (Node.js); skipped with -short")
	}
	h := startHandler(t, map[string]string{"BOT_ALLOW_ANONYMOUS": "true"})
	p := playground.Start(t, h.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := p.Install(ctx); err != nil {
		t.Fatalf("open the chat: %v", err)
	}
	welcome, err := p.WaitForReply(ctx, nil)
	if err != nil {
		t.Fatalf("no welcome: %v", err)
	}
	if !strings.Contains(welcome.Text, "help") {
		t.Errorf("welcome %q does not point to help", welcome.Text)
	}

	sent, err := p.Send(ctx, "help")
	if err != nil {
		t.Fatalf("send help: %v", err)
	}
	reply, err := p.WaitForReplyTo(ctx, sent.ActivityID)
	if err != nil {
		t.Fatalf("no reply to help: %v", err)
	}
	// The command list names each command with its one-line description (internal/bot).
	if !strings.Contains(reply.Text, "`help` — Show what I can do.") || reply.ConversationID != p.ConversationID {
		t.Errorf("reply to help = %q in %q, want the command list in %q", reply.Text, reply.ConversationID, p.ConversationID)
	}
}

// TestPlaygroundRefusedWithBotIdentity: the Playground sends no token, so a handler
// configured with a bot identity must refuse it and say nothing.
func TestPlaygroundRefusedWithBotIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Agents Playground (Node.js); skipped with -short")
	}
	closed := "https://127.0.0.1:1" // nothing may be fetched to refuse an unsigned request
	h := startHandler(t, map[string]string{
		"BOT_APP_ID":                       "b07a0000-0000-4000-8000-000000000002",
		"BOT_TENANT_ID":                    "72f988bf-0000-4000-8000-000000000001",
		"BOT_MANAGED_IDENTITY_CLIENT_ID":   "11111111-0000-4000-8000-000000000003",
		"ENTRA_AUTHORITY_HOST":             closed,
		"BOTFRAMEWORK_OPENID_METADATA_URL": closed + "/v1/.well-known/openidconfiguration",
	})
	p := playground.Start(t, h.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err := p.Send(ctx, "help")
	var de *playground.DeliveryError
	if !errors.As(err, &de) || de.Exchange.Status != http.StatusUnauthorized {
		t.Fatalf("send help = %v, want the handler to answer 401", err)
	}
	if n := len(p.Messages()); n != 0 {
		t.Errorf("the chat shows %d bot messages after a refused request, want none", n)
	}
}
