// Package azurite starts the real Azurite Table or Queue service (npm package "azurite",
// binaries azurite-table and azurite-queue) for tests: on a free loopback port, with its data on disk in a temporary
// folder, so a test can stop it and start it again on the same port with the same data.
//
// The binary is looked up on PATH first, then in node_modules/.bin of the module root (the
// folder holding go.mod, found by walking up from the working directory). `make test` installs
// it through npm; a test calling Start skips with a clear message only when it is absent.
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package azurite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Azurite's fixed development account. Azurite accepts only this account and key unless told
// otherwise (Azurite README, "Default Storage Account"). aztables v1.4.1 does not accept
// "UseDevelopmentStorage=true", so the connection string is spelled out in full
// (aztables connection_string.go).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// ErrNotInstalled reports that no azurite-table (or azurite-queue) binary was found.
var ErrNotInstalled = errors.New("azurite: azurite-table or azurite-queue not found on PATH or in node_modules/.bin (run `make test` or `npm ci`)")

// The services Launch can start, each its own Azurite binary with its own port flags
// (azurite README, "Command Line Options": --tableHost/--tablePort, --queueHost/--queuePort).
const (
	Table = "table"
	Queue = "queue"
)

// Server is one running (or stopped) azurite-table process with its own data folder and port.
// Its methods are safe for concurrent use.
type Server struct {
	svc  string
	bin  string
	dir  string
	port int
	own  bool // dir was created by Launch and is removed by Close

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Options tunes Launch. The zero value is ready to use.
type Options struct {
	// Service is Table (the default) or Queue.
	Service string
	// Dir is the data folder (--location). Empty: a new temporary folder, removed by Close.
	Dir string
	// StartTimeout bounds how long Launch and Restart wait for the port to accept
	// connections. Zero means 30 s.
	StartTimeout time.Duration
}

// Start launches Azurite for a test and stops it when the test ends. It skips the test when
// azurite-table is not installed and fails it when Azurite does not start. Before it stops, it
// lists every row of every table and fails the test if one holds a secret or an opaque value
// that is not sealed (logcheck.FindInRows).
func Start(t testing.TB) *Server {
	t.Helper()
	return StartService(t, Table)
}

// StartService is Start for one service: Table or Queue.
func StartService(t testing.TB, service string) *Server {
	t.Helper()
	s, err := Launch(Options{Service: service})
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatalf("start azurite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if service == Table {
		// Runs before Close, after the cleanups registered later (the handler's servers).
		logcheck.WatchTables(t, func() ([]logcheck.Row, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return s.Rows(ctx)
		})
	}
	return s
}

// Launch starts azurite-table on a free 127.0.0.1 port and waits until it accepts connections.
func Launch(opts Options) (*Server, error) {
	svc := opts.Service
	if svc == "" {
		svc = Table
	}
	if svc != Table && svc != Queue {
		return nil, fmt.Errorf("azurite: unknown service %q", svc)
	}
	bin, err := findBinary("azurite-" + svc)
	if err != nil {
		return nil, err
	}
	s := &Server{svc: svc, bin: bin, dir: opts.Dir}
	if s.dir == "" {
		s.dir, err = os.MkdirTemp("", "azurite-"+svc+"-")
		if err != nil {
			return nil, fmt.Errorf("azurite: data folder: %w", err)
		}
		s.own = true
	}
	s.port, err = freePort()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	if err := s.start(opts.StartTimeout); err != nil {
		s.cleanup()
		return nil, err
	}
	return s, nil
}

// ConnectionString is the explicit Azurite connection string for aztables
// (NewServiceClientFromConnectionString).
func (s *Server) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;TableEndpoint=%s;",
		AccountName, AccountKey, s.TableEndpoint())
}

// TableEndpoint is the service URL (table or queue, whichever this server runs) including the account path segment.
func (s *Server) TableEndpoint() string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", s.port, AccountName)
}

// QueueEndpoint is the queue service URL including the account path segment.
func (s *Server) QueueEndpoint() string { return s.TableEndpoint() }

// QueueConnectionString is the explicit Azurite connection string for azqueue
// (NewServiceClientFromConnectionString).
func (s *Server) QueueConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;QueueEndpoint=%s;",
		AccountName, AccountKey, s.QueueEndpoint())
}

// Port is the loopback port Azurite listens on; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// Dir is the folder holding Azurite's data.
func (s *Server) Dir() string { return s.dir }

// Stop ends the process gracefully (SIGINT, so Azurite saves its data to disk) and waits
// for it to exit; after 10 s it is killed. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

// Restart starts a stopped server again on the same port and data folder.
func (s *Server) Restart() error {
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		if err := s.Stop(); err != nil {
			return err
		}
	}
	return s.start(0)
}

// Close stops the server and removes the data folder Launch created.
func (s *Server) Close() error {
	err := s.Stop()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.own {
		_ = os.RemoveAll(s.dir)
	}
}

func (s *Server) start(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("azurite: already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "azurite-"+s.svc+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("azurite: log file: %w", err)
	}
	cmd := exec.Command(s.bin,
		"--location", s.dir,
		"--"+s.svc+"Host", "127.0.0.1",
		"--"+s.svc+"Port", strconv.Itoa(s.port),
		"--silent", "--disableTelemetry", "--skipApiVersionCheck",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.dir
	// Own process group, so a signal reaches node and nothing else; killed by the kernel if
	// the test process dies without stopping it (a panicking test skips every cleanup).
	exited, err := testenv.StartChild(cmd)
	if err != nil {
		logf.Close()
		return fmt.Errorf("azurite: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { <-exited; close(done) }()
	s.cmd, s.done, s.log = cmd, done, logf

	deadline := time.Now().Add(timeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			logf.Close()
			out, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("azurite: exited during start: %s", tail(out))
		default:
		}
		if time.Now().After(deadline) {
			_ = s.stopLocked()
			return fmt.Errorf("azurite: port %d not ready after %s", s.port, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	// SIGINT is the signal azurite-table handles by closing its database, which saves it to
	// disk (azurite dist/src/table/main.js); SIGTERM would lose the last 5 s of writes.
	_ = syscall.Kill(-pid, syscall.SIGINT)
	var err error
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
		err = errors.New("azurite: killed after SIGINT timeout")
	}
	s.log.Close()
	s.cmd, s.done, s.log = nil, nil, nil
	return err
}

func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", ErrNotInstalled
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "node_modules", ".bin", name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			return "", ErrNotInstalled
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNotInstalled
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("azurite: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
