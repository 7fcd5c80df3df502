// Package sso signs Teams users in silently and obtains tokens for Entra-protected back ends
// on their behalf.
//
// The path (msteams-docs bot-sso-code.md; entra-docs v2-oauth2-on-behalf-of-flow.md):
//
//  1. A command needs a resource (Microsoft Graph, or a company API) and no usable token
//     exists: the bot parks the request (sealed, expiring) and sends an OAuthCard whose
//     tokenExchangeResource makes Teams fetch an SSO token for the bot without a prompt.
//  2. Teams sends signin/tokenExchange (once per open client). The bot validates the SSO
//     token itself, de-duplicates by the exchange id in the shared token store, hands the
//     token to the Bot Service token service (which then keeps the user's sign-in for the
//     OAuth connection alive), obtains the parked request's resource token with OBO, answers
//     200 and resumes the parked request once. Every duplicate gets the same answer, and no
//     chat message is sent when it is not 200: 412 when the user must consent or act (Teams
//     asks, then retries with the same id, which is exchanged afresh), 400 with a
//     failureDetail for anything else (a refused token, a misconfigured OAuth connection, a
//     store outage). Consent: OBO for Graph needs the user's (or an admin's) consent to the
//     bot's Graph permissions. Signing in through the card consents to what the OAuth
//     connection's scopes ask for; with api://botid-{appId}/.default that is one combined
//     prompt for every permission the app registration lists (entra-docs scopes-oidc.md,
//     "The .default scope"), so one card and one consent are enough.
//  3. Later turns reuse the sealed OBO token until near expiry, then fetch a fresh user
//     assertion from the token service silently and OBO again: a user signs in once.
package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// connectorPrefix names the token-store rows of Entra resources ("entra/graph").
const connectorPrefix = "entra/"

// minValid is how long a stored token must still be valid to be used.
const minValid = 5 * time.Minute

// Errors commands act on.
var (
	// ErrSignInNeeded: the user must sign in (the bot sends the OAuthCard).
	ErrSignInNeeded = errors.New("sign-in needed")
	// ErrUnknownResource: no resource of that name is configured.
	ErrUnknownResource = errors.New("unknown resource")
	// ErrNotConfigured: SSO is not available (anonymous mode or no token store).
	ErrNotConfigured = errors.New("single sign-on is not configured")
)

// NeedsUserError is an OBO refusal the user can resolve (consent, MFA, a claims challenge).
type NeedsUserError struct {
	Resource string
	// Sentence tells the user what to do.
	Sentence string
	Cause    error
}

func (e *NeedsUserError) Error() string {
	return "sign-in needed for " + e.Resource + ": " + e.Cause.Error()
}

// Unwrap makes errors.Is(err, ErrSignInNeeded) and the cause match.
func (e *NeedsUserError) Unwrap() []error { return []error{ErrSignInNeeded, e.Cause} }

// Resource is an Entra-protected back end the bot calls as the user.
type Resource struct {
	// Name is how commands and settings refer to it ("graph", "contoso").
	Name string
	// BaseURL is where its API lives.
	BaseURL string
	// Scopes are the delegated scopes requested with OBO (one resource), e.g.
	// https://graph.microsoft.com/User.Read or api://contoso-api/.default.
	Scopes []string
	// Display is the human name used in sentences ("Microsoft Graph").
	Display string
	// Exchange, when set, turns the user's assertion into the resource's token instead of a
	// plain on-behalf-of request (a SAML application: OBO for a SAML assertion, then the
	// application's own token endpoint). Its result is stored and reused like an OBO token.
	Exchange func(ctx context.Context, userAssertion string) (entra.DelegatedToken, error)
}

// Caller is the authenticated sender of an activity.
type Caller struct {
	// User keys the user's rows in the token store (tenant id + object id).
	User tokenstore.UserKey
	// ChannelUserID and ChannelID address the user at the token service.
	ChannelUserID string
	ChannelID     string
}

// CallerOf derives the caller from an authenticated activity. The tenant is the
// conversation's, or defaultTenant when the channel does not say.
func CallerOf(act *botframework.Activity, defaultTenant string) (Caller, error) {
	tid := strings.ToLower(act.Conversation.TenantID)
	if tid == "" {
		tid = defaultTenant
	}
	oid := strings.ToLower(act.From.AADObjectID)
	if !config.IsGUID(tid) || !config.IsGUID(oid) {
		return Caller{}, fmt.Errorf("%w: the activity does not carry an Entra user (aadObjectId and tenant)", ErrNotConfigured)
	}
	return Caller{User: tokenstore.UserKey{TenantID: tid, ObjectID: oid}, ChannelUserID: act.From.ID, ChannelID: act.BaseChannelID()}, nil
}

// Manager obtains resource tokens for users. Safe for concurrent use.
type Manager struct {
	Store        *tokenstore.Store
	TokenService *botframework.TokenService
	OBO          *entra.Client
	// Assertions checks that a token from the token service is the caller's (nil: not checked).
	Assertions *entra.SSOValidator
	// Connection is the Azure Bot OAuth connection whose scope is the bot's own API.
	Connection string
	Resources  map[string]Resource
	Log        *slog.Logger
	Now        func() time.Time

	flight singleflight.Group
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Resource returns the configured resource of that name.
func (m *Manager) Resource(name string) (Resource, error) {
	r, ok := m.Resources[name]
	if !ok {
		return Resource{}, fmt.Errorf("%w %q", ErrUnknownResource, name)
	}
	return r, nil
}

// Token returns an access token for resource as the caller: the stored one while it is
// valid, else one obtained silently (a fresh assertion from the token service, then OBO).
// ErrSignInNeeded (possibly a *NeedsUserError) when the user must act.
func (m *Manager) Token(ctx context.Context, c Caller, resource string) (string, error) {
	r, err := m.Resource(resource)
	if err != nil {
		return "", err
	}
	key := tokenstore.TokenKey{Connector: connectorPrefix + r.Name}
	if t, err := m.Store.GetToken(ctx, c.User, key); err == nil && t.Expiry.Sub(m.now()) > minValid {
		return t.AccessToken, nil
	} else if err != nil && !errors.Is(err, tokenstore.ErrNotFound) && !errors.Is(err, tokenstore.ErrSignInNeeded) {
		return "", fmt.Errorf("read %s token: %w", r.Name, err)
	}
	v, err, _ := m.flight.Do(c.User.Partition()+"|"+c.ChannelID+"|"+c.ChannelUserID+"|"+r.Name, func() (any, error) {
		// Shared by every caller waiting on it, so not bound to the first caller's request.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		assertion, err := m.Assertion(fctx, c, "")
		if err != nil {
			return "", err
		}
		return m.obtain(fctx, c, r, assertion)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Assertion fetches the caller's token for the bot's own API from the token service (code
// completes a magic-code sign-in) and checks that it is the caller's.
func (m *Manager) Assertion(ctx context.Context, c Caller, code string) (string, error) {
	ut, err := m.TokenService.GetToken(ctx, c.ChannelUserID, m.Connection, c.ChannelID, code)
	if errors.Is(err, botframework.ErrNoUserToken) {
		return "", ErrSignInNeeded
	}
	if err != nil {
		return "", fmt.Errorf("user assertion: %w", err)
	}
	if m.Assertions != nil {
		if err := m.Assertions.ValidateAssertion(ctx, ut.Token, c.User.TenantID, c.User.ObjectID); err != nil {
			return "", fmt.Errorf("token service answer refused: %w", err)
		}
	}
	return ut.Token, nil
}

// obtain runs OBO with assertion and stores the result sealed.
func (m *Manager) obtain(ctx context.Context, c Caller, r Resource, assertion string) (string, error) {
	var dt entra.DelegatedToken
	var err error
	if r.Exchange != nil {
		dt, err = r.Exchange(ctx, assertion)
	} else {
		dt, err = m.OBO.OnBehalfOf(ctx, assertion, r.Scopes)
	}
	if err != nil {
		return "", m.needsUser(r, err)
	}
	t := tokenstore.Token{AccessToken: dt.AccessToken, TokenType: "Bearer", Expiry: dt.ExpiresOn, Scopes: r.Scopes}
	if err := m.Store.PutToken(ctx, c.User, tokenstore.TokenKey{Connector: connectorPrefix + r.Name}, t); err != nil {
		// The token is still good for this turn; the next one obtains it again.
		m.Log.Warn("storing an on-behalf-of token failed", slog.String("resource", r.Name), slog.String("user", c.User.String()), slog.String("error", err.Error()))
	}
	return dt.AccessToken, nil
}

// needsUser turns OBO refusals that the user can resolve into a sentence.
func (m *Manager) needsUser(r Resource, err error) error {
	display := r.Display
	if display == "" {
		display = r.Name
	}
	switch {
	case errors.Is(err, entra.ErrConsentRequired):
		return &NeedsUserError{Resource: r.Name, Cause: err,
			Sentence: fmt.Sprintf("I need your permission to use %s for you. Select **Sign in** and accept the consent prompt (or ask your administrator to grant consent for the organisation).", display)}
	case errors.Is(err, entra.ErrInteractionRequired):
		return &NeedsUserError{Resource: r.Name, Cause: err,
			Sentence: fmt.Sprintf("Your organisation requires you to sign in again before I can use %s for you (for example for multi-factor authentication). Select **Sign in**.", display)}
	case errors.Is(err, entra.ErrAssertionRejected):
		return &NeedsUserError{Resource: r.Name, Cause: err, Sentence: "Your sign-in has expired. Select **Sign in** to continue."}
	default:
		return fmt.Errorf("on-behalf-of for %s: %w", r.Name, err)
	}
}

// Stored returns the user's stored token for a resource, without obtaining one
// (tokenstore.ErrNotFound when there is none).
func (m *Manager) Stored(ctx context.Context, u tokenstore.UserKey, name string) (tokenstore.Token, error) {
	r, err := m.Resource(name)
	if err != nil {
		return tokenstore.Token{}, err
	}
	return m.Store.GetToken(ctx, u, tokenstore.TokenKey{Connector: connectorPrefix + r.Name})
}

// Forget removes the caller's stored tokens for one resource, or for all with name "".
func (m *Manager) Forget(ctx context.Context, c Caller, name string) error {
	for n := range m.Resources {
		if name != "" && n != name {
			continue
		}
		if err := m.Store.DeleteToken(ctx, c.User, tokenstore.TokenKey{Connector: connectorPrefix + n}); err != nil {
			return fmt.Errorf("sign out of %s: %w", n, err)
		}
	}
	return nil
}
