// Package samlapp is a stand-in for an application that trusts Microsoft Entra ID as its SAML
// identity provider and has its own OAuth 2.0 authorization server (SAP NetWeaver's
// /sap/bc/sec/oauth2/token is the model): a token endpoint that accepts the SAML 2.0 bearer
// grant, and a per-user API that answers only with the data of the user its token is for.
//
// The token endpoint validates an assertion as a real service provider does, and refuses with
// invalid_grant otherwise (RFC 7522 §2.1, §3, §3.1; RFC 6749 §5.2; SAML 2.0 core and profiles
// saml-profiles-2.0-os §4.1.4.2-3 for bearer subject confirmation):
//   - grant_type urn:ietf:params:oauth:grant-type:saml2-bearer, one assertion, base64url encoded
//     (RFC 4648 §5; pad characters tolerated, line breaks not);
//   - client authentication with HTTP Basic (SAP's OAuth 2.0 client; RFC 6749 §2.3.1);
//   - an enveloped XML signature verified with the identity provider's certificate only, and
//     every further check made on the element the signature covers (goxmldsig returns it), so a
//     wrapped or tampered document is refused;
//   - Issuer = the identity provider; an AudienceRestriction naming this application;
//   - a bearer SubjectConfirmation whose Recipient is this token endpoint and whose
//     NotOnOrAfter has not passed; Conditions NotBefore/NotOnOrAfter (no clock leeway beyond
//     Leeway);
//   - one-time use: an assertion ID is remembered until it expires and refused again;
//   - the access token is issued for the assertion's NameID, which must be a known user.
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package samlapp

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// SAML2BearerGrant is the RFC 7522 grant type.
const SAML2BearerGrant = "urn:ietf:params:oauth:grant-type:saml2-bearer"

const (
	assertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"
	bearer      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	timeFormat  = "2006-01-02T15:04:05Z07:00"
)

// Config describes the application's trust and its users.
type Config struct {
	// EntityID is this application's SAML identifier (the Audience it accepts).
	EntityID string
	// IdPIssuer is the identity provider's Issuer (https://sts.windows.net/{tenant}/).
	IdPIssuer string
	// IdPCertificate is the identity provider's signing certificate.
	IdPCertificate *x509.Certificate
	// ClientID and ClientSecret authenticate the bot at the token endpoint.
	ClientID, ClientSecret string
	// Data is what each user (by NameID) may see: the API answers with Data[subject].
	Data map[string][]string
	// TokenLifetime is the lifetime of issued access tokens (default 1 h).
	TokenLifetime time.Duration
	// Now is the clock.
	Now func() time.Time
}

// Server is the running application.
type Server struct {
	// URL is its base; TokenURL its token endpoint; APIURL its API base.
	URL, TokenURL, APIURL string

	cfg Config
	srv *httptest.Server

	mu        sync.Mutex
	audience  string
	skew      time.Duration
	used      map[string]time.Time // assertion ID → its expiry
	tokens    map[string]issued
	exchanges int
	refusals  []string
	down      bool
	echo      bool
	apiCalls  int
	issuedAll []string
}

type issued struct {
	subject string
	expires time.Time
}

// Start runs the application on a loopback HTTPS port.
func Start(cfg Config) *Server {
	logcheck.Issue("SAML application client secret", cfg.ClientSecret)
	s := &Server{cfg: cfg, audience: cfg.EntityID, used: map[string]time.Time{}, tokens: map[string]issued{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sap/bc/sec/oauth2/token", s.token)
	mux.HandleFunc("GET /api/", s.api)
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	s.TokenURL = s.URL + "/sap/bc/sec/oauth2/token"
	s.APIURL = s.URL + "/api"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) now() time.Time {
	now := time.Now()
	if s.cfg.Now != nil {
		now = s.cfg.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Add(s.skew)
}

// ExpectAudience changes the Audience the application accepts (an administrator renaming it).
func (s *Server) ExpectAudience(a string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audience = a
}

// Skew moves the application's clock by d (a clock far ahead sees assertions as expired).
func (s *Server) Skew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// RevokeTokens invalidates every access token issued so far.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]issued{}
}

// SetDown makes the application answer 503 to everything while down is true.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// EchoAssertions makes refusals quote the assertion in error_description, as a careless
// server might; the bot must not pass that on to its log.
func (s *Server) EchoAssertions(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = on
}

// Exchanges is how many assertions were redeemed successfully.
func (s *Server) Exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// APICalls is how many API requests were answered with data.
func (s *Server) APICalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiCalls
}

// IssuedTokens returns every access token issued so far (for checks that none leaks).
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issuedAll...)
}

// SetUserData sets what a user (by NameID) may see; nil removes the user from the application.
func (s *Server) SetUserData(nameID string, records []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := map[string][]string{}
	for k, v := range s.cfg.Data {
		data[k] = v
	}
	if records == nil {
		delete(data, nameID)
	} else {
		data[nameID] = records
	}
	s.cfg.Data = data
}

// TrustIdP sets the identity provider the application trusts.
func (s *Server) TrustIdP(issuer string, cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.IdPIssuer, s.cfg.IdPCertificate = issuer, cert
}

// Refusals are the reasons of refused token requests, oldest first.
func (s *Server) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refusals...)
}

func (s *Server) isDown(w http.ResponseWriter) bool {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	}
	return down
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if s.isDown(w) {
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="OAuth"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed"})
		return
	}
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "form-encoded body expected"})
		return
	}
	if g := r.PostForm.Get("grant_type"); g != SAML2BearerGrant {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant_type " + g + " is not supported"})
		return
	}
	if len(r.PostForm["assertion"]) != 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "exactly one assertion is required"})
		return
	}
	subject, err := s.validate(r.PostForm.Get("assertion"))
	if err != nil {
		s.mu.Lock()
		s.refusals = append(s.refusals, err.Error())
		s.mu.Unlock()
		desc := err.Error()
		s.mu.Lock()
		if s.echo {
			desc += " in " + r.PostForm.Get("assertion")
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": desc})
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "app." + hex.EncodeToString(b)
	life := s.cfg.TokenLifetime
	if life == 0 {
		life = time.Hour
	}
	exp := s.now().Add(life)
	s.mu.Lock()
	s.tokens[tok] = issued{subject: subject, expires: exp}
	s.issuedAll = append(s.issuedAll, tok)
	logcheck.Issue("SAML application token", tok)
	s.exchanges++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(life.Seconds()), "scope": "ZAPI_USER_DATA"})
}

// Leeway is the clock skew the application tolerates.
const Leeway = 30 * time.Second

// validate applies the service provider's rules to an encoded assertion and returns its
// subject (NameID).
func (s *Server) validate(encoded string) (string, error) {
	if strings.ContainsAny(encoded, "\r\n+/") {
		return "", fmt.Errorf("assertion is not base64url without line breaks")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(encoded, "="))
	if err != nil {
		return "", fmt.Errorf("assertion is not base64url: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return "", fmt.Errorf("assertion is not XML")
	}
	root := doc.Root()
	if root == nil || root.Tag != "Assertion" || root.NamespaceURI() != assertionNS {
		return "", fmt.Errorf("not a SAML 2.0 Assertion")
	}
	now := s.now()
	s.mu.Lock()
	issuer, cert := s.cfg.IdPIssuer, s.cfg.IdPCertificate
	s.mu.Unlock()
	if cert == nil {
		return "", fmt.Errorf("no identity provider is trusted")
	}
	vctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vctx.Clock = dsig.NewFakeClockAt(now)
	a, err := vctx.Validate(root)
	if err != nil {
		return "", fmt.Errorf("signature: %v", err)
	}
	// From here on only the signed element is read.
	if iss := text(a, "Issuer"); iss != issuer {
		return "", fmt.Errorf("issuer %q is not trusted", iss)
	}
	s.mu.Lock()
	audience := s.audience
	s.mu.Unlock()
	audOK := false
	for _, el := range a.FindElements("./Conditions/AudienceRestriction/Audience") {
		if strings.TrimSpace(el.Text()) == audience {
			audOK = true
		}
	}
	if !audOK {
		return "", fmt.Errorf("audience: the assertion is not for %s", audience)
	}
	notBefore, err1 := attrTime(a.FindElement("./Conditions"), "NotBefore")
	notAfter, err2 := attrTime(a.FindElement("./Conditions"), "NotOnOrAfter")
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("conditions: validity window missing or malformed")
	}
	if now.Add(Leeway).Before(notBefore) {
		return "", fmt.Errorf("conditions: not valid yet")
	}
	if !now.Add(-Leeway).Before(notAfter) {
		return "", fmt.Errorf("conditions: expired")
	}
	confirmed := false
	for _, sc := range a.FindElements("./Subject/SubjectConfirmation") {
		scd := sc.FindElement("./SubjectConfirmationData")
		if sc.SelectAttrValue("Method", "") != bearer || scd == nil {
			continue
		}
		until, err := attrTime(scd, "NotOnOrAfter")
		if err != nil || !now.Add(-Leeway).Before(until) {
			return "", fmt.Errorf("subject confirmation: expired")
		}
		if rcpt := scd.SelectAttrValue("Recipient", ""); rcpt != s.TokenURL {
			return "", fmt.Errorf("subject confirmation: recipient %q is not this token endpoint", rcpt)
		}
		if scd.SelectAttr("InResponseTo") != nil {
			return "", fmt.Errorf("subject confirmation: unsolicited assertion has InResponseTo")
		}
		confirmed = true
	}
	if !confirmed {
		return "", fmt.Errorf("subject confirmation: no bearer confirmation")
	}
	id := a.SelectAttrValue("ID", "")
	if id == "" {
		return "", fmt.Errorf("assertion has no ID")
	}
	s.mu.Lock()
	for k, exp := range s.used {
		if now.After(exp.Add(Leeway)) {
			delete(s.used, k)
		}
	}
	_, replay := s.used[id]
	if !replay {
		s.used[id] = notAfter
	}
	s.mu.Unlock()
	if replay {
		return "", fmt.Errorf("replay: assertion %s was already used", id)
	}
	subject := text(a, "Subject/NameID")
	s.mu.Lock()
	_, known := s.cfg.Data[subject]
	s.mu.Unlock()
	if !known {
		return "", fmt.Errorf("subject: unknown user")
	}
	return subject, nil
}

func text(el *etree.Element, path string) string {
	if f := el.FindElement("./" + path); f != nil {
		return strings.TrimSpace(f.Text())
	}
	return ""
}

func attrTime(el *etree.Element, name string) (time.Time, error) {
	if el == nil {
		return time.Time{}, fmt.Errorf("missing")
	}
	return time.Parse(timeFormat, el.SelectAttrValue(name, ""))
}

// api answers GET /api/me with the data of the token's subject, and nothing else.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	if s.isDown(w) {
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	is, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !s.now().Before(is.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/api/me" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.mu.Lock()
	s.apiCalls++
	s.mu.Unlock()
	s.mu.Lock()
	records := s.cfg.Data[is.subject]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"user": is.subject, "records": records})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
