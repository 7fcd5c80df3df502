// Package entra obtains the bot's own tokens from Microsoft Entra ID without a client secret:
// the bot's app registration trusts a user-assigned managed identity through a federated
// identity credential, and the managed identity's token for api://AzureADTokenExchange is the
// client assertion MSAL presents (confidential.NewCredFromAssertionCallback).
//
// Sources: entra-docs workload-identity-federation-config-app-trust-managed-identity.md;
// MSAL Go apps/confidential/confidential.go.
package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// TokenExchangeAudience is the audience of a managed-identity token used as a federated
// credential assertion (public cloud; sovereign clouds use their own, see FederatedAudience).
const TokenExchangeAudience = "api://AzureADTokenExchange"

// refreshMargin is how long before expiry a cached token is replaced.
const refreshMargin = 5 * time.Minute

// ErrDevSecretInAzure refuses a client secret when running in Azure.
var ErrDevSecretInAzure = errors.New("a client secret is accepted only for local development; in Azure the bot uses its managed identity's federated credential")

// ClientConfig configures the bot's confidential client.
//
// In Azure:
//
//	ClientConfig{AuthorityHost: "https://login.microsoftonline.com", TenantID: tid, ClientID: appID,
//	    ManagedIdentityClientID: uamiClientID}
//
// Locally, ClientSecret may replace ManagedIdentityClientID (InAzure must be false).
type ClientConfig struct {
	AuthorityHost string
	TenantID      string
	ClientID      string
	// ManagedIdentityClientID selects the user-assigned managed identity whose token is the
	// client assertion (App Service managed-identity protocol: IDENTITY_ENDPOINT/IDENTITY_HEADER).
	ManagedIdentityClientID string
	// FederatedAudience overrides TokenExchangeAudience (sovereign clouds).
	FederatedAudience string
	// ClientSecret is for local development only.
	ClientSecret string
	// InAzure refuses ClientSecret.
	InAzure bool
	// Assertion, when set, supplies the client assertion instead of the managed identity
	// (another federated source such as a workload-identity token file).
	Assertion func(ctx context.Context) (string, error)
	// HTTPClient is used for every request to Entra and the managed-identity endpoint.
	HTTPClient *http.Client
	// Now is the clock.
	Now func() time.Time
}

// Client acquires app-only tokens (client credentials) for the bot and, in later turns,
// tokens on behalf of users. It is safe for concurrent use.
type Client struct {
	cca confidential.Client
	now func() time.Time
	// newCCA builds another MSAL client with the same credential (see oboClient).
	newCCA func() (confidential.Client, error)

	oboMu    sync.Mutex
	obo      confidential.Client
	oboCalls int

	// direct is how requests MSAL cannot make authenticate (saml.go).
	direct directClient

	mu    sync.Mutex
	cache map[string]cachedToken // scope → token
	calls map[string]*inflight
}

type cachedToken struct {
	value   string
	expires time.Time
}

type inflight struct {
	done chan struct{}
	tok  cachedToken
	err  error
}

// NewClient builds the confidential client. It makes no network call.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ClientID == "" || cfg.TenantID == "" || cfg.AuthorityHost == "" {
		return nil, errors.New("entra: client id, tenant id and authority host are required")
	}
	var cred confidential.Credential
	direct := directClient{
		tokenURL: strings.TrimRight(cfg.AuthorityHost, "/") + "/" + cfg.TenantID + "/oauth2/v2.0/token",
		clientID: cfg.ClientID, http: cfg.HTTPClient,
	}
	switch {
	case cfg.Assertion != nil:
		assert := cfg.Assertion
		direct.assertion = assert
		cred = confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
			return assert(ctx)
		})
	case cfg.ManagedIdentityClientID != "":
		assert, err := ManagedIdentityAssertion(cfg.ManagedIdentityClientID, cfg.FederatedAudience, cfg.HTTPClient)
		if err != nil {
			return nil, err
		}
		direct.assertion = assert
		cred = confidential.NewCredFromAssertionCallback(func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) {
			return assert(ctx)
		})
	case cfg.ClientSecret != "":
		if cfg.InAzure {
			return nil, ErrDevSecretInAzure
		}
		var err error
		if cred, err = confidential.NewCredFromSecret(cfg.ClientSecret); err != nil {
			return nil, fmt.Errorf("entra: client secret: %w", err)
		}
		direct.secret = cfg.ClientSecret
	default:
		return nil, errors.New("entra: no credential: set a managed identity client id for the federated credential")
	}
	opts := []confidential.Option{confidential.WithInstanceDiscovery(false)}
	if cfg.HTTPClient != nil {
		opts = append(opts, confidential.WithHTTPClient(cfg.HTTPClient))
	}
	authority := strings.TrimRight(cfg.AuthorityHost, "/") + "/" + cfg.TenantID
	newCCA := func() (confidential.Client, error) { return confidential.New(authority, cfg.ClientID, cred, opts...) }
	cca, err := newCCA()
	if err != nil {
		return nil, fmt.Errorf("entra: confidential client: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if direct.http == nil {
		direct.http = http.DefaultClient
	}
	return &Client{cca: cca, obo: cca, newCCA: newCCA, now: now, direct: direct, cache: map[string]cachedToken{}, calls: map[string]*inflight{}}, nil
}

// ManagedIdentityAssertion returns a function that fetches the user-assigned managed
// identity's token for the token-exchange audience: the federated client assertion.
func ManagedIdentityAssertion(clientID, audience string, httpClient *http.Client) (func(context.Context) (string, error), error) {
	if audience == "" {
		audience = TokenExchangeAudience
	}
	opts := &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)}
	if httpClient != nil {
		opts.ClientOptions = azcore.ClientOptions{Transport: httpClient}
	}
	mi, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("entra: managed identity: %w", err)
	}
	scope := audience + "/.default"
	return func(ctx context.Context) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil {
			return "", fmt.Errorf("managed identity assertion: %w", err)
		}
		return tok.Token, nil
	}, nil
}

// AppToken returns an app-only token for scope (client credentials), reused until shortly
// before it expires. Concurrent callers share one request.
func (c *Client) AppToken(ctx context.Context, scope string) (string, error) {
	c.mu.Lock()
	if t, ok := c.cache[scope]; ok && c.now().Add(refreshMargin).Before(t.expires) {
		c.mu.Unlock()
		return t.value, nil
	}
	if f, ok := c.calls[scope]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.tok.value, f.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f := &inflight{done: make(chan struct{})}
	c.calls[scope] = f
	c.mu.Unlock()

	res, err := c.cca.AcquireTokenByCredential(ctx, []string{scope})
	c.mu.Lock()
	delete(c.calls, scope)
	if err == nil {
		f.tok = cachedToken{value: res.AccessToken, expires: res.ExpiresOn}
		c.cache[scope] = f.tok
	} else {
		f.err = fmt.Errorf("entra: client credentials for %s: %w", scope, err)
	}
	c.mu.Unlock()
	close(f.done)
	return f.tok.value, f.err
}

// TokenSource returns a source of app-only tokens for one scope.
func (c *Client) TokenSource(scope string) *ScopedTokenSource {
	return &ScopedTokenSource{client: c, scope: scope}
}

// ScopedTokenSource yields the bot's token for a fixed scope (the connector's).
type ScopedTokenSource struct {
	client *Client
	scope  string
}

// Token returns the bot's current token for the scope.
func (s *ScopedTokenSource) Token(ctx context.Context) (string, error) {
	return s.client.AppToken(ctx, s.scope)
}

// Confidential exposes the MSAL client for flows built on it (on-behalf-of).
func (c *Client) Confidential() confidential.Client { return c.cca }
