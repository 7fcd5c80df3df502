package soak

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/faultproxy"
	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/tunnel"
)

// settings are the soak's knobs, from the environment.
type settings struct {
	Duration  time.Duration // SOAK_DURATION: how long the load runs (faults in its middle)
	Users     int           // SOAK_USERS
	Instances int           // SOAK_INSTANCES: handler processes (2 or 3)
	Workers   int           // SOAK_WORKERS: users acting at the same time
	Seed      uint64        // SOAK_SEED: the fault schedule's seed
	Skew      time.Duration // SOAK_SKEW: the last instance's clock offset
}

func loadSettings(t *testing.T) settings {
	s := settings{Duration: 40 * time.Second, Users: 30, Instances: 3, Workers: 6, Seed: 1, Skew: 3 * time.Minute}
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("SOAK_DURATION=%q: a duration of at least 20s", v)
		}
		s.Duration = d
	}
	ints := map[string]*int{"SOAK_USERS": &s.Users, "SOAK_INSTANCES": &s.Instances, "SOAK_WORKERS": &s.Workers}
	for k, p := range ints {
		if v := os.Getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: a positive number", k, v)
			}
			*p = n
		}
	}
	if s.Instances < 2 || s.Instances > 5 {
		t.Fatalf("SOAK_INSTANCES=%d: 2 to 5", s.Instances)
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: a number", v)
		}
		s.Seed = n
	}
	if v := os.Getenv("SOAK_SKEW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_SKEW=%q: a duration", v)
		}
		s.Skew = d
	}
	return s
}

// instance is one handler process slot: killed and started again on the same port.
type instance struct {
	idx     int
	port    int
	url     string
	env     []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	alive    atomic.Bool
	gen      int // starts so far
	inflight map[string]int
	samples  []sample
}

type sample struct {
	at         time.Time
	gen        int
	rssKB      int
	goroutines int
}

// env is the running soak: Azurite, the stand-ins behind fault proxies, the handler
// processes, the reply index and the counters.
type env struct {
	t   *testing.T
	cfg settings
	dir string
	bin string

	azt, azq *azurite.Server
	st       *stack.Stack
	sso      *stack.SSO
	atl      *standin.Server
	atlURL   string // the stand-in itself (the browser goes there directly)

	entraProxy, tsProxy *faultproxy.Proxy
	atlProxies          []*faultproxy.Proxy

	// The token-store key's vault, reached by the handlers under its real host name through
	// kvTunnel (their HTTPS_PROXY), with their managed identity's tokens.
	kv       *keyvault.Server
	kvTunnel *tunnel.Proxy
	bg       sync.WaitGroup // checks a fault left running after its window

	insts []*instance
	lb    *httptest.Server // the public URL: spreads browser requests over live instances
	rr    atomic.Uint64

	users   []*user
	byConv  map[string]*user
	hostLog string // the Functions hosts' log
	lates   []lateCheck
	queue   *azqueue.QueueClient

	idx   replyIndex
	count counters
}

// counters are the figures printed in the summary.
type counters struct {
	mu       sync.Mutex
	n        map[string]int
	faults   map[string]int
	told     map[string]int // first words of the "told why" replies
	problems []string
}

func (c *counters) add(k string, d int) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k] += d
	c.mu.Unlock()
}

func (c *counters) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func (c *counters) fault(kind string, n int) {
	c.mu.Lock()
	if c.faults == nil {
		c.faults = map[string]int{}
	}
	c.faults[kind] += n
	c.mu.Unlock()
}

func (c *counters) tell(text string) {
	w := strings.Fields(text)
	if len(w) > 6 {
		w = w[:6]
	}
	c.mu.Lock()
	if c.told == nil {
		c.told = map[string]int{}
	}
	c.told[strings.Join(w, " ")]++
	c.mu.Unlock()
}

// problem records a failed check's detail (shown, at most 20, under the summary).
func (c *counters) problem(format string, args ...any) {
	c.mu.Lock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// replyIndex files what the bot sent to the connector by conversation, as it arrives.
type replyIndex struct {
	mu     sync.Mutex
	seen   int
	byConv map[string][]channel.Recorded
	wake   chan struct{}
}

func (x *replyIndex) run(ctx context.Context, ch *channel.Server) {
	x.mu.Lock()
	x.byConv = map[string][]channel.Recorded{}
	x.wake = make(chan struct{})
	x.mu.Unlock()
	for {
		recs := ch.Recorded()
		x.mu.Lock()
		if len(recs) > x.seen {
			for _, r := range recs[x.seen:] {
				x.byConv[r.ConversationID] = append(x.byConv[r.ConversationID], r)
			}
			x.seen = len(recs)
			close(x.wake)
			x.wake = make(chan struct{})
		}
		x.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// since returns conv's records from index from, and a channel closed when more arrive.
func (x *replyIndex) since(conv string, from int) ([]channel.Recorded, <-chan struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	all := x.byConv[conv]
	if from > len(all) {
		from = len(all)
	}
	return append([]channel.Recorded(nil), all[from:]...), x.wake
}

func (x *replyIndex) len(conv string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byConv[conv])
}

func newKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k := base64.StdEncoding.EncodeToString(b)
	logcheck.Issue("token-store key", k)
	return k
}

// start brings everything up. Everything stops at the test's end.
func start(t *testing.T, cfg settings) *env {
	e := &env{t: t, cfg: cfg, dir: t.TempDir(), byConv: map[string]*user{}}
	if d := os.Getenv("SOAK_LOGDIR"); d != "" {
		// Keep the handlers' logs (and the binary) for reading after the run.
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		e.dir = d
	}
	e.bin = filepath.Join(e.dir, "onbehalf-soak")
	if out, err := exec.Command("go", "build", "-tags", "soak", "-o", e.bin, "github.com/onbehalf/onbehalf/handler").CombinedOutput(); err != nil {
		t.Fatalf("build the soak handler: %v\n%s", err, out)
	}
	e.azt = azurite.Start(t)
	e.azq = azurite.StartService(t, azurite.Queue)

	e.st = stack.New()
	t.Cleanup(e.st.Close)
	e.sso = e.st.StartSSO("soak-sso")
	t.Cleanup(e.sso.Close)

	// Entra and the token service are reached only through their fault proxies: the stand-ins
	// take the proxy's URL as their own, so their metadata, issuer and links name it.
	var err error
	if e.entraProxy, err = faultproxy.Start(e.st.Entra.URL, faultproxy.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.entraProxy.Close)
	e.st.Entra.URL = e.entraProxy.URL
	// The managed identity's tokens now name the proxy as issuer: the bot's federated
	// credential trusts that issuer, as stack.New set it up for the stand-in's own URL.
	e.st.Entra.AddApp(entra.App{ClientID: stack.BotAppID, FederatedCredentials: []entra.FederatedCredential{{
		Issuer: e.st.Entra.Issuer(), Subject: e.st.MIPrincipal, Audiences: []string{entra.TokenExchangeAud},
	}}, RequiredResourceAccess: stack.BotRequiredResourceAccess()})
	e.st.Entra.GrantAdminConsent(stack.BotAppID)
	if e.tsProxy, err = faultproxy.Start(e.sso.TokenService.URL, faultproxy.Options{Classify: classifyTokenService}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.tsProxy.Close)
	e.sso.TokenService.URL = e.tsProxy.URL

	// The vault trusts the tenant's tokens (issued under the proxy's URL) and grants the bot's
	// managed identity its secrets role; it holds the token-store key.
	if e.kv, err = keyvault.New(keyvault.Options{VaultName: "onbehalf-soak", TenantID: stack.TenantID, Entra: &keyvault.EntraTrust{
		Issuer: e.st.Entra.Issuer(), Keys: e.st.Entra.PublicKeys, Principals: []string{e.st.MIPrincipal},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.kv.Close)
	if e.kvTunnel, err = tunnel.Start(map[string]string{e.kv.Host() + ":443": e.kv.Addr()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.kvTunnel.Close)
	e.kv.SetSecret(config.DefaultTokenStoreKeyName, newKey())

	// The public URL (BOT_PUBLIC_URL): one address in front of every instance.
	e.lb = httptest.NewUnstartedServer(nil)
	pub := "http://" + e.lb.Listener.Addr().String()

	e.makeUsers(pub)

	// Each instance reaches Atlassian through its own proxy, so a refresh in flight is known
	// by instance.
	for i := 0; i < cfg.Instances; i++ {
		p, err := faultproxy.Start(e.atlURL, faultproxy.Options{Transport: e.atl.Client().Transport, Classify: classifyAtlassian})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		e.atlProxies = append(e.atlProxies, p)
	}

	ca, err := testenv.SharedCA().WriteBundle(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(ca)
	bundle := filepath.Join(e.dir, "bundle.pem")
	if err := os.WriteFile(bundle, slices.Concat(caPEM, e.atl.CertificatePEM(), e.kv.CertificatePEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < cfg.Instances; i++ {
		atlURL := e.atlProxies[i].URL
		extra := map[string]string{
			"SSL_CERT_FILE":                bundle,
			"TOKENSTORE_CONNECTION_STRING": e.azt.ConnectionString(),
			"WORK_QUEUE_CONNECTION_STRING": e.azq.QueueConnectionString(),
			"TOKENSTORE_KEYVAULT_URL":      e.kv.URL(),
			// Only the vault's host goes through the tunnel: Go never proxies loopback
			// addresses, where every other stand-in listens.
			"HTTPS_PROXY":             e.kvTunnel.URL,
			"BOT_PUBLIC_URL":          pub,
			"ATLASSIAN_CLIENT_ID":     e.atl.ClientID(),
			"ATLASSIAN_CLIENT_SECRET": e.atl.ClientSecret(),
			"ATLASSIAN_AUTH_URL":      atlURL,
			"ATLASSIAN_API_URL":       atlURL,
			"OAUTH2_CONNECTORS": `[{"name":"acme","displayName":"Acme API","authURL":"` + atlURL + `/authorize","tokenURL":"` + atlURL +
				`/oauth/token","apiBaseURL":"` + atlURL + `","scopes":["read:me","offline_access"],"clientID":"` + e.atl.ClientID() +
				`","clientSecretName":"acme-secret","authParams":{"audience":"api.atlassian.com","prompt":"consent"}}]`,
			"OAUTH2_DEV_SECRETS":  `{"acme-secret":"` + e.atl.ClientSecret() + `"}`,
			"WORK_JOB_TIMEOUT":    "20s",
			"SOAK_STATS_INTERVAL": "1s",
			// The simulated users ask at a person's pace (a few requests a minute, one at a
			// time), so they run under the production per-user limits (USER_RATE_LIMIT and
			// USER_RATE_BURST unset: their defaults); a "try again in …" reply is told why.
			"USER_RATE_LIMIT": "",
		}
		for k, v := range e.sso.Env() {
			extra[k] = v
		}
		if i == cfg.Instances-1 && cfg.Skew != 0 {
			extra["SOAK_CLOCK_OFFSET"] = cfg.Skew.String()
		}
		port := freePort(t)
		in := &instance{idx: i, port: port, url: fmt.Sprintf("http://127.0.0.1:%d", port), env: e.st.EnvList(extra),
			logPath: filepath.Join(e.dir, fmt.Sprintf("handler-%d.log", i)), inflight: map[string]int{}}
		e.insts = append(e.insts, in)
		if err := e.startInstance(in); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.kill(in) })
	}
	e.lb.Config.Handler = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse(e.pick().url)
			r.SetURL(u)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	e.lb.Start()
	t.Cleanup(e.lb.Close)

	// One Functions host per instance polls the shared work queue and invokes its handler.
	svc, err := azqueue.NewServiceClientFromConnectionString(e.azq.QueueConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	e.queue = svc.NewQueueClient("work")
	hostLog, err := os.OpenFile(filepath.Join(e.dir, "funchost.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostLog.Close() })
	e.hostLog = hostLog.Name()
	for _, in := range e.insts {
		// The deployed queue settings (host.json): a failed message comes back after 10 s.
		f, err := funchost.QueueFunctionFrom(svc, "../../host.json", "../../functions", "work")
		if err != nil {
			t.Fatal(err)
		}
		h := &funchost.Host{HandlerURL: in.url, PollInterval: 100 * time.Millisecond,
			Log: slog.New(slog.NewJSONHandler(hostLog, nil)).With(slog.Int("instance", in.idx))}
		go h.Poll(ctx, f)
		go e.sampleStats(ctx, in)
	}
	go e.idx.run(ctx, e.st.Channel)
	return e
}

func classifyTokenService(r *http.Request, _ []byte) string {
	if strings.HasSuffix(r.URL.Path, "/exchange") {
		return "exchange"
	}
	return ""
}

func classifyAtlassian(r *http.Request, body []byte) string {
	if r.URL.Path == "/oauth/token" && bytes.Contains(body, []byte("grant_type=refresh_token")) {
		return "refresh"
	}
	return ""
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startInstance starts the handler process of slot in and waits for its port.
func (e *env) startInstance(in *instance) error {
	cmd := exec.Command(e.bin, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(in.port)}, in.env...)
	out, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	exited, err := testenv.StartChild(cmd)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { <-exited; close(done) }()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(in.port), time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(in.logPath)
			return fmt.Errorf("handler %d exited at start:\n%s", in.idx, b)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("handler %d did not start", in.idx)
		}
	}
	in.mu.Lock()
	in.cmd, in.exited = cmd, done
	in.gen++
	in.mu.Unlock()
	in.alive.Store(true)
	return nil
}

// kill ends slot in's process with SIGKILL and waits until it is gone.
func (e *env) kill(in *instance) {
	in.alive.Store(false)
	in.mu.Lock()
	cmd, done := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// pick returns a live instance, round robin (instance 0 if none is alive).
func (e *env) pick() *instance {
	n := uint64(len(e.insts))
	for range n {
		in := e.insts[e.rr.Add(1)%n]
		if in.alive.Load() {
			return in
		}
	}
	return e.insts[0]
}

func (in *instance) track(kind string, d int) {
	in.mu.Lock()
	in.inflight[kind] += d
	in.mu.Unlock()
}

func (in *instance) inFlight(kind string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.inflight[kind]
}

// sampleStats records the process's resident memory (/proc/<pid>/status VmRSS) and the
// goroutine count the soak build logs, every second.
func (e *env) sampleStats(ctx context.Context, in *instance) {
	var off int64
	gor := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if f, err := os.Open(in.logPath); err == nil {
			if _, err := f.Seek(off, io.SeekStart); err == nil {
				r := bufio.NewReader(f)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						break
					}
					off += int64(len(line))
					if bytes.Contains(line, []byte(`"msg":"soak stats"`)) {
						var v struct{ Goroutines int }
						if json.Unmarshal(line, &v) == nil {
							gor = v.Goroutines
						}
					}
				}
			}
			f.Close()
		}
		in.mu.Lock()
		cmd, gen := in.cmd, in.gen
		in.mu.Unlock()
		if cmd == nil || gor == 0 {
			continue
		}
		rss := readRSS(cmd.Process.Pid)
		if rss == 0 {
			continue
		}
		in.mu.Lock()
		in.samples = append(in.samples, sample{at: time.Now(), gen: gen, rssKB: rss, goroutines: gor})
		in.mu.Unlock()
	}
}

func readRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// growth compares the first and last third of the samples of one process run: the medians of
// RSS (KiB) and goroutines.
func growth(samples []sample) (rss0, rss1, g0, g1 int, ok bool) {
	if len(samples) < 6 {
		return 0, 0, 0, 0, false
	}
	third := len(samples) / 3
	med := func(s []sample, f func(sample) int) int {
		v := make([]int, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		for i := 1; i < len(v); i++ {
			for j := i; j > 0 && v[j] < v[j-1]; j-- {
				v[j], v[j-1] = v[j-1], v[j]
			}
		}
		return v[len(v)/2]
	}
	first, last := samples[:third], samples[len(samples)-third:]
	rssf := func(s sample) int { return s.rssKB }
	gf := func(s sample) int { return s.goroutines }
	return med(first, rssf), med(last, rssf), med(first, gf), med(last, gf), true
}

// newUserData builds user i: an Entra account, a mailbox and files, and an Atlassian account
// with a project of its own, each carrying the user's marker so a reply's owner can be read
// from its content.
func (e *env) makeUsers(pub string) {
	now := time.Now()
	world := standin.World{
		Sites: []standin.Site{{ID: standin.AcmeSite, Name: "acme", URL: "https://acme.atlassian.net"}},
	}
	for i := 0; i < e.cfg.Users; i++ {
		mk := fmt.Sprintf("mk%04dx%s", i, uuid.NewString()[:4])
		name := fmt.Sprintf("Soak User %04d", i)
		u := &user{
			idx: i, marker: mk, name: name,
			entra:   entra.User{ObjectID: uuid.NewString(), Name: name, UPN: fmt.Sprintf("soak%04d@contoso.example", i)},
			account: fmt.Sprintf("557058:soak-%04d", i),
			project: projectKey(i),
			acme:    i%4 == 0,
		}
		u.conv = "a:" + uuid.NewString()
		e.users = append(e.users, u)
		e.byConv[u.conv] = u
		e.st.Entra.AddUser(u.entra)
		e.sso.Graph.AddUser(u.entra.ObjectID, graphuser.UserData{
			DisplayName: name + " " + mk, Mail: u.entra.UPN, UPN: u.entra.UPN, JobTitle: "Tester " + mk,
			Messages: []graphuser.Message{{ID: "m-" + mk, Subject: "Weekly report " + mk, From: "lead@contoso.example",
				BodyPreview: "Numbers for " + mk, WebLink: "https://outlook.example/" + mk, Received: now.Add(-time.Hour)}},
			Files: []graphuser.DriveItem{{ID: "f-" + mk, Name: "notes-" + mk + ".docx", WebURL: "https://files.example/" + mk,
				LastModified: now.Add(-2 * time.Hour), Size: int64(1000 + i)}},
		})
		world.Users = append(world.Users, standin.User{AccountID: u.account, Name: name, Email: u.entra.UPN, Sites: []string{standin.AcmeSite}})
		world.Projects = append(world.Projects, standin.Project{Site: standin.AcmeSite, Key: u.project, Browse: []string{u.account}})
		world.Issues = append(world.Issues, standin.Issue{Site: standin.AcmeSite, Key: u.project + "-1", Summary: "Soak task " + mk,
			Status: "To Do", Category: "new", Assignee: u.account, Priority: "Medium", Updated: now.Add(-time.Hour)})
	}
	// Access tokens live a little longer than the handler's two-minute expiry margin, so they
	// are refreshed (and their refresh tokens rotated) throughout the run.
	ttl := 2*time.Minute + 15*time.Second
	if e.cfg.Duration >= 5*time.Minute {
		ttl = 3 * time.Minute
	}
	e.atl = standin.Start(standin.Options{RedirectURIs: []string{pub + "/api/oauth/callback"}, World: &world, AccessTokenTTL: ttl})
	e.t.Cleanup(e.atl.Close)
	e.atlURL = e.atl.URL
}

// projectKey is a Jira project key made of letters: P + the index in base 26.
func projectKey(i int) string {
	b := []byte{'P', 'A', 'A', 'A'}
	for k := 3; k >= 1; k-- {
		b[k] = byte('A' + i%26)
		i /= 26
	}
	return string(b)
}

// rng is the schedule's random source, from the seed.
func rngFor(seed uint64) *mrand.Rand { return mrand.New(mrand.NewPCG(seed, seed^0x5eed)) }
