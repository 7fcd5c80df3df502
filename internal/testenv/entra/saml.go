package entra

// On-behalf-of requests that ask for a SAML 2.0 assertion for an enterprise application.
//
// Sources:
//   - entra-docs identity-platform/v2-oauth2-on-behalf-of-flow.md, "SAML assertions obtained
//     with an OAuth2.0 OBO flow": the request adds requested_token_type
//     urn:ietf:params:oauth:token-type:saml2 (or saml1); scope is the SAML app's Entity ID plus
//     "/.default" ("spn:" before an Entity ID without a URI scheme); the response carries the
//     assertion, UTF-8 and base64url-encoded, in access_token, with token_type Bearer,
//     expires_in, ext_expires_in, expires_on, resource and issued_token_type; the Recipient of
//     SubjectConfirmationData is the app's first non-wildcard reply URL; there is no
//     InResponseTo; consent is required as for any OBO.
//   - entra-docs identity-platform/reference-saml-tokens.md and single-sign-on-saml-protocol.md:
//     issuer https://sts.windows.net/{tenant}/, an enveloped RSA-SHA256 signature with exclusive
//     canonicalization, NameID with its Format, bearer SubjectConfirmation, Conditions with
//     NotBefore/NotOnOrAfter and an AudienceRestriction naming the Entity ID, attributes
//     (tenantid, objectidentifier, name), an AuthnStatement.
//   - entra-docs reference-error-codes.md: AADSTS50105 (user not assigned to a role of an app
//     that requires assignment), AADSTS500011 (resource principal not found in the tenant).
//   - RFC 4648 §5 (base64url).

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// SAML constants (SAML 2.0 core, OASIS saml-core-2.0-os; RFC 8693 §3 token type identifiers).
const (
	SAML2TokenType   = "urn:ietf:params:oauth:token-type:saml2"
	SAML1TokenType   = "urn:ietf:params:oauth:token-type:saml1"
	SAMLAssertionNS  = "urn:oasis:names:tc:SAML:2.0:assertion"
	BearerMethod     = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	NameIDEmail      = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	NameIDPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	samlTimeFormat   = "2006-01-02T15:04:05.000Z"
	claimsNS         = "http://schemas.microsoft.com/identity/claims/"
)

// SAMLApp is an enterprise application configured for SAML single sign-on.
type SAMLApp struct {
	// EntityID is the application's identifier (the Audience of its assertions).
	EntityID string
	// ReplyURLs are its reply (ACS) URLs; the first without a wildcard is the Recipient.
	ReplyURLs []string
	// NameID chooses the NameID value: "upn" (the default, user.userprincipalname with the
	// emailAddress format) or "objectId" (user.objectid, persistent).
	NameID string
	// AssignmentRequired refuses users not in Assigned (AADSTS50105).
	AssignmentRequired bool
	// Assigned are the object ids of users assigned to the app.
	Assigned []string
}

// SAMLFault makes the next SAML answers wrong in one way, as a broken or hostile issuer
// would; the application must refuse each.
type SAMLFault int

// Faults of SAML answers.
const (
	SAMLFaultNone SAMLFault = iota
	// SAMLForeignKey signs with a key and certificate the application does not trust.
	SAMLForeignKey
	// SAMLTampered extends the Conditions' NotOnOrAfter after signing.
	SAMLTampered
	// SAMLReplay answers with the assertion issued last for the same user and app.
	SAMLReplay
	// SAMLOtherUser names another user (OtherNameID) in a correctly signed assertion, as a
	// wrong claims mapping would.
	SAMLOtherUser
	// SAMLStaleConfirmation signs an assertion whose SubjectConfirmationData NotOnOrAfter has
	// passed while its Conditions are still valid.
	SAMLStaleConfirmation
	// SAMLStaleConditions signs an assertion whose Conditions NotOnOrAfter has passed while its
	// SubjectConfirmationData is still valid.
	SAMLStaleConditions
)

type samlState struct {
	mu       sync.Mutex
	apps     map[string]SAMLApp // by scope resource ("https://…" or "spn:…")
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	foreign  *rsa.PrivateKey
	fcert    *x509.Certificate
	fault    SAMLFault
	otherID  string
	last     map[string]string // oid + "\n" + entity → last encoded assertion
	issued   map[string]int    // entity → assertions issued
	all      []string          // every encoded assertion issued, for log checks
	lifetime time.Duration
}

// samlStates holds each server's SAML state, kept beside the Server so this feature stays in
// its own file.
var samlStates sync.Map // *Server → *samlState

func (s *Server) samlState() *samlState {
	if st, ok := samlStates.Load(s); ok {
		return st.(*samlState)
	}
	st := &samlState{apps: map[string]SAMLApp{}, last: map[string]string{}, issued: map[string]int{}}
	st.key, st.cert = selfSigned("stand-in Entra SAML signing")
	st.foreign, st.fcert = selfSigned("not Entra")
	v, _ := samlStates.LoadOrStore(s, st)
	return v.(*samlState)
}

func selfSigned(cn string) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		// Entra's SAML signing certificates are valid for three years.
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(3 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return key, cert
}

// samlResource is the scope resource naming an Entity ID ("spn:" before one without a scheme).
func samlResource(entityID string) string {
	if strings.Contains(entityID, "://") || strings.HasPrefix(entityID, "spn:") || strings.HasPrefix(entityID, "urn:") {
		return entityID
	}
	return "spn:" + entityID
}

// AddSAMLApp adds (or replaces) an enterprise application with SAML single sign-on.
func (s *Server) AddSAMLApp(a SAMLApp) {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.apps[samlResource(a.EntityID)] = a
}

// SAMLApps lists the enterprise applications with SAML single sign-on.
func (s *Server) SAMLApps() []SAMLApp {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []SAMLApp
	for _, a := range st.apps {
		out = append(out, a)
	}
	return out
}

// SAMLSigningCertificate is the certificate an application trusts for the tenant's assertions
// (what the enterprise app's "Federation Metadata XML" publishes).
func (s *Server) SAMLSigningCertificate() *x509.Certificate { return s.samlState().cert }

// SetSAMLFault makes every following SAML answer carry fault (SAMLFaultNone restores them);
// otherNameID is the NameID SAMLOtherUser puts in.
func (s *Server) SetSAMLFault(f SAMLFault, otherNameID string) {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.fault, st.otherID = f, otherNameID
}

// SetSAMLLifetime sets the assertions' lifetime (default: the server's token lifetime).
func (s *Server) SetSAMLLifetime(d time.Duration) {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lifetime = d
}

// SAMLCount is how many SAML assertions were issued for an Entity ID.
func (s *Server) SAMLCount(entityID string) int {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.issued[entityID]
}

// IssuedSAML returns every encoded assertion issued so far (for checks that none leaks).
func (s *Server) IssuedSAML() []string {
	st := s.samlState()
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.all...)
}

// samlOnBehalfOf answers an OBO request with requested_token_type set.
func (s *Server) samlOnBehalfOf(client *App, form url.Values) (int, any) {
	switch form.Get("requested_token_type") {
	case SAML2TokenType:
	case SAML1TokenType:
		// Documented, but nothing here relies on it; refuse loudly rather than fake it.
		return http.StatusBadRequest, aadError("invalid_request", 900144, "The stand-in issues SAML 2.0 assertions only.", nil)
	default:
		return http.StatusBadRequest, aadError("invalid_request", 900144, "The value of requested_token_type is not supported.", nil)
	}
	claims, fail := s.checkAssertion(client, form.Get("assertion"))
	if fail != nil {
		return fail.status, fail.body
	}
	scopes := ResourceScopes(form.Get("scope"))
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
		return http.StatusBadRequest, aadError("invalid_scope", 70011, "For a SAML assertion the scope must be the application's Entity ID followed by /.default.", nil)
	}
	resource := strings.TrimSuffix(scopes[0], "/.default")
	st := s.samlState()
	st.mu.Lock()
	app, ok := st.apps[resource]
	st.mu.Unlock()
	if !ok {
		return http.StatusBadRequest, aadError("invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", resource, s.Tenant), nil)
	}
	oid, _ := claims["oid"].(string)
	// The bot must hold consent on the enterprise app, as for any {resource}/.default request.
	u, _, fail := s.checkUserAccess(client, oid, resource, []string{".default"})
	if fail != nil {
		return fail.status, fail.body
	}
	if app.AssignmentRequired && !containsFold(app.Assigned, oid) {
		return http.StatusBadRequest, aadError("invalid_grant", 50105, fmt.Sprintf("Your administrator has configured the application %s to block users unless they are specifically granted ('assigned') access to the application. The signed in user '%s' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator.", app.EntityID, u.UPN), nil)
	}
	encoded, exp, err := s.issueSAML(st, app, u)
	if err != nil {
		return http.StatusInternalServerError, aadError("server_error", 90033, "A transient error has occurred.", nil)
	}
	st.mu.Lock()
	st.issued[app.EntityID]++
	st.mu.Unlock()
	now := s.now()
	return http.StatusOK, map[string]any{
		"token_type":        "Bearer",
		"expires_in":        int(exp.Sub(now).Seconds()),
		"ext_expires_in":    0,
		"expires_on":        strconv.FormatInt(exp.Unix(), 10),
		"resource":          app.EntityID,
		"access_token":      encoded,
		"issued_token_type": SAML2TokenType,
	}
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// issueSAML builds, signs and encodes an assertion for u at app, applying the current fault.
func (s *Server) issueSAML(st *samlState, app SAMLApp, u User) (string, time.Time, error) {
	st.mu.Lock()
	fault, other, lifetime := st.fault, st.otherID, st.lifetime
	prev := st.last[u.ObjectID+"\n"+app.EntityID]
	st.mu.Unlock()
	if lifetime == 0 {
		lifetime = s.lifetime()
	}
	now := s.now().UTC()
	exp := now.Add(lifetime)
	if fault == SAMLReplay && prev != "" {
		return prev, exp, nil
	}
	nameID, format := u.UPN, NameIDEmail
	if app.NameID == "objectId" {
		nameID, format = u.ObjectID, NameIDPersistent
	}
	if fault == SAMLOtherUser {
		nameID = other
	}
	recipient := ""
	for _, r := range app.ReplyURLs {
		if !strings.Contains(r, "*") {
			recipient = r
			break
		}
	}
	doc := etree.NewDocument()
	a := doc.CreateElement("Assertion")
	a.CreateAttr("xmlns", SAMLAssertionNS)
	a.CreateAttr("ID", "_"+uuid.NewString())
	a.CreateAttr("IssueInstant", now.Format(samlTimeFormat))
	a.CreateAttr("Version", "2.0")
	a.CreateElement("Issuer").SetText("https://sts.windows.net/" + s.Tenant + "/")
	subj := a.CreateElement("Subject")
	nid := subj.CreateElement("NameID")
	nid.CreateAttr("Format", format)
	nid.SetText(nameID)
	sc := subj.CreateElement("SubjectConfirmation")
	sc.CreateAttr("Method", BearerMethod)
	scd := sc.CreateElement("SubjectConfirmationData")
	confirmUntil, conditionsUntil := exp, exp
	switch fault {
	case SAMLStaleConfirmation:
		confirmUntil = now.Add(-time.Minute)
	case SAMLStaleConditions:
		conditionsUntil = now.Add(-time.Minute)
	}
	scd.CreateAttr("NotOnOrAfter", confirmUntil.Format(samlTimeFormat))
	if recipient != "" {
		scd.CreateAttr("Recipient", recipient)
	}
	cond := a.CreateElement("Conditions")
	cond.CreateAttr("NotBefore", now.Add(-5*time.Minute).Format(samlTimeFormat))
	cond.CreateAttr("NotOnOrAfter", conditionsUntil.Format(samlTimeFormat))
	cond.CreateElement("AudienceRestriction").CreateElement("Audience").SetText(app.EntityID)
	attrs := a.CreateElement("AttributeStatement")
	for name, v := range map[string]string{
		claimsNS + "tenantid": s.Tenant, claimsNS + "objectidentifier": u.ObjectID,
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": u.UPN, claimsNS + "displayname": u.Name,
	} {
		at := attrs.CreateElement("Attribute")
		at.CreateAttr("Name", name)
		at.CreateElement("AttributeValue").SetText(v)
	}
	authn := a.CreateElement("AuthnStatement")
	authn.CreateAttr("AuthnInstant", now.Format(samlTimeFormat))
	authn.CreateAttr("SessionIndex", "_"+uuid.NewString())
	authn.CreateElement("AuthnContext").CreateElement("AuthnContextClassRef").SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:Password")

	key, cert := st.key, st.cert
	if fault == SAMLForeignKey {
		key, cert = st.foreign, st.fcert
	}
	signed, err := SignSAML(a, key, cert)
	if err != nil {
		return "", time.Time{}, err
	}
	if fault == SAMLTampered {
		// Extend the validity window, as someone keeping an assertion for later would.
		if el := signed.FindElement("./Conditions"); el != nil {
			el.CreateAttr("NotOnOrAfter", exp.Add(30*24*time.Hour).Format(samlTimeFormat))
		}
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	xml, err := out.WriteToString()
	if err != nil {
		return "", time.Time{}, err
	}
	encoded := base64.RawURLEncoding.EncodeToString([]byte(xml))
	st.mu.Lock()
	st.last[u.ObjectID+"\n"+app.EntityID] = encoded
	st.all = append(st.all, encoded)
	st.mu.Unlock()
	logcheck.Issue("SAML assertion", encoded)
	return encoded, exp, nil
}

// SignSAML signs an assertion element with an enveloped RSA-SHA256 signature (exclusive
// canonicalization) placed after its Issuer, as the SAML schema orders it.
func SignSAML(a *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate) (*etree.Element, error) {
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	// The enveloped signature is computed over the assertion without it, then placed after the
	// Issuer, as the SAML schema orders it.
	sig, err := ctx.ConstructSignature(a, true)
	if err != nil {
		return nil, err
	}
	signed := a.Copy()
	signed.InsertChildAt(1, sig)
	return signed, nil
}
