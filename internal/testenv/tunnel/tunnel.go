// Package tunnel is an HTTP CONNECT proxy for test processes: it opens a tunnel only to the
// host:port pairs it is given, each mapped to a loopback address, and refuses every other
// target. A child process that sets HTTPS_PROXY to it reaches a stand-in under its real host
// name (https://<name>.vault.azure.net) without any change to name resolution, while its
// loopback traffic goes direct (Go's net/http never proxies localhost or loopback addresses:
// golang.org/x/net/http/httpproxy, Config.ProxyFunc).
//
// The CONNECT method and its 2xx answer follow RFC 9110 §9.3.6.
package tunnel

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a running CONNECT proxy. Its methods are safe for concurrent use.
type Proxy struct {
	// URL is the proxy's address, for HTTPS_PROXY (http://127.0.0.1:port).
	URL string

	routes  map[string]string
	ln      net.Listener
	srv     *http.Server
	tunnels atomic.Int64

	mu      sync.Mutex
	refused []string
	conns   map[net.Conn]struct{}
	closed  bool
}

// Start listens on a loopback port. routes maps a CONNECT target ("host:port", compared
// exactly) to the loopback address to dial instead.
func Start(routes map[string]string) (*Proxy, error) {
	if len(routes) == 0 {
		return nil, errors.New("tunnel: no routes")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), routes: map[string]string{}, ln: ln, conns: map[net.Conn]struct{}{}}
	for k, v := range routes {
		p.routes[k] = v
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy and ends every open tunnel.
func (p *Proxy) Close() {
	_ = p.srv.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Tunnels counts the tunnels opened.
func (p *Proxy) Tunnels() int { return int(p.tunnels.Load()) }

// Refused lists the targets refused (requests other than CONNECT are listed by their URL).
func (p *Proxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

func (p *Proxy) refuse(w http.ResponseWriter, target string, status int) {
	p.mu.Lock()
	p.refused = append(p.refused, target)
	p.mu.Unlock()
	http.Error(w, "tunnel: not a permitted target", status)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		p.refuse(w, r.Method+" "+r.URL.String(), http.StatusMethodNotAllowed)
		return
	}
	to, ok := p.routes[r.Host]
	if !ok {
		p.refuse(w, r.Host, http.StatusForbidden)
		return
	}
	up, err := net.DialTimeout("tcp", to, 2*time.Second)
	if err != nil {
		http.Error(w, "tunnel: target unreachable", http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "tunnel: cannot hijack", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.track(up, down) {
		return
	}
	p.tunnels.Add(1)
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		p.untrack(up, down)
		return
	}
	go func() {
		// Bytes the client sent after its CONNECT request, already buffered.
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			_, _ = up.Write(b)
		}
		_, _ = io.Copy(up, down)
		p.untrack(up, down)
	}()
	go func() {
		_, _ = io.Copy(down, up)
		p.untrack(up, down)
	}()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}
