package logcheck

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Runner is what a test binary's TestMain runs (*testing.M).
type Runner interface{ Run() int }

// Main runs a package's tests with the default slog logger (and the standard log package,
// which slog.SetDefault routes through it) writing to stderr as before and to a capture that
// is scanned when every test has run: an issued secret or a secret shape (Find) there fails
// the test binary. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { logcheck.Main(m) }
func Main(m Runner) { os.Exit(RunMain(m)) }

// RunMain is Main for a TestMain that does more: it returns the exit code instead of exiting.
func RunMain(m Runner) int {
	capture := CaptureDefault(os.Stderr)
	code := m.Run()
	if found := Find(capture()); len(found) > 0 {
		for _, f := range found {
			fmt.Fprintf(os.Stderr, "logcheck: found in the default log: %s\n", Describe(f))
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// CaptureDefault makes the default slog logger write every record, debug ones included, as
// JSON to a buffer, and records at info level and above as text to also (nil: nowhere else,
// as the default logger did before). It returns what the buffer holds so far.
func CaptureDefault(also io.Writer) func() string {
	buf := &Buffer{}
	hs := []slog.Handler{slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})}
	if also != nil {
		hs = append(hs, slog.NewTextHandler(also, nil))
	}
	slog.SetDefault(slog.New(slog.NewMultiHandler(hs...)))
	return buf.String
}

// Buffer is a log sink safe for concurrent writes; tests hand it to a slog handler and read
// (or scan) what was logged with String.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
