package faultproxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/faultproxy"
)

func TestProxyPassesThroughThenFailsAsTold(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "upstream "+r.URL.Path+" "+string(b))
	}))
	defer up.Close()
	p, err := faultproxy.Start(up.URL, faultproxy.Options{
		Transport: http.DefaultTransport,
		Classify: func(r *http.Request, body []byte) string {
			if strings.Contains(string(body), "grant_type=refresh_token") {
				return "refresh"
			}
			return ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := testenv.SharedCA().Client()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Post(p.URL+path, "application/x-www-form-urlencoded", strings.NewReader("a=b"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/x"); resp.StatusCode != 200 || body != "upstream /x a=b" {
		t.Fatalf("pass-through: %d %q", resp.StatusCode, body)
	}

	p.Set(&faultproxy.Rule{Path: "/oauth/", Status: http.StatusTooManyRequests, RetryAfter: "3", Every: 2})
	var statuses []int
	for range 4 {
		resp, _ := get("/oauth/token")
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("429 without its Retry-After: %q", resp.Header.Get("Retry-After"))
		}
	}
	if want := []int{429, 200, 429, 200}; !equal(statuses, want) {
		t.Fatalf("every second request: got %v, want %v", statuses, want)
	}
	if resp, _ := get("/other"); resp.StatusCode != 200 {
		t.Fatalf("a path outside the rule failed: %d", resp.StatusCode)
	}
	if p.Injected() != 2 {
		t.Fatalf("Injected = %d, want 2", p.Injected())
	}

	p.Set(&faultproxy.Rule{Status: faultproxy.Drop})
	if _, err := c.Get(p.URL + "/x"); err == nil {
		t.Fatal("a dropped connection answered")
	}

	p.Set(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := c.Post(p.URL+"/slow", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err == nil {
			resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); p.InFlight("refresh") != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the refresh in flight was not counted")
		}
	}
	close(release)
	<-done
	if n := p.InFlight("refresh"); n != 0 {
		t.Fatalf("InFlight after the answer = %d", n)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
