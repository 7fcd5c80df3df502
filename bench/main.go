// Command bench measures the handler as the channel sees it. It starts the stand-ins (Entra,
// managed identity, Bot Framework channel with a connector sink), runs the real handler binary
// with token validation on, and prints:
//
//   - cold start: process start → first reply recorded at the sink;
//   - activities/s and request latency p50/p99 with 16 concurrent senders;
//   - the handler's resident memory after 2,000 activities.
//
// Usage: go run ./bench [-bin bin/onbehalf] [-senders 16] [-n 2000]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

func main() {
	bin := flag.String("bin", "bin/onbehalf", "handler binary")
	senders := flag.Int("senders", 16, "concurrent senders")
	n := flag.Int("n", 2000, "activities in the throughput run")
	flag.Parse()
	if err := run(*bin, *senders, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin string, senders, n int) error {
	st := stack.New()
	defer st.Close()
	dir, err := os.MkdirTemp("", "onbehalf-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bundle, err := testenv.SharedCA().WriteBundle(dir)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/api/messages", port)

	// One token, as a channel reuses its token for many activities.
	token := "Bearer " + st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders * 2}, Timeout: 20 * time.Second}

	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	cmd := exec.Command(abs, "serve")
	cmd.Env = append(os.Environ(), st.EnvList(map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": strconv.Itoa(port),
		"SSL_CERT_FILE":                bundle,
	})...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	handlerLat := &latencies{}
	go drain(stdout, handlerLat)

	// Cold start: from process start until the first reply is recorded at the sink.
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start handler: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	first := st.Channel.Activity("message", "help")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		code, err := post(ctx, client, endpoint, token, first)
		if err == nil && code == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("handler did not answer: %v (status %d)", err, code)
		}
		time.Sleep(500 * time.Microsecond)
	}
	if _, err := st.Channel.WaitFor(ctx, func(r []channel.Recorded) bool { return len(r) >= 1 }); err != nil {
		return err
	}
	cold := time.Since(start)
	rssFirst := rssKB(cmd.Process.Pid)

	// Warm-up, then the measured run.
	if _, _, err := load(client, endpoint, token, st, senders, 200); err != nil {
		return err
	}
	st.Channel.Reset()
	handlerLat.reset()
	lat, elapsed, err := load(client, endpoint, token, st, senders, n)
	if err != nil {
		return err
	}
	if got := len(st.Channel.Recorded()); got != n {
		return fmt.Errorf("sink recorded %d replies for %d activities", got, n)
	}
	rss := rssKB(cmd.Process.Pid)
	time.Sleep(100 * time.Millisecond) // let the last log lines arrive
	hl := handlerLat.sorted()

	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	fmt.Printf("onbehalf handler benchmark (%d senders, token validation on, replies through the connector sink)\n", senders)
	fmt.Printf("  cold start (process start -> first reply at sink): %.1f ms\n", ms(cold))
	fmt.Printf("  throughput:                                        %.0f activities/s (%d activities in %.2f s)\n", float64(n)/elapsed.Seconds(), n, elapsed.Seconds())
	fmt.Printf("  request latency p50 / p99:                         %.2f ms / %.2f ms\n", ms(pct(0.50)), ms(pct(0.99)))
	if len(hl) > 0 {
		hp := func(p float64) float64 { return hl[min(len(hl)-1, int(float64(len(hl))*p))] }
		fmt.Printf("  handler latency p50 / p99 (its own log):           %.2f ms / %.2f ms (%d lines)\n", hp(0.50), hp(0.99), len(hl))
	}
	fmt.Printf("  RSS after first reply:                             %.1f MB\n", float64(rssFirst)/1024)
	fmt.Printf("  RSS after %d activities:                         %.1f MB\n", n+201, float64(rss)/1024)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// load sends n distinct activities from the given number of concurrent senders and returns
// each request's latency (the handler answers after its reply reached the sink).
func load(client *http.Client, endpoint, token string, st *stack.Stack, senders, n int) ([]time.Duration, time.Duration, error) {
	acts := make([][]byte, n)
	for i := range acts {
		acts[i], _ = json.Marshal(st.Channel.Activity("message", "help"))
	}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				code, err := postRaw(context.Background(), client, endpoint, token, acts[i])
				lat[i] = time.Since(t0)
				if err != nil || code != http.StatusOK {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("activity %d: status %d: %v", i, code, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

func post(ctx context.Context, client *http.Client, endpoint, token string, act map[string]any) (int, error) {
	body, _ := json.Marshal(act)
	return postRaw(ctx, client, endpoint, token, body)
}

func postRaw(ctx context.Context, client *http.Client, endpoint, token string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// latencies collects the latency_ms the handler logs for each activity: the time from
// receiving the request to answering it, reply to the connector included.
type latencies struct {
	mu sync.Mutex
	ms []float64
}

func (l *latencies) add(v float64) { l.mu.Lock(); l.ms = append(l.ms, v); l.mu.Unlock() }
func (l *latencies) reset()        { l.mu.Lock(); l.ms = nil; l.mu.Unlock() }
func (l *latencies) sorted() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.ms)
	slices.Sort(out)
	return out
}

func drain(r io.Reader, lat *latencies) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			fmt.Fprintln(os.Stderr, "handler:", string(line))
		}
		var rec struct {
			Msg       string  `json:"msg"`
			LatencyMS float64 `json:"latency_ms"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "activity" {
			lat.add(rec.LatencyMS)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rssKB reads the resident set size of a process from /proc.
func rssKB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
