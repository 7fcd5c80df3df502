// Package playground runs the real Microsoft 365 Agents Playground
// (npm @microsoft/m365agentsplayground, 0.2.28) against a bot endpoint and drives
// it the way its web UI does, without a browser, so end-to-end tests can type a
// message and read the bot's reply exactly as a user of the Playground would.
//
// The Playground is a Node.js server (express + ws). Its web UI talks to it over
// plain HTTP and two WebSockets; this package speaks the same API. Facts below
// come from the package's bundled server, dist/index.js (module ids given as
// "mod N"; read with a JS beautifier):
//
//   - Start-up: cli.js → "start" command (mod 59769) → startServer (mod 86308).
//     `-p 0` listens on a random port; when stdout is not a TTY it prints
//     "Listening on <port>\n" to stdout. All console output goes to the file named
//     by M365_AGENTS_PLAYGROUND_LOGFILE (mod 2466). It opens a browser with the npm
//     "open" package unless TEAMSAPPTESTER_BROWSER=none; headless, a missing
//     xdg-open makes it exit, so we set that variable and also put a no-op xdg-open
//     first on PATH.
//   - Routes (mod 40862, mountBackend): GET /_debug/ping → "pong";
//     POST /_debug/conversation/{id}/installation (the UI calls it when a chat is
//     first shown) sends installationUpdate (msteams only) and conversationUpdate
//     with membersAdded [user, bot] to the bot (mod 9679);
//     POST /_conversation/v1/conversations/{id}/messages with
//     {"from":{"id":user},"text":…,"textFormat":"plain"} answers 200
//     {"messageId",…} and then POSTs a message activity to the bot (mods 49673,
//     74241, 35113, 23231); GET /_internal/v1/testConfig returns the mocked tenant,
//     users, bot and chat ids (mod 14583); /_connector/v3/... is the mock Bot
//     Connector the bot replies to (mods 40085, 81287, 22556).
//   - WebSockets (mod 29108): /_ws_conversation/v1/conversations/stream pushes
//     {"action":"createMessage"|"updateMessage"|"typing","actionConversationId",
//     "message":{…}} for what the bot sends (mod 11041) — this is how the UI learns
//     of replies; /_ws/log/stream pushes {"logAction":"appendLog","log":{…}} for every
//     HTTP exchange in either direction, with the request body and the response
//     status (mod 41550). Both buffer messages while no client is connected and
//     broadcast to every client (mod 55975).
//
// What the bot receives (observed, channel msteams, built-in config): headers
// Content-Type application/json and x-ms-agents-playground: true, and no
// Authorization header unless client credentials are configured (mod 47709);
// activity fields channelId "msteams", serviceUrl "http://localhost:<port>/_connector",
// from {id "user-id-0", name "Alex Wilber", aadObjectId
// "00000000-0000-0000-0000-0000000000020"}, recipient {id
// "00000000-0000-0000-0000-00000000000011", name "Test Bot"}, conversation {id
// <personal chat id>, conversationType "personal", tenantId
// "00000000-0000-0000-0000-0000000000001"}, channelData.tenant.id (mods 70476,
// 71994, 45621).
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package playground

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
)

// BinaryName is the command the npm package installs in node_modules/.bin.
const BinaryName = "agentsplayground"

// Options tunes [StartWithOptions]. The zero value is what [Start] uses.
//
// Example:
//
//	p := playground.StartWithOptions(t, bot.URL+"/api/messages", playground.Options{
//		ConversationID: "personal-chat-1",
//		StartTimeout:   45 * time.Second,
//	})
type Options struct {
	// Bin is the path of the agentsplayground executable. Empty means: the
	// AGENTSPLAYGROUND environment variable, else "agentsplayground" on PATH,
	// else node_modules/.bin/agentsplayground in the working directory or any
	// parent of it (the repository root when run by `go test`).
	Bin string
	// ChannelID is the activity channelId the Playground plays: "msteams"
	// (default), "emulator", "webchat" or "directline".
	ChannelID string
	// ConversationID fixes the personal chat's conversation id; empty lets the
	// Playground pick a random UUID.
	ConversationID string
	// StartTimeout bounds start-up until the Playground answers its ping and
	// both WebSockets are connected. Default 30s.
	StartTimeout time.Duration
	// Config, when set, is the Playground's .m365agentsplayground.yml (passed through
	// M365_AGENTS_PLAYGROUND_CONFIG_PATH): its tenant, bot and users, and which user types
	// (currentUser).
	Config string
	// Env is appended to the Playground's environment (after the variables this
	// package sets, so it can override them).
	Env []string
}

// Account is a user or bot account of the Playground's mocked tenant.
type Account struct {
	ID          string
	Name        string
	AADObjectID string
}

// Playground is a running Agents Playground process plus the client state of
// its UI streams. Its methods are safe for concurrent use.
type Playground struct {
	// URL is the base URL of the Playground's web UI and API, on loopback.
	URL string
	// ServiceURL is the serviceUrl the Playground puts in every activity: its
	// mock Bot Connector, where the bot must send replies. (For a Playground
	// attached with Connect that was started with --service-url, it is not that
	// URL but the default one.)
	ServiceURL string
	// ConversationID is the personal chat between User and the bot.
	ConversationID string
	// TenantID is the mocked tenant's id.
	TenantID string
	// User is the signed-in user who types in the Playground.
	User Account
	// Bot is the bot account the Playground addresses activities to.
	Bot Account

	logFile string
	client  *http.Client
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	exitErr error         // set before done is closed

	events *eventLog
	// sendMu serializes Send so each one can claim the next delivery it caused.
	sendMu sync.Mutex
}

// Start launches the Agents Playground against botEndpoint (the bot's full
// messaging URL, e.g. http://127.0.0.1:3978/api/messages), waits until it is
// ready and connected, and stops it when the test ends. It fails the test with
// the tail of the Playground's log if it cannot start.
func Start(t testing.TB, botEndpoint string) *Playground {
	t.Helper()
	return StartWithOptions(t, botEndpoint, Options{})
}

// StartWithOptions is [Start] with [Options].
func StartWithOptions(t testing.TB, botEndpoint string, opts Options) *Playground {
	t.Helper()
	p, err := launch(t.TempDir(), botEndpoint, opts)
	if p != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("agents playground log (%s), last lines:\n%s", p.logFile, p.LogTail(40))
			}
			p.stop()
		})
	}
	if err != nil {
		t.Fatalf("start agents playground: %v", err)
	}
	return p
}

// Connect attaches to a Playground that is already running at baseURL (for
// example the one `make dev` starts: http://127.0.0.1:56150) and subscribes to
// its UI streams, so [Playground.Send] and [Playground.WaitForReply] work on it.
// Close detaches; the Playground keeps running. A browser showing the same
// Playground keeps working: the streams are broadcast to every client.
func Connect(ctx context.Context, baseURL string) (*Playground, error) {
	u := strings.TrimRight(baseURL, "/")
	if !strings.HasPrefix(u, "http://") {
		return nil, fmt.Errorf("connect to playground: base URL must be http://host:port, got %q", baseURL)
	}
	p := &Playground{
		URL:    u,
		client: &http.Client{Timeout: 10 * time.Second},
		done:   make(chan struct{}),
		events: newEventLog(),
	}
	if err := p.ping(ctx); err != nil {
		return nil, fmt.Errorf("connect to playground at %s: %w", u, err)
	}
	if err := p.loadConfig(ctx); err != nil {
		return nil, fmt.Errorf("connect to playground at %s: %w", u, err)
	}
	if err := p.events.connect(ctx, p.URL, p.done); err != nil {
		p.events.close()
		return nil, fmt.Errorf("connect to playground at %s: %w", u, err)
	}
	return p, nil
}

// Close detaches from a Playground opened with [Connect]. Playgrounds from
// [Start] are stopped by the test's cleanup instead.
func (p *Playground) Close() error {
	if p.cmd == nil {
		p.events.close()
	}
	return nil
}

// FindBinary returns the agentsplayground executable as described for
// [Options.Bin], or an error saying how to install it.
func FindBinary() (string, error) {
	if b := os.Getenv("AGENTSPLAYGROUND"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath(BinaryName); err == nil {
		return b, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", BinaryName, err)
	}
	for {
		cand := filepath.Join(dir, "node_modules", ".bin", BinaryName)
		if st, err := os.Stat(cand); err == nil && !st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not on PATH nor in any node_modules/.bin above the working directory; run `make npm-deps` (npm ci) at the repository root", BinaryName)
		}
		dir = parent
	}
}

// listeningRE matches the line startServer prints to a non-TTY stdout (mod 86308).
var listeningRE = regexp.MustCompile(`^Listening on (\d+)\s*$`)

// scrubbedEnv lists variables the Playground reads (mods 1263, 2466, 45966, 59769)
// that an outer environment must not leak into a test run: they would change the
// endpoint, channel, config file, or switch on client-credential authentication.
var scrubbedEnv = []string{
	"BOT_ENDPOINT", "DEFAULT_CHANNEL_ID", "SEND_INSTALLATION_ACTIVITY",
	"AUTH_CLIENT_ID", "AUTH_CLIENT_SECRET", "AUTH_TENANT_ID",
	"TEAMSAPPTESTER_PORT", "TEAMSAPPTESTER_LOGFILE", "TEAMSAPPTESTER_BROWSER",
	"TEAMS_APP_TEST_TOOL_CONFIG_PATH",
}

func childEnv(dir, logFile string, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "M365_AGENTS_PLAYGROUND_") || contains(scrubbedEnv, name) || name == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"M365_AGENTS_PLAYGROUND_LOGFILE="+logFile,
		// Any config file in the working directory would replace the built-in
		// tenant; point at one that does not exist so the built-in one is used.
		"M365_AGENTS_PLAYGROUND_CONFIG_PATH="+filepath.Join(dir, "no-config.yml"),
		"M365_AGENTS_PLAYGROUND_RECORDING_FILE="+filepath.Join(dir, "events.log"),
		"TEAMSAPPTESTER_BROWSER=none",
		// Keep loopback traffic off any proxy the environment names (mod 81449).
		"NO_PROXY=localhost,127.0.0.1,::1",
	)
	return append(env, extra...)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// launch starts the process in dir. It returns a non-nil *Playground whenever a
// process was started, so the caller can stop it even if start-up failed.
func launch(dir, botEndpoint string, opts Options) (*Playground, error) {
	if botEndpoint == "" {
		return nil, errors.New("bot endpoint is empty")
	}
	bin := opts.Bin
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	channel := opts.ChannelID
	if channel == "" {
		channel = "msteams"
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if err := writeXdgOpenShim(filepath.Join(dir, "bin")); err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "playground.log")

	args := []string{"-e", botEndpoint, "-c", channel, "--dt", "-p", "0"}
	if opts.ConversationID != "" {
		args = append(args, "--conversation-id", opts.ConversationID)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir, logFile, opts.Env)
	if opts.Config != "" {
		cfg := filepath.Join(dir, "sandbox", ".m365agentsplayground.yml")
		if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
			return nil, fmt.Errorf("write playground config: %w", err)
		}
		if err := os.WriteFile(cfg, []byte(opts.Config), 0o644); err != nil {
			return nil, fmt.Errorf("write playground config: %w", err)
		}
		cmd.Env = append(cmd.Env, "M365_AGENTS_PLAYGROUND_CONFIG_PATH="+cfg)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, fmt.Errorf("create stderr file: %w", err)
	}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stderr.Close()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	// Its own process group, so stop reaches node and anything it spawned; killed by the
	// kernel if the test process dies without stopping it.
	exited, err := testenv.StartChild(cmd)
	if err != nil {
		stderr.Close()
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}

	p := &Playground{
		logFile: logFile,
		client:  &http.Client{Timeout: 10 * time.Second},
		cmd:     cmd,
		done:    make(chan struct{}),
		events:  newEventLog(),
	}
	portc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				port, _ := strconv.Atoi(m[1])
				portc <- port
				sent = true
			}
		}
		// Drain to EOF so the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.exitErr = <-exited
		stderr.Close()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.ready(ctx, portc, botEndpoint); err != nil {
		return p, fmt.Errorf("%w\n--- playground log tail ---\n%s", err, p.LogTail(30))
	}
	return p, nil
}

func writeXdgOpenShim(binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create shim dir: %w", err)
	}
	// A no-op xdg-open: the Playground would otherwise exit when it cannot open
	// a browser on a headless machine.
	if err := os.WriteFile(filepath.Join(binDir, "xdg-open"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		return fmt.Errorf("write xdg-open shim: %w", err)
	}
	return nil
}

func (p *Playground) ready(ctx context.Context, portc <-chan int, botEndpoint string) error {
	var port int
	select {
	case port = <-portc:
	case <-p.done:
		return fmt.Errorf("playground exited before listening: %v", p.exitErr)
	case <-ctx.Done():
		return fmt.Errorf("playground did not report its port: %w", ctx.Err())
	}
	p.URL = "http://127.0.0.1:" + strconv.Itoa(port)

	for {
		err := p.ping(ctx)
		if err == nil {
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("playground exited during start-up: %v", p.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("playground did not answer %s/_debug/ping: %w (last: %v)", p.URL, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := p.loadConfig(ctx); err != nil {
		return err
	}
	// Connect the UI streams before anything is sent, so no event is missed.
	if err := p.events.connect(ctx, p.URL, p.done); err != nil {
		return err
	}
	return nil
}

func (p *Playground) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/_debug/ping", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: status %d", resp.StatusCode)
	}
	return nil
}

// stop ends the process group: SIGTERM, then SIGKILL after a grace period.
func (p *Playground) stop() {
	p.events.close()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the Playground process has ended, and how.
func (p *Playground) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.exitErr
	default:
		return false, nil
	}
}

// LogFile is the path of the Playground's console log.
func (p *Playground) LogFile() string { return p.logFile }

// LogTail returns up to the last n lines of the Playground's console log (and
// of its stderr), for failure messages.
func (p *Playground) LogTail(n int) string {
	var b strings.Builder
	for _, f := range []string{p.logFile, filepath.Join(filepath.Dir(p.logFile), "stderr.log")} {
		data, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		for _, l := range lines {
			// Some lines carry whole activities; keep failure output readable.
			if len(l) > 600 {
				l = l[:600] + "…"
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return "(empty)"
	}
	return b.String()
}
