package app_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
	"github.com/onbehalf/onbehalf/internal/work"
)

// handlerProcess runs the onbehalf binary on port with the environment env.
func handlerProcess(t *testing.T, bin string, port int, env []string, logPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FUNCTIONS_CUSTOMHANDLER_PORT=" + strconv.Itoa(port)}, env...)
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	exited, err := testenv.StartChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { <-exited; close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("handler did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill -9 of the handler process while it runs a job (waiting on a slow Jira): the Functions
// host sees the invocation fail and releases the message; after the handler is started again
// on the same port the job completes, and the user gets the answer once.
func TestKilledHandlerProcessCompletesTheJobOnceAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the handler binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "onbehalf")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/onbehalf/onbehalf/handler").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	q := newQueueEnv(t, 1)
	bo := newChatUser("bo")
	q.link(t, bo, standin.Bob, true)
	q.stops[0]() // from here on the process below is the one the host invokes

	// The process trusts the stand-ins' certificates and uses the same settings and store.
	ca, err := testenv.SharedCA().WriteBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(ca)
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, append(caPEM, q.atl.CertificatePEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := map[string]string{"SSL_CERT_FILE": bundle, "WORK_JOB_TIMEOUT": "4s"}
	for k, v := range q.settings {
		extra[k] = v
	}
	env := q.st.EnvList(extra)
	port := freeLoopbackPort(t)
	logPath := filepath.Join(dir, "handler.log")
	proc := handlerProcess(t, bin, port, env, logPath)

	host := &funchost.Host{HandlerURL: fmt.Sprintf("http://127.0.0.1:%d", port), PollInterval: 20 * time.Millisecond}
	f, err := funchost.QueueFunctionFrom(q.svc, "../../host.json", "../../functions", "work")
	if err != nil {
		t.Fatal(err)
	}
	f.VisibilityTimeout = 0
	ctx1, stop1 := context.WithCancel(context.Background())
	t.Cleanup(stop1)
	go host.Poll(ctx1, f)

	q.atl.Inject(standin.Fault{Delay: 3 * time.Second})
	from := len(q.ch.Recorded())
	q.say(t, 0, bo, "my jira issues")
	for deadline := time.Now().Add(60 * time.Second); q.atl.FaultHits() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("the handler process never called Jira:\n%s", b)
		}
	}
	// Mid-job: the process waits on Jira. kill -9.
	if err := syscall.Kill(proc.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stop1()
	time.Sleep(300 * time.Millisecond)
	if early := q.replies(bo, from, 1, 0); len(early) != 0 {
		t.Fatalf("the killed process answered:\n%s", dump(early))
	}

	handlerProcess(t, bin, port, env, logPath) // started again, on the same port
	ctx2, stop2 := context.WithCancel(context.Background())
	t.Cleanup(stop2)
	go host.Poll(ctx2, f)
	// The restarted handler may first tell the user the answer is delayed (the dead
	// process's lease still runs); the answer itself comes once.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(dump(q.replies(bo, from, 3, 0)), "Disk alert on build agents") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	got := q.replies(bo, from, 0, 0)[:0]
	for _, r := range q.replies(bo, from, 3, 0) {
		if r.Text() != work.DelayedText {
			got = append(got, r)
		}
	}
	if len(got) != 1 || !strings.Contains(dump(got), "Disk alert on build agents") {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("want the answer once, got %d:\n%s\nhandler log:\n%s", len(got), dump(got), b)
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"attempt":2`) {
		t.Fatalf("the restarted handler did not take the job over:\n%s", b)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
