// Package faultproxy is an HTTPS reverse proxy that stands in front of a stand-in and makes
// it fail the way cloud services fail: throttling (429 with Retry-After), server errors
// (500, 502, 503), slowness, and dropped connections. The stand-in behind it keeps its own
// rules; the proxy only decides, request by request, whether the request reaches it.
//
// It serves with the shared test CA's certificate (testenv.SharedCA), so a client that
// trusts the stand-ins trusts the proxy. Test-only: production code never imports it.
package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
)

// Drop, as a Rule's Status, closes the connection without an answer (a crashed or
// unreachable service).
const Drop = -1

// Rule is a fault applied to matching requests while it is set.
type Rule struct {
	// Path is a path prefix the request must have; empty matches every request.
	Path string
	// Status is the answer instead of the upstream's; 0 lets the request through (after
	// Delay); Drop closes the connection.
	Status int
	// RetryAfter, when set, is sent as the Retry-After header with Status.
	RetryAfter string
	// Body is the answer's JSON body with Status; empty sends a generic error object.
	Body string
	// Delay holds each matching request before it is answered or passed on.
	Delay time.Duration
	// Every fails one matching request in Every (1 or 0: all of them), counting from the
	// first match after Set.
	Every int
}

// Options configure Start.
type Options struct {
	// Transport reaches the upstream; nil trusts the shared test CA.
	Transport http.RoundTripper
	// Classify names the kind of a request (its body is given, at most 64 KiB) so that
	// InFlight can count requests of that kind being served; nil classifies nothing.
	Classify func(r *http.Request, body []byte) string
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's https base URL; give it to the client instead of the upstream's.
	URL string

	srv      *httptest.Server
	rp       *httputil.ReverseProxy
	classify func(*http.Request, []byte) string

	mu       sync.Mutex
	rule     *Rule
	matched  int
	injected int
	served   int
	inflight map[string]int
}

// Start runs a proxy to upstream (an http or https base URL). Close stops it.
func Start(upstream string, o Options) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	tr := o.Transport
	if tr == nil {
		tr = testenv.SharedCA().Client().Transport
	}
	p := &Proxy{classify: o.Classify, inflight: map[string]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = u.Host },
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = testenv.SharedCA().NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Set makes rule apply from now on, replacing any earlier one; nil clears it.
func (p *Proxy) Set(rule *Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rule != nil {
		r := *rule
		rule = &r
	}
	p.rule, p.matched = rule, 0
}

// Injected is how many requests a rule has failed, delayed or dropped so far.
func (p *Proxy) Injected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected
}

// Served is how many requests reached the proxy.
func (p *Proxy) Served() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served
}

// InFlight is how many requests of kind (Options.Classify) are being served now.
func (p *Proxy) InFlight(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight[kind]
}

// decide returns the rule to apply to r, if any.
func (p *Proxy) decide(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.served++
	rule := p.rule
	if rule == nil || !strings.HasPrefix(r.URL.Path, rule.Path) {
		return nil
	}
	p.matched++
	if rule.Every > 1 && (p.matched-1)%rule.Every != 0 {
		return nil
	}
	p.injected++
	return rule
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	kind := ""
	if p.classify != nil {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		kind = p.classify(r, body)
	}
	if kind != "" {
		p.mu.Lock()
		p.inflight[kind]++
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.inflight[kind]--
			p.mu.Unlock()
		}()
	}
	rule := p.decide(r)
	if rule != nil && rule.Delay > 0 {
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case rule == nil || rule.Status == 0:
		p.rp.ServeHTTP(w, r)
	case rule.Status == Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	default:
		if rule.RetryAfter != "" {
			w.Header().Set("Retry-After", rule.RetryAfter)
		}
		body := rule.Body
		if body == "" {
			body = `{"error":"fault injected","status":` + strconv.Itoa(rule.Status) + `}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rule.Status)
		_, _ = io.WriteString(w, body)
	}
}
