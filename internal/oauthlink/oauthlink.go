// Package oauthlink links a chat user to their own account at an OAuth 2.0 service (Atlassian,
// or any generic connector) and then hands out an *http.Client that calls the service as that
// user.
//
// Linking (README.md, "What a user sees", has the user's view):
//
//  1. "connect jira" (or a question that needs the service) from authenticated user U in
//     conversation C: a sign-in state is stored sealed, single-use, for 10 minutes, bound to
//     U and C, holding a fresh PKCE verifier; the sign-in card opens
//     {BOT_PUBLIC_URL}/api/oauth/start?state=….
//  2. /api/oauth/start consumes that state, stores a second one for the provider's round trip
//     (same user, conversation and deadline) and redirects to the authorization URL.
//  3. /api/oauth/callback consumes the second state, exchanges the code with the verifier and
//     parks the tokens, sealed, under U with a one-time code; nothing is linked yet. The page
//     hands the code to Teams (notifySuccess → signin/verifyState from U's own client) or
//     shows it for U to type ("link 12345678").
//  4. Only a confirmation from U's own authenticated session, in C, with the right code,
//     moves the tokens to U's connection; then "Connected to Jira as …" is sent to C and the
//     question that needed the link is answered. A forwarded link links nothing: whoever
//     follows it cannot confirm as U.
//
// Tokens are refreshed through the token store's FreshToken, which spends a rotating refresh
// token at most once across every instance.
package oauthlink

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/background"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// ErrPrompted means the user was asked to connect (or told why not) and the request was parked
// where that makes sense; the command has nothing more to do.
var ErrPrompted = errors.New("oauthlink: user prompted to connect")

// ErrUnknownConnector names a connector that is not configured.
var ErrUnknownConnector = errors.New("oauthlink: unknown connector")

// DevTenantID is the tenant of every user in local anonymous mode, where activities carry no
// verified Entra identity. It is a fixed, obviously fake GUID so such rows never mix with
// real tenants' rows.
const DevTenantID = "0de70000-0000-4000-8000-000000000000"

// Row names in the token store.
const (
	prefsResource = "prefs"         // TokenKey.Resource of a connection's small per-user facts
	linkPrefix    = "oauth2link/"   // parked pending links (tokens awaiting confirmation)
	askPrefix     = "oauth2ask/"    // parked questions awaiting a link
	minValid      = 2 * time.Minute // an access token must last this long to be used
	forceValid    = 100 * 365 * 24 * time.Hour
	parkTTL       = 15 * time.Minute
)

// Provider is one OAuth service users can connect.
type Provider struct {
	// Conn is the opened generic connector (the Atlassian one is atlassian.Connector.OAuth).
	Conn *oauth2.Connector
	// Words are further names users may type for it ("jira", "confluence").
	Words []string
	// Account returns the display name of the account the user linked, using the user's
	// authorized client; nil: the bot does not know it.
	Account func(ctx context.Context, hc *http.Client) (string, error)
	// Connected is the proactive sentence after linking; nil: "Connected to <DisplayName> as <account>."
	Connected func(account string) mdtext.Markdown
	// Message turns a failed call into a sentence for the user; nil: a generic sentence.
	Message func(err error) string
	// DisconnectNote is added to the "disconnected" reply (for example where to revoke the
	// app's access when the provider has no revocation endpoint).
	DisconnectNote string
	// RefreshIdle and RefreshAbsolute are how long the provider's refresh tokens last unused
	// and at most since the user connected (Atlassian Cloud: 90 and 365 days); zero: unknown,
	// and the connection is not shown as lapsing.
	RefreshIdle, RefreshAbsolute time.Duration
}

func (p *Provider) name() string    { return p.Conn.Name() }
func (p *Provider) display() string { return p.Conn.DisplayName() }

// Service links users and authorizes their calls. Set the exported fields, Add providers,
// then Register on the bot and serve ServeHTTP at /api/oauth/; it is then safe for concurrent
// use.
type Service struct {
	// Store keeps sign-in states, pending links, tokens and parked questions, sealed.
	Store *tokenstore.Store
	// PublicURL is BOT_PUBLIC_URL: the card's button opens {PublicURL}/api/oauth/start.
	PublicURL string
	// TenantID is the bot's tenant, used when an activity names none.
	TenantID string
	// Anonymous is local development without channel authentication: users are keyed by
	// DevTenantID and a GUID derived from the channel's user id (see UserOf).
	Anonymous bool
	// Resume re-runs a parked activity once its user is linked; nil: questions are not resumed
	// and the user is told to ask again.
	Resume func(ctx context.Context, act *botframework.Activity) error
	// Background tracks the announcement and the resumed questions after a link is confirmed
	// (when Later is nil or refuses).
	Background *background.Group
	// Later, when set, hands the announcement to the work queue (the worker calls Announce), so
	// it survives the instance stopping; an error runs it in Background instead.
	Later func(ctx context.Context, t *bot.Turn, u tokenstore.UserKey, connector string, ref json.RawMessage) error
	// More lists connections the service does not manage (SAML applications, signed in through
	// Microsoft Entra ID), shown by the connections command after its own; nil: none.
	More func(ctx context.Context, u tokenstore.UserKey) ([]Status, error)
	// LastUsed returns when each connector last called a back end for u (from the audit
	// records), by connector name; nil: not shown.
	LastUsed func(ctx context.Context, u tokenstore.UserKey) map[string]time.Time
	// Sender delivers the warnings of WarnLapsing; nil: WarnLapsing sends nothing.
	Sender bot.Sender
	// KeepAliveAfter is how long a refresh token of a provider with an idle lifetime may go
	// unused before Active refreshes it for an active user; zero: DefaultKeepAliveAfter,
	// negative: never.
	KeepAliveAfter time.Duration
	Log            *slog.Logger
	Now            func() time.Time

	alive keepAlive

	providers map[string]*Provider
	words     map[string]string
	order     []string
}

// Add configures a provider. Names and words must be unique.
func (s *Service) Add(p Provider) error {
	if p.Conn == nil {
		return errors.New("oauthlink: provider without a connector")
	}
	if s.providers == nil {
		s.providers, s.words = map[string]*Provider{}, map[string]string{}
	}
	name := p.name()
	for _, w := range append([]string{name}, p.Words...) {
		w = strings.ToLower(w)
		if _, dup := s.words[w]; dup {
			return fmt.Errorf("oauthlink: the name %q is used twice", w)
		}
		s.words[w] = name
	}
	s.providers[name] = &p
	s.order = append(s.order, name)
	return nil
}

// Names returns the configured connectors' names, in the order they were added.
func (s *Service) Names() []string { return append([]string(nil), s.order...) }

// provider finds a provider by name or word.
func (s *Service) provider(word string) (*Provider, error) {
	name, ok := s.words[strings.ToLower(strings.TrimSpace(word))]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownConnector, word)
	}
	return s.providers[name], nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// UserOf is the store key of an activity's sender. With channel authentication it is the
// Entra tenant and object id the activity carries (sso.CallerOf). In anonymous mode — local
// development only, where nothing about the sender is verified — it is DevTenantID and a GUID
// derived from the channel id and the channel's user id (from.id), so each Playground user
// still gets rows of their own.
func (s *Service) UserOf(act *botframework.Activity) (tokenstore.UserKey, error) {
	if !s.Anonymous {
		c, err := sso.CallerOf(act, s.TenantID)
		if err != nil {
			return tokenstore.UserKey{}, err
		}
		return c.User, nil
	}
	if act.From.ID == "" {
		return tokenstore.UserKey{}, errors.New("oauthlink: the activity names no sender")
	}
	return tokenstore.UserKey{TenantID: DevTenantID, ObjectID: devObjectID(act.ChannelID, act.From.ID)}, nil
}

// devObjectID formats SHA-256("onbehalf-dev-user", channel, id) as a version-8 GUID.
func devObjectID(channel, id string) string {
	sum := sha256.Sum256([]byte("onbehalf-dev-user\x00" + channel + "\x00" + id))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	g := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if !config.IsGUID(g) {
		panic("oauthlink: derived id is not a GUID")
	}
	return g
}

func tokenKey(name string) tokenstore.TokenKey { return tokenstore.TokenKey{Connector: name} }
func prefsKey(name string) tokenstore.TokenKey {
	return tokenstore.TokenKey{Connector: name, Resource: prefsResource}
}

// toStore and fromStore convert between the connector's and the store's token shapes.
func toStore(t *oauth2.Token) tokenstore.Token {
	return tokenstore.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry, Scopes: strings.Fields(t.Scope)}
}

func fromStore(t tokenstore.Token) *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry, Scope: strings.Join(t.Scopes, " ")}
}
