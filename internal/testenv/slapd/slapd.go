// Package slapd starts a real OpenLDAP server (Debian package "slapd") for tests: a generated
// slapd.conf, a small directory loaded with slapadd, TLS from a throw-away CA (StartTLS on the
// ldap:// port, and an ldaps:// port), on free loopback ports. The process dies with the test
// binary (Pdeathsig) and is stopped when the test ends, so nothing is left running.
//
// The directory (Base dc=contoso,dc=example) models the access rules issue 13 names:
//
//   - ou=people: Alice (member of the HR group), Bob and Carol. Everyone authenticated reads
//     names, mail and titles; a person's private attributes (homePhone, employeeNumber) are
//     readable by that person and by HR only.
//   - ou=hr: HR records, readable by members of cn=hr,ou=groups only.
//   - ou=contractors: Mallory, outside ou=people.
//   - cn=admin: an administrator entry outside ou=people.
//   - cn=onbehalf-bot,ou=services: the bot's service identity. It reads everything itself and
//     may proxy (RFC 4370, authz-policy "to" with authzTo) only for entries under ou=people.
//     It authenticates with a simple bind (ServicePassword) or with SASL EXTERNAL over TLS with
//     the client certificate ClientCertPEM, whose subject authz-regexp maps to ServiceDN.
//
// Nothing here is imported by production code.
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package slapd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The directory's names.
const (
	Base            = "dc=contoso,dc=example"
	PeopleDN        = "ou=people," + Base
	HRDN            = "ou=hr," + Base
	HRGroupDN       = "cn=hr,ou=groups," + Base
	AliceDN         = "uid=alice," + PeopleDN
	BobDN           = "uid=bob," + PeopleDN
	CarolDN         = "uid=carol," + PeopleDN
	MalloryDN       = "uid=mallory,ou=contractors," + Base
	AdminDN         = "cn=admin," + Base
	ServiceDN       = "cn=onbehalf-bot,ou=services," + Base
	ServicePassword = "bot-secret-for-tests"
	// ClientSubject is the subject of the client certificate (SASL EXTERNAL).
	ClientSubject = "cn=onbehalf-bot,ou=services,o=contoso"
)

// Object ids of the Entra test users, stored in employeeNumber (the "immutable id" mapping).
const (
	AliceOID   = "a11ce000-0000-4000-8000-00000000000a"
	BobOID     = "b0b00000-0000-4000-8000-00000000000b"
	CarolOID   = "ca201000-0000-4000-8000-00000000000c"
	MalloryOID = "3a110700-0000-4000-8000-00000000000d"
	AdminOID   = "ad310000-0000-4000-8000-00000000000e"
)

// ErrNotInstalled reports that slapd or slapadd is missing.
var ErrNotInstalled = errors.New("slapd: /usr/sbin/slapd or slapadd not found (install the Debian packages slapd and ldap-utils: `make apt-deps`)")

// Options tunes Launch. The zero value is the directory described in the package comment.
type Options struct {
	// HideProxyControl denies reading supportedControl in the root DSE, so the server looks
	// like one without RFC 4370 support.
	HideProxyControl bool
}

// Server is one slapd with its own folder and ports. Safe for concurrent use.
type Server struct {
	opts      Options
	dir       string
	port      int // ldap:// (StartTLS)
	tlsPort   int // ldaps://
	caPEM     []byte
	clientPEM []byte
	clientKey []byte

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches slapd for a test and stops it when the test ends. It skips the test when
// slapd is not installed and fails it when slapd does not start.
func Start(t testing.TB) *Server { t.Helper(); return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Launch(opts)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Launch writes the configuration and data into a new temporary folder, loads the data and
// starts slapd on two free loopback ports.
func Launch(opts Options) (*Server, error) {
	for _, p := range []string{slapdPath, slapaddPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, ErrNotInstalled
		}
	}
	dir, err := os.MkdirTemp("", "slapd-")
	if err != nil {
		return nil, fmt.Errorf("slapd: folder: %w", err)
	}
	s := &Server{dir: dir, opts: opts}
	fail := func(err error) (*Server, error) { _ = os.RemoveAll(dir); return nil, err }
	if s.port, err = freePort(); err != nil {
		return fail(err)
	}
	if s.tlsPort, err = freePort(); err != nil {
		return fail(err)
	}
	if err := s.writeTLS(); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(s.confPath(), []byte(s.config()), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.ldif"), []byte(data), 0o600); err != nil {
		return fail(err)
	}
	out, err := exec.Command(slapaddPath, "-f", s.confPath(), "-l", filepath.Join(dir, "data.ldif")).CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("slapd: slapadd: %w: %s", err, bytes.TrimSpace(out)))
	}
	if err := s.Restart(); err != nil {
		return fail(err)
	}
	return s, nil
}

const (
	slapdPath   = "/usr/sbin/slapd"
	slapaddPath = "/usr/sbin/slapadd"
)

// URL is the plain ldap:// address (StartTLS is offered there).
func (s *Server) URL() string { return "ldap://127.0.0.1:" + strconv.Itoa(s.port) }

// LDAPSURL is the ldaps:// address.
func (s *Server) LDAPSURL() string { return "ldaps://127.0.0.1:" + strconv.Itoa(s.tlsPort) }

// CAPEM is the certificate of the CA that issued the server and client certificates.
func (s *Server) CAPEM() []byte { return s.caPEM }

// ClientCertPEM and ClientKeyPEM are the bot's client certificate (SASL EXTERNAL) and key.
func (s *Server) ClientCertPEM() []byte { return s.clientPEM }

// ClientKeyPEM is the private key of ClientCertPEM (PKCS #8).
func (s *Server) ClientKeyPEM() []byte { return s.clientKey }

// Dir is the server's folder (configuration, data, log).
func (s *Server) Dir() string { return s.dir }

func (s *Server) confPath() string { return filepath.Join(s.dir, "slapd.conf") }

// Restart starts a stopped server again on the same ports with the same data.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("slapd: already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "slapd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("slapd: log: %w", err)
	}
	// -d keeps slapd in the foreground; "stats" logs connections and operations.
	cmd := exec.Command(slapdPath, "-f", s.confPath(), "-d", "stats",
		"-h", s.URL()+"/ "+s.LDAPSURL()+"/")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.dir
	// Killed with the test binary even if it panics or is killed itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("slapd: start: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range []int{s.port, s.tlsPort} {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				s.cmd = nil
				out, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
				return fmt.Errorf("slapd: exited during start: %s", tail(out))
			default:
			}
			if time.Now().After(deadline) {
				s.stopLocked()
				return fmt.Errorf("slapd: port %d not ready", port)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// Stop ends slapd (SIGTERM, then SIGKILL after 10 s) and waits for it. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGCONT) // a paused slapd cannot handle SIGTERM
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Pause freezes slapd (SIGSTOP): connections are still accepted by the kernel but nothing is
// answered, as with a hung server or a black-holed network path. Resume undoes it.
//
// It returns once every thread of slapd is stopped: the kernel delivers SIGSTOP when each thread
// next runs, so on a busy machine a thread could otherwise still answer a request sent right
// after the signal.
func (s *Server) Pause() {
	s.signal(syscall.SIGSTOP)
	s.mu.Lock()
	var pid int
	if s.cmd != nil {
		pid = s.cmd.Process.Pid
	}
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !allThreadsStopped(pid) {
		time.Sleep(5 * time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in state T (stopped), per
// /proc/<pid>/task/<tid>/stat (proc(5)). Where /proc cannot be read it reports true.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue
		}
		// The state follows the command name, which is in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false
		}
	}
	return true
}

// Resume continues a paused slapd (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	}
}

// Close stops slapd and removes its folder.
func (s *Server) Close() error {
	s.Stop()
	return os.RemoveAll(s.dir)
}

// Log is slapd's log so far (for failure messages).
func (s *Server) Log() string {
	out, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
	return string(out)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("slapd: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// writeTLS creates a CA, a server certificate for 127.0.0.1 and the bot's client certificate.
func (s *Server) writeTLS() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slapd test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage, ip bool) ([]byte, []byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subject,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kd, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), nil
	}
	srvPEM, srvKey, err := leaf(2, pkix.Name{CommonName: "localhost"}, x509.ExtKeyUsageServerAuth, true)
	if err != nil {
		return err
	}
	s.clientPEM, s.clientKey, err = leaf(3, pkix.Name{CommonName: "onbehalf-bot", OrganizationalUnit: []string{"services"}, Organization: []string{"contoso"}},
		x509.ExtKeyUsageClientAuth, false)
	if err != nil {
		return err
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, b := range map[string][]byte{"ca.pem": s.caPEM, "server.pem": srvPEM, "server.key": srvKey} {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
