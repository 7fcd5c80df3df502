// Package testenv holds stand-ins for the cloud services onbehalf talks to that cannot run on
// a developer machine or in CI: the Bot Framework channel and connector, Entra ID and the
// managed-identity endpoint (sub-packages add Key Vault, Graph, Atlassian …). Each is a real
// HTTPS server that follows the documented protocol and enforces its rules. Production code
// reaches them only through its ordinary settings (endpoints, authority host) and an HTTP
// client that trusts the test CA — or, for a handler process, SSL_CERT_FILE.
//
// Nothing here is imported by production code.
package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is a throw-away certificate authority for the stand-ins' TLS.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool

	once sync.Once
	leaf tls.Certificate
}

var (
	sharedOnce sync.Once
	sharedCA   *CA
)

// SharedCA returns the process-wide test CA, so one trust bundle covers every stand-in.
func SharedCA() *CA {
	sharedOnce.Do(func() {
		var err error
		if sharedCA, err = NewCA(); err != nil {
			panic(err)
		}
	})
	return sharedCA
}

// NewCA creates a CA valid for a day.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "onbehalf test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// serverCert is a leaf certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) serverCert() tls.Certificate {
	ca.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			Subject:      pkix.Name{CommonName: "localhost"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
		if err != nil {
			panic(err)
		}
		ca.leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return ca.leaf
}

// NewServer starts an HTTPS server on a loopback port with a certificate from this CA.
func (ca *CA) NewServer(h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert()}, MinVersion: tls.VersionTLS12}
	s.StartTLS()
	return s
}

// Client returns an HTTP client that trusts this CA (and nothing else).
func (ca *CA) Client() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64},
	}
}

// PEM is the CA certificate in PEM form.
func (ca *CA) PEM() []byte { return ca.pem }

// WriteBundle writes the CA certificate to dir and returns its path, for SSL_CERT_FILE.
func (ca *CA) WriteBundle(dir string) (string, error) {
	p := filepath.Join(dir, "onbehalf-test-ca.pem")
	return p, os.WriteFile(p, ca.pem, 0o600)
}
