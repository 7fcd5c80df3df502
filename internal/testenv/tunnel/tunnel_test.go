package tunnel_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv/tunnel"
)

// A CONNECT to a routed target reaches the loopback address it maps to; any other target, or
// any other method, is refused and recorded.
func TestRoutesOnlyItsTargets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }() // echo
		}
	}()
	p, err := tunnel.Start(map[string]string{"vault.example:443": ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := strings.TrimPrefix(p.URL, "http://")

	connect := func(target string) (net.Conn, *bufio.Reader, int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		return c, br, res.StatusCode
	}

	c, br, st := connect("vault.example:443")
	if st != http.StatusOK {
		t.Fatalf("routed target: status %d", st)
	}
	_, _ = io.WriteString(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("through the tunnel: %q", line)
	}
	c.Close()

	for _, target := range []string{"other.example:443", "vault.example:80", "127.0.0.1:443"} {
		c, _, st := connect(target)
		c.Close()
		if st != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", target, st)
		}
	}
	res, err := http.Get(p.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", res.StatusCode)
	}
	if p.Tunnels() != 1 || len(p.Refused()) != 4 {
		t.Errorf("tunnels %d, refused %v", p.Tunnels(), p.Refused())
	}
}
