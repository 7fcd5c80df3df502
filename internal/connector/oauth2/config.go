// Package oauth2 is the generic OAuth 2.0 authorization-code + PKCE connector: it builds the
// authorization URL, exchanges and refreshes codes and tokens (keeping rotated refresh tokens),
// classifies the token endpoint's failures into errors callers act on, and hands out an
// authorized *http.Client per (user, connector) that refreshes once on 401 and retries 429/5xx
// within bounds.
//
// The protocol work is done by golang.org/x/oauth2; what it does not do is written here:
// it never reports a rotated refresh token to its caller, computes expiry from the wall clock,
// and has no retry or error classification.
package oauth2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	xoauth2 "golang.org/x/oauth2"
)

// Config describes one OAuth 2.0 SaaS back end. It is decoded from the OAUTH2_CONNECTORS
// setting (a JSON array of these objects); the client secret is not part of it: it lives in
// Key Vault under ClientSecretName and is fetched at runtime through Runtime.Secret.
//
// Example (GitHub OAuth app; the callback URL registered at GitHub is
// {BOT_PUBLIC_URL}/api/oauth/callback):
//
//	{
//	  "name": "github",
//	  "displayName": "GitHub",
//	  "authURL": "https://github.com/login/oauth/authorize",
//	  "tokenURL": "https://github.com/login/oauth/access_token",
//	  "apiBaseURL": "https://api.github.com",
//	  "scopes": ["read:user", "repo"],
//	  "clientID": "Iv1.0123456789abcdef",
//	  "clientSecretName": "github-client-secret",
//	  "authStyle": "params",
//	  "authParams": {"allow_signup": "false"}
//	}
type Config struct {
	// Name is the connector's stable identifier (lower case letters, digits, '-'); it keys
	// the user's stored tokens and appears in commands ("connect github").
	Name string `json:"name"`
	// DisplayName is what users read ("GitHub"). Defaults to Name.
	DisplayName string `json:"displayName,omitempty"`
	// AuthURL is the authorization endpoint (https).
	AuthURL string `json:"authURL"`
	// TokenURL is the token endpoint (https).
	TokenURL string `json:"tokenURL"`
	// APIBaseURL is the API root the authorized client is meant for (https). The authorized
	// client refuses to send the user's token to any other origin.
	APIBaseURL string `json:"apiBaseURL"`
	// Scopes are requested in the authorization URL, space separated on the wire.
	Scopes []string `json:"scopes,omitempty"`
	// ClientID is the OAuth client id registered at the provider.
	ClientID string `json:"clientID"`
	// ClientSecretName is the Key Vault secret that holds the client secret.
	ClientSecretName string `json:"clientSecretName"`
	// AuthStyle is how the client authenticates at the token endpoint: "params" (client_id
	// and client_secret in the form body) or "header" (HTTP Basic). Empty means "params",
	// which every provider we know accepts; auto-detection is avoided because its failed first
	// attempt would spend a single-use code or a rotating refresh token.
	AuthStyle string `json:"authStyle,omitempty"`
	// AuthParams are extra query parameters for the authorization URL (for example
	// Atlassian's audience and prompt).
	AuthParams map[string]string `json:"authParams,omitempty"`
	// RevokeURL is the provider's RFC 7009 token revocation endpoint (https), if it has one;
	// "disconnect" then revokes the refresh token before deleting it.
	RevokeURL string `json:"revokeURL,omitempty"`
}

// SecretFunc returns the current value of a named secret (a Key Vault secret in Azure).
type SecretFunc func(ctx context.Context, name string) (string, error)

// Runtime carries what a Config needs at run time and is the same for every connector.
type Runtime struct {
	// RedirectURL is {BOT_PUBLIC_URL}/api/oauth/callback.
	RedirectURL string
	// Secret fetches the client secret named by Config.ClientSecretName.
	Secret SecretFunc
	// HTTPClient is used for the token endpoint and as the base of authorized clients.
	// Defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock for token expiry. Defaults to time.Now.
	Now func() time.Time
	// Retry bounds the authorized client's retries; zero values take defaults.
	Retry RetryPolicy
}

// RetryPolicy bounds how the authorized client retries throttled and failing calls.
type RetryPolicy struct {
	// MaxRetryAfter is the longest Retry-After the client waits for; a longer one is returned
	// as *ThrottledError at once. Default 10 s.
	MaxRetryAfter time.Duration
	// MaxAttempts is the total number of attempts for 429 and 5xx answers. Default 3.
	MaxAttempts int
	// Backoff is the first wait after a 5xx; it doubles for each further attempt. Default 200 ms.
	Backoff time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 10 * time.Second
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.Backoff <= 0 {
		p.Backoff = 200 * time.Millisecond
	}
	return p
}

// Connector is an opened Config: safe for concurrent use.
type Connector struct {
	cfg    Config
	rt     Runtime
	apiURL *url.URL
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Validate reports every problem with the configuration in one error.
func (c Config) Validate() error {
	var errs []error
	if !nameRE.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits and '-', starting with a letter", c.Name))
	}
	for _, f := range []struct{ field, v string }{{"authURL", c.AuthURL}, {"tokenURL", c.TokenURL}, {"apiBaseURL", c.APIBaseURL}} {
		if err := checkHTTPS(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
	}
	if c.RevokeURL != "" {
		if err := checkHTTPS(c.RevokeURL); err != nil {
			errs = append(errs, fmt.Errorf("revokeURL: %w", err))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("clientID is empty"))
	}
	if c.ClientSecretName == "" {
		errs = append(errs, errors.New("clientSecretName is empty"))
	}
	switch c.AuthStyle {
	case "", "params", "header":
	default:
		errs = append(errs, fmt.Errorf("authStyle %q: want \"params\" or \"header\"", c.AuthStyle))
	}
	for k := range c.AuthParams {
		switch k {
		case "client_id", "redirect_uri", "state", "scope", "response_type", "code_challenge", "code_challenge_method":
			errs = append(errs, fmt.Errorf("authParams: %q is set by the connector", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("oauth2 connector %q: %w", c.Name, err)
	}
	return nil
}

func checkHTTPS(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute https URL", raw)
	}
	return nil
}

// Open validates the configuration and returns a usable Connector.
func (c Config) Open(rt Runtime) (*Connector, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkHTTPS(rt.RedirectURL); err != nil && !isLoopbackHTTP(rt.RedirectURL) {
		return nil, fmt.Errorf("oauth2 connector %q: redirect URL: %w", c.Name, err)
	}
	if rt.Secret == nil {
		return nil, fmt.Errorf("oauth2 connector %q: no secret source", c.Name)
	}
	if rt.HTTPClient == nil {
		rt.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if rt.Now == nil {
		rt.Now = time.Now
	}
	rt.Retry = rt.Retry.withDefaults()
	if c.DisplayName == "" {
		c.DisplayName = c.Name
	}
	api, _ := url.Parse(c.APIBaseURL) // validated above
	return &Connector{cfg: c, rt: rt, apiURL: api}, nil
}

// isLoopbackHTTP allows http://127.0.0.1 and http://localhost callbacks for local development,
// as OAuth providers do (RFC 8252 §7.3).
func isLoopbackHTTP(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return false
	}
	h := u.Hostname()
	return h == "127.0.0.1" || h == "localhost" || h == "::1"
}

// Name returns the connector's identifier.
func (c *Connector) Name() string { return c.cfg.Name }

// DisplayName returns the name users read.
func (c *Connector) DisplayName() string { return c.cfg.DisplayName }

// APIBaseURL returns the API root the authorized client may call.
func (c *Connector) APIBaseURL() string { return c.cfg.APIBaseURL }

// oauthConfig builds the x/oauth2 configuration, fetching the client secret when withSecret.
func (c *Connector) oauthConfig(ctx context.Context, withSecret bool) (*xoauth2.Config, error) {
	oc := &xoauth2.Config{
		ClientID:    c.cfg.ClientID,
		RedirectURL: c.rt.RedirectURL,
		Scopes:      c.cfg.Scopes,
		Endpoint: xoauth2.Endpoint{
			AuthURL:   c.cfg.AuthURL,
			TokenURL:  c.cfg.TokenURL,
			AuthStyle: xoauth2.AuthStyleInParams,
		},
	}
	if c.cfg.AuthStyle == "header" {
		oc.Endpoint.AuthStyle = xoauth2.AuthStyleInHeader
	}
	if withSecret {
		s, err := c.rt.Secret(ctx, c.cfg.ClientSecretName)
		if err != nil {
			return nil, fmt.Errorf("%w: client secret %q: %w", ErrMisconfigured, c.cfg.ClientSecretName, err)
		}
		oc.ClientSecret = strings.TrimSpace(s)
	}
	return oc, nil
}

// NewVerifier returns a fresh PKCE code verifier (RFC 7636 §4.1: 32 random bytes,
// base64url) to keep with the pending link.
func NewVerifier() string { return xoauth2.GenerateVerifier() }

// AuthCodeURL returns the URL that starts the user's consent, carrying state and the S256
// challenge of verifier (RFC 7636 §4.2) plus the configured extra parameters.
func (c *Connector) AuthCodeURL(state, verifier string) string {
	oc, _ := c.oauthConfig(context.Background(), false)
	opts := []xoauth2.AuthCodeOption{xoauth2.S256ChallengeOption(verifier)}
	for k, v := range c.cfg.AuthParams {
		opts = append(opts, xoauth2.SetAuthURLParam(k, v))
	}
	return oc.AuthCodeURL(state, opts...)
}
