// Package saml reaches applications that trust Microsoft Entra ID only through SAML, as the
// signed-in user: the user's SSO assertion is exchanged on their behalf for a SAML 2.0
// assertion for the application's enterprise app (entra-docs v2-oauth2-on-behalf-of-flow.md,
// "SAML assertions obtained with an OAuth2.0 OBO flow"), which the application's own OAuth 2.0
// server redeems for its access token with the SAML 2.0 bearer grant (RFC 7522). The
// application then applies that user's own authorizations (SAP: "principal propagation").
//
// The assertion lives only for the exchange: it is never stored or logged. The application's
// access token is kept sealed in the token store per user and application (through sso.Manager,
// like an on-behalf-of token) and reused until shortly before it expires.
package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/policy"
)

// SAML2BearerGrant is the RFC 7522 §2.1 grant type.
const SAML2BearerGrant = "urn:ietf:params:oauth:grant-type:saml2-bearer"

// Config is one SAML application. In SAML_APPS (a JSON array):
//
//	[{"name":"sap","display":"SAP S/4HANA",
//	  "entityId":"spn:S4H_100",
//	  "tokenUrl":"https://s4h.contoso.com/sap/bc/sec/oauth2/token",
//	  "apiBaseUrl":"https://s4h.contoso.com/sap/opu/odata/sap",
//	  "clientId":"ONBEHALF_BOT","clientSecretName":"sap-client-secret",
//	  "nameId":"upn","scope":"ZAPI_SALES_ORDER_0001"}]
//
// entityId is the Identifier (Entity ID) of the application's enterprise app in Entra;
// tokenUrl its OAuth 2.0 token endpoint accepting the SAML 2.0 bearer grant (the enterprise
// app's first reply URL must be this URL: it becomes the assertion's Recipient); clientId and
// the Key Vault secret clientSecretName are the bot's OAuth client at the application (HTTP
// Basic); nameId says which user attribute the enterprise app sends as NameID ("upn", the
// default, or "objectId") so the bot can refuse an assertion that names anyone but the asking
// user; assertionEncoding is "base64url" (RFC 7522, the default) or "base64" for servers that
// want the standard alphabet; scope is sent to the application's token endpoint when set.
type Config struct {
	Name              string `json:"name"`
	Display           string `json:"display,omitempty"`
	EntityID          string `json:"entityId"`
	TokenURL          string `json:"tokenUrl"`
	APIBaseURL        string `json:"apiBaseUrl"`
	ClientID          string `json:"clientId"`
	ClientSecretName  string `json:"clientSecretName"`
	NameID            string `json:"nameId,omitempty"`
	AssertionEncoding string `json:"assertionEncoding,omitempty"`
	Scope             string `json:"scope,omitempty"`
}

// NameID choices.
const (
	NameIDUPN      = "upn"
	NameIDObjectID = "objectId"
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ParseApps decodes and checks SAML_APPS; reserved are names already taken. The error names
// every problem.
func ParseApps(v string, reserved ...string) ([]Config, error) {
	var apps []Config
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&apps); err != nil {
		return nil, fmt.Errorf("must be a JSON array of {name, entityId, tokenUrl, apiBaseUrl, clientId, clientSecretName[, display, nameId, assertionEncoding, scope]}: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range reserved {
		seen[r] = true
	}
	var problems []string
	for i := range apps {
		a := &apps[i]
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("entry %d (%s): ", i, a.Name)+fmt.Sprintf(format, args...))
		}
		switch {
		case !nameRE.MatchString(a.Name):
			bad("name must be lower-case letters, digits and dashes")
		case seen[a.Name]:
			bad("name %q is used twice (or is reserved)", a.Name)
		}
		seen[a.Name] = true
		if strings.TrimSpace(a.EntityID) == "" || strings.ContainsAny(a.EntityID, " \t") {
			bad("entityId must be the enterprise app's Identifier (Entity ID)")
		}
		for field, u := range map[string]string{"tokenUrl": a.TokenURL, "apiBaseUrl": a.APIBaseURL} {
			p, err := url.Parse(u)
			if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil || p.Fragment != "" {
				bad("%s must be an absolute https URL", field)
			}
		}
		if a.ClientID == "" || a.ClientSecretName == "" {
			bad("clientId and clientSecretName (the Key Vault secret holding the client secret) are required")
		}
		switch a.NameID {
		case "":
			a.NameID = NameIDUPN
		case NameIDUPN, NameIDObjectID:
		default:
			bad("nameId must be %q or %q", NameIDUPN, NameIDObjectID)
		}
		switch a.AssertionEncoding {
		case "":
			a.AssertionEncoding = "base64url"
		case "base64url", "base64":
		default:
			bad("assertionEncoding must be \"base64url\" or \"base64\"")
		}
		if a.Display == "" {
			a.Display = a.Name
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return apps, nil
}

// Errors of the exchange, matched with errors.Is; Explain turns them into a sentence.
var (
	// ErrRefused: the application's token endpoint refused the assertion (invalid_grant:
	// audience, time window, replay, signature, unknown user).
	ErrRefused = errors.New("the application refused the assertion")
	// ErrClientRejected: the application does not accept the bot's client credentials.
	ErrClientRejected = errors.New("the application refused the bot's client credentials")
	// ErrUnavailable: the application could not be reached or failed.
	ErrUnavailable = errors.New("the application is unavailable")
	// ErrWrongUser: Entra's assertion names someone other than the asking user; it was not sent.
	ErrWrongUser = errors.New("the assertion names another user")
)

// OBO obtains a SAML assertion on a user's behalf (entra.Client).
type OBO interface {
	OnBehalfOfSAML(ctx context.Context, userAssertion, entityID string) (entra.SAMLAssertion, error)
}

var _ OBO = (*entra.Client)(nil)

// SecretFunc reads a secret by name (secrets.Func).
type SecretFunc func(ctx context.Context, name string) (string, error)

// App exchanges users' assertions for one application's tokens. Safe for concurrent use.
type App struct {
	cfg    Config
	obo    OBO
	secret SecretFunc
	http   *http.Client
	now    func() time.Time
}

// Open returns the working application; it makes no network call.
func (c Config) Open(obo OBO, secret SecretFunc, hc *http.Client, now func() time.Time) (*App, error) {
	if obo == nil || secret == nil {
		return nil, fmt.Errorf("saml %s: on-behalf-of and secrets are required", c.Name)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	return &App{cfg: c, obo: obo, secret: secret, http: hc, now: now}, nil
}

// Config returns the application's configuration.
func (a *App) Config() Config { return a.cfg }

// Exchange turns the user's assertion for the bot into the application's access token for the
// same user: OBO for a SAML assertion, the identity check, then the RFC 7522 grant.
func (a *App) Exchange(ctx context.Context, userAssertion string) (entra.DelegatedToken, error) {
	want, err := a.expectedNameID(userAssertion)
	if err != nil {
		return entra.DelegatedToken{}, err
	}
	sa, err := a.obo.OnBehalfOfSAML(ctx, userAssertion, a.cfg.EntityID)
	if err != nil {
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w", a.cfg.Name, err)
	}
	if err := checkSubject(sa.Encoded, want); err != nil {
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w", a.cfg.Name, err)
	}
	return a.redeem(ctx, sa)
}

// expectedNameID is the identity rule: the NameID must be the asking user's UPN or object id,
// read from the user's assertion, which sso.Manager has already validated as the caller's.
func (a *App) expectedNameID(userAssertion string) (string, error) {
	tok, err := jwt.ParseSigned(userAssertion, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", fmt.Errorf("saml %s: user assertion: %w", a.cfg.Name, err)
	}
	var c struct {
		OID  string `json:"oid"`
		UPN  string `json:"upn"`
		PUN  string `json:"preferred_username"`
		Name string `json:"unique_name"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", fmt.Errorf("saml %s: user assertion: %w", a.cfg.Name, err)
	}
	var v string
	switch a.cfg.NameID {
	case NameIDObjectID:
		v = c.OID
	default:
		v = firstNonEmpty(c.UPN, c.PUN, c.Name)
	}
	if v == "" {
		return "", fmt.Errorf("saml %s: the user assertion does not name the user's %s", a.cfg.Name, a.cfg.NameID)
	}
	return v, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkSubject reads the NameID of the assertion Entra returned (over TLS, from the tenant's
// token endpoint: this is a consistency check, not the signature check the application makes)
// and refuses an assertion for anyone but want.
func checkSubject(encoded, want string) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(encoded, "="))
	if err != nil {
		return fmt.Errorf("%w: the assertion is not base64url", entra.ErrMalformedAnswer)
	}
	// An assertion has at most one Subject and a Subject one identifier (SAML 2.0 core,
	// saml-core-2.0-os §2.3.3 and §2.4.1); more than one is refused rather than one of them
	// picked, since whoever reads the assertion next may pick another.
	var doc struct {
		XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
		Subjects []struct {
			NameIDs []string `xml:"urn:oasis:names:tc:SAML:2.0:assertion NameID"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Subject"`
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&doc); err != nil {
		return fmt.Errorf("%w: not a SAML 2.0 assertion", entra.ErrMalformedAnswer)
	}
	if len(doc.Subjects) != 1 || len(doc.Subjects[0].NameIDs) != 1 {
		return ErrWrongUser
	}
	got := strings.TrimSpace(doc.Subjects[0].NameIDs[0])
	if got == "" || !strings.EqualFold(got, want) {
		return ErrWrongUser
	}
	return nil
}

// redeem presents the assertion at the application's token endpoint (RFC 7522 §2.1).
func (a *App) redeem(ctx context.Context, sa entra.SAMLAssertion) (entra.DelegatedToken, error) {
	secret, err := a.secret(ctx, a.cfg.ClientSecretName)
	if err != nil {
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: client secret: %w", a.cfg.Name, err)
	}
	assertion := strings.TrimRight(sa.Encoded, "=")
	if a.cfg.AssertionEncoding == "base64" {
		raw, err := base64.RawURLEncoding.DecodeString(assertion)
		if err != nil {
			return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w: the assertion is not base64url", a.cfg.Name, entra.ErrMalformedAnswer)
		}
		assertion = base64.StdEncoding.EncodeToString(raw)
	}
	form := url.Values{"grant_type": {SAML2BearerGrant}, "assertion": {assertion}}
	if a.cfg.Scope != "" {
		form.Set("scope", a.cfg.Scope)
	}
	// Redeeming the assertion reads a token; it changes nothing at the application.
	ctx = policy.ReadOnly(audit.WithTarget(ctx, audit.Target{Connector: a.cfg.Name, Audience: a.cfg.EntityID, Scopes: strings.Fields(a.cfg.Scope)}))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w", a.cfg.Name, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(secret))
	resp, err := a.http.Do(req)
	if err != nil {
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w: %v", a.cfg.Name, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &body)
	switch {
	case resp.StatusCode == http.StatusOK && body.AccessToken != "" && strings.EqualFold(body.TokenType, "bearer"):
	case resp.StatusCode >= 500:
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w: HTTP %d", a.cfg.Name, ErrUnavailable, resp.StatusCode)
	case body.Error == "invalid_client" || resp.StatusCode == http.StatusUnauthorized:
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w", a.cfg.Name, ErrClientRejected)
	case body.Error != "":
		return entra.DelegatedToken{}, &RefusedError{App: a.cfg.Name, Code: clip(safeText(body.Error)), Description: clip(safeText(body.Description))}
	default:
		return entra.DelegatedToken{}, fmt.Errorf("saml %s: %w: HTTP %d without a usable answer", a.cfg.Name, ErrUnavailable, resp.StatusCode)
	}
	secs := 0
	_ = json.Unmarshal(bytes.Trim(body.ExpiresIn, `"`), &secs)
	life := time.Duration(secs) * time.Second
	if secs <= 0 {
		// No lifetime given: trust the token no longer than the assertion it came from.
		life = sa.ExpiresOn.Sub(a.now())
	}
	return entra.DelegatedToken{AccessToken: body.AccessToken, ExpiresOn: a.now().Add(life)}, nil
}

// opaqueRun is a run long enough to be (part of) a token or an encoded assertion.
var opaqueRun = regexp.MustCompile(`[A-Za-z0-9+/=_.-]{40,}`)

// safeText keeps an application's error text for the log, minus anything that could be the
// assertion echoed back (markup, or a long encoded run).
func safeText(s string) string {
	if strings.ContainsAny(s, "<>") {
		return "(withheld: the text contains markup)"
	}
	return opaqueRun.ReplaceAllString(s, "(withheld)")
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// RefusedError is the application's refusal of an assertion (RFC 6749 §5.2 error answer).
type RefusedError struct {
	App, Code, Description string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("saml %s: the application refused the assertion: %s: %s", e.App, e.Code, e.Description)
}

// Unwrap makes errors.Is(err, ErrRefused) match.
func (e *RefusedError) Unwrap() error { return ErrRefused }
