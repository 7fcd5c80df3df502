package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SAML2TokenType asks Entra for a SAML 2.0 assertion (RFC 8693 §3 token type identifier).
const SAML2TokenType = "urn:ietf:params:oauth:token-type:saml2"

// directClient makes token requests MSAL cannot make, with the same client credential.
type directClient struct {
	tokenURL  string
	clientID  string
	assertion func(context.Context) (string, error) // federated credential (managed identity)
	secret    string                                // local development only
	http      *http.Client
}

// SAMLAssertion is a SAML 2.0 assertion Entra issued for an enterprise application on a
// user's behalf. Encoded is exactly what Entra returned: the assertion's XML, base64url
// encoded. It is a bearer credential: never log or store it.
type SAMLAssertion struct {
	Encoded   string
	ExpiresOn time.Time
}

// ErrMalformedAnswer is an answer from Entra the client cannot use.
var ErrMalformedAnswer = errors.New("entra: malformed token answer")

// OnBehalfOfSAML exchanges the user's assertion (a token for this app) for a SAML 2.0
// assertion for the enterprise application whose Entity ID is entityID: the OBO request with
// requested_token_type urn:ietf:params:oauth:token-type:saml2 and scope {entityID}/.default
// (entra-docs v2-oauth2-on-behalf-of-flow.md, "SAML assertions obtained with an OAuth2.0 OBO
// flow"; an Entity ID without a URI scheme is named "spn:{entityID}").
//
// MSAL Go is bypassed here because its on-behalf-of request has no way to add
// requested_token_type and it expects a JWT access token in the answer; the request is sent
// to the same v2.0 token endpoint with the same client credential (the managed identity's
// federated assertion), and the answer is not cached: the caller keeps what it derives from it.
func (c *Client) OnBehalfOfSAML(ctx context.Context, userAssertion, entityID string) (SAMLAssertion, error) {
	d := c.direct
	resource := entityID
	if !strings.Contains(entityID, "://") && !strings.HasPrefix(entityID, "spn:") && !strings.HasPrefix(entityID, "urn:") {
		resource = "spn:" + entityID
	}
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"requested_token_use":  {"on_behalf_of"},
		"requested_token_type": {SAML2TokenType},
		"assertion":            {userAssertion},
		"scope":                {resource + "/.default"},
		"client_id":            {d.clientID},
	}
	switch {
	case d.assertion != nil:
		ca, err := d.assertion(ctx)
		if err != nil {
			return SAMLAssertion{}, fmt.Errorf("on-behalf-of (SAML): client assertion: %w", err)
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", ca)
	case d.secret != "":
		form.Set("client_secret", d.secret)
	default:
		return SAMLAssertion{}, errors.New("on-behalf-of (SAML): no client credential")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return SAMLAssertion{}, fmt.Errorf("on-behalf-of (SAML): %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.http.Do(req)
	if err != nil {
		return SAMLAssertion{}, fmt.Errorf("on-behalf-of (SAML): %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return SAMLAssertion{}, fmt.Errorf("on-behalf-of (SAML): %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var body entraError
		if json.Unmarshal(raw, &body) != nil || body.Error == "" {
			return SAMLAssertion{}, fmt.Errorf("on-behalf-of (SAML): HTTP %d", resp.StatusCode)
		}
		// The description is Entra's text (codes and ids, no token); keep it for the log.
		return SAMLAssertion{}, body.classify(fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, body.Error, firstLine(body.Description)))
	}
	var ok struct {
		AccessToken     string          `json:"access_token"`
		IssuedTokenType string          `json:"issued_token_type"`
		ExpiresIn       json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil || ok.AccessToken == "" {
		return SAMLAssertion{}, fmt.Errorf("%w: no assertion", ErrMalformedAnswer)
	}
	if ok.IssuedTokenType != SAML2TokenType {
		return SAMLAssertion{}, fmt.Errorf("%w: issued_token_type %q is not a SAML 2.0 assertion", ErrMalformedAnswer, ok.IssuedTokenType)
	}
	// expires_in is a number at v2.0 and a string at v1.0.
	secs, err := strconv.Atoi(strings.Trim(string(ok.ExpiresIn), `"`))
	if err != nil || secs <= 0 {
		return SAMLAssertion{}, fmt.Errorf("%w: expires_in", ErrMalformedAnswer)
	}
	return SAMLAssertion{Encoded: ok.AccessToken, ExpiresOn: c.now().Add(time.Duration(secs) * time.Second)}, nil
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
