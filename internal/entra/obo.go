package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// Errors of the on-behalf-of flow that need the user (entra-docs v2-oauth2-on-behalf-of-flow.md,
// "Error response example"; claims-challenge.md).
var (
	// ErrConsentRequired: the user (or an admin) has not consented to the scopes (AADSTS65001).
	ErrConsentRequired = errors.New("consent required")
	// ErrInteractionRequired: conditional access, MFA or a CAE claims challenge needs the user.
	ErrInteractionRequired = errors.New("interaction required")
	// ErrAssertionRejected: the user assertion is expired or invalid; get a fresh one.
	ErrAssertionRejected = errors.New("user assertion rejected")
	// ErrNotAssigned: the enterprise application requires assignment and the user is not
	// assigned to it (AADSTS50105).
	ErrNotAssigned = errors.New("user not assigned to the application")
)

// OBOError carries an on-behalf-of refusal: the sentinel above it matches, the AADSTS code
// for the log, and a claims challenge to pass on when there is one.
type OBOError struct {
	Kind   error
	Code   string // e.g. "invalid_grant"
	AADSTS string // e.g. "AADSTS65001"
	Claims string
	cause  error
}

func (e *OBOError) Error() string {
	return fmt.Sprintf("on-behalf-of: %v (%s %s)", e.Kind, e.Code, e.AADSTS)
}

// Unwrap lets errors.Is match the kind.
func (e *OBOError) Unwrap() []error { return []error{e.Kind, e.cause} }

// DelegatedToken is a token obtained on behalf of a user.
type DelegatedToken struct {
	AccessToken string
	ExpiresOn   time.Time
}

// OnBehalfOf exchanges the user's assertion (a token whose audience is this app) for a token
// to the downstream scopes (one resource), as that user.
//
// MSAL keeps OBO results in its own in-memory cache keyed by the assertion; the bot does not
// rely on it across turns (a later turn has a new assertion) and keeps results sealed in the
// token store instead (see TestMSALOnBehalfOfCache).
func (c *Client) OnBehalfOf(ctx context.Context, assertion string, scopes []string) (DelegatedToken, error) {
	res, err := c.oboClient().AcquireTokenOnBehalfOf(ctx, assertion, scopes)
	if err != nil {
		return DelegatedToken{}, classifyOBO(err)
	}
	return DelegatedToken{AccessToken: res.AccessToken, ExpiresOn: res.ExpiresOn}, nil
}

// oboClientCalls is how many OBO requests one MSAL client serves. MSAL keeps every OBO result
// in memory, keyed by its assertion, and never evicts it; each turn after a token's expiry
// brings a new assertion, so a long-lived instance would grow without bound. Replacing the
// client drops that cache (the bot keeps OBO results in the token store).
const oboClientCalls = 500

func (c *Client) oboClient() confidential.Client {
	c.oboMu.Lock()
	defer c.oboMu.Unlock()
	c.oboCalls++
	if c.oboCalls > oboClientCalls {
		if fresh, err := c.newCCA(); err == nil {
			c.obo, c.oboCalls = fresh, 1
		}
	}
	return c.obo
}

// classifyOBO maps Entra's error answer to what the caller must do.
func classifyOBO(err error) error {
	var call msalerrors.CallErr
	if !errors.As(err, &call) || call.Resp == nil {
		return fmt.Errorf("on-behalf-of: %w", err)
	}
	// MSAL puts the response body in its error text; decode the JSON part of it.
	msg := call.Error()
	var body entraError
	if i := strings.Index(msg, "{"); i >= 0 {
		_ = json.Unmarshal([]byte(msg[i:]), &body)
	}
	return body.classify(err)
}

// entraError is Entra's error answer (entra-docs v2-oauth2-on-behalf-of-flow.md).
type entraError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	SubError    string `json:"suberror"`
	Claims      string `json:"claims"`
}

// classify maps an error answer to what the caller must do; cause is kept for the log.
func (body entraError) classify(cause error) error {
	e := &OBOError{Code: body.Error, Claims: body.Claims, cause: cause}
	if f := strings.Fields(body.Description); len(f) > 0 {
		e.AADSTS = strings.TrimSuffix(f[0], ":")
	}
	switch {
	case e.AADSTS == "AADSTS65001" || body.SubError == "consent_required":
		e.Kind = ErrConsentRequired
	case e.AADSTS == "AADSTS50105":
		e.Kind = ErrNotAssigned
	case body.Error == "interaction_required" || body.Claims != "" || body.SubError == "basic_action" || body.SubError == "additional_action":
		e.Kind = ErrInteractionRequired
	case body.Error == "invalid_grant":
		e.Kind = ErrAssertionRejected
	default:
		return fmt.Errorf("on-behalf-of: %w", cause)
	}
	return e
}
