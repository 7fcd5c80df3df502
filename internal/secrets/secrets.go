// Package secrets reads named secrets — third-party OAuth client secrets — from Key Vault
// through the managed identity. Each value is cached briefly, so a burst of sign-ins and
// refreshes costs one vault call, while a rotated secret (a new version) is picked up within
// the cache time. During a vault outage the last value read is used a while longer.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/sync/singleflight"
)

// ErrNotFound means the vault has no enabled current version of the secret.
var ErrNotFound = errors.New("secrets: secret not found")

// Func returns the current value of a named secret. It is the shape connectors consume
// (oauth2.Runtime.Secret).
type Func func(ctx context.Context, name string) (string, error)

// VaultOptions configures NewVault.
//
// Example (in Azure, with the Function App's user-assigned managed identity):
//
//	v, err := secrets.NewVault(secrets.VaultOptions{
//		VaultURL:   "https://onbehalf-kv.vault.azure.net/", // TOKENSTORE_KEYVAULT_URL
//		Credential: managedIdentityCredential,
//	})
//	secret, err := v.Secret(ctx, "atlassian-client-secret") // ATLASSIAN_CLIENT_SECRET_NAME
type VaultOptions struct {
	// VaultURL is the vault's data-plane URL, https://<name>.vault.azure.net/. Required.
	VaultURL string
	// Credential authenticates to Key Vault (normally the managed identity). Required.
	Credential azcore.TokenCredential
	// HTTPClient sends the requests. Nil: the SDK's default transport.
	HTTPClient *http.Client
	// TTL is how long a value is used before the vault is asked again. Zero: 5 minutes.
	TTL time.Duration
	// StaleFor is how long past TTL a value is still used while the vault cannot be reached.
	// Zero: 1 hour.
	StaleFor time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Vault reads secrets from one Key Vault. Safe for concurrent use.
type Vault struct {
	client *azsecrets.Client
	ttl    time.Duration
	stale  time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	value   string
	fetched time.Time
}

// NewVault builds a Key Vault secret reader. It does not contact the vault.
func NewVault(o VaultOptions) (*Vault, error) {
	if o.VaultURL == "" {
		return nil, errors.New("secrets: vault URL is required (TOKENSTORE_KEYVAULT_URL)")
	}
	if o.Credential == nil {
		return nil, errors.New("secrets: a credential is required")
	}
	// Few, short retries: a sign-in waits on this call, and a stale value covers an outage.
	co := &azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{
		MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second, TryTimeout: 10 * time.Second,
	}}}
	if o.HTTPClient != nil {
		co.Transport = o.HTTPClient
	}
	c, err := azsecrets.NewClient(o.VaultURL, o.Credential, co)
	if err != nil {
		return nil, fmt.Errorf("secrets: key vault client: %w", err)
	}
	v := &Vault{client: c, ttl: o.TTL, stale: o.StaleFor, now: o.Now, cache: map[string]entry{}}
	if v.ttl <= 0 {
		v.ttl = 5 * time.Minute
	}
	if v.stale <= 0 {
		v.stale = time.Hour
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Secret returns the current value of name: from the cache while it is younger than TTL,
// else from the vault (concurrent callers share one request). If the vault cannot be reached
// a value younger than TTL+StaleFor is returned instead of the error; a secret that no
// longer exists is never served from the cache.
func (v *Vault) Secret(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("secrets: secret name is empty")
	}
	now := v.now()
	v.mu.Lock()
	e, ok := v.cache[name]
	v.mu.Unlock()
	if ok && now.Sub(e.fetched) < v.ttl {
		return e.value, nil
	}
	ch := v.flight.DoChan(name, func() (any, error) {
		// Shared by every waiter: it must not end with the first caller's context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		resp, err := v.client.GetSecret(fctx, name, "", nil)
		if err != nil {
			var re *azcore.ResponseError
			if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusForbidden && re.ErrorCode == "SecretDisabled") {
				v.mu.Lock()
				delete(v.cache, name)
				v.mu.Unlock()
				return "", fmt.Errorf("secrets: %q: %w", name, ErrNotFound)
			}
			return "", fmt.Errorf("secrets: get %q: %w", name, err)
		}
		if resp.Value == nil {
			return "", fmt.Errorf("secrets: %q: %w", name, ErrNotFound)
		}
		v.mu.Lock()
		v.cache[name] = entry{value: *resp.Value, fetched: v.now()}
		v.mu.Unlock()
		return *resp.Value, nil
	})
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("secrets: get %q: %w", name, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			if ok && !errors.Is(r.Err, ErrNotFound) && now.Sub(e.fetched) < v.ttl+v.stale {
				return e.value, nil
			}
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

// WithOverrides returns a Func that answers names in local from that map (local development:
// ATLASSIAN_CLIENT_SECRET, OAUTH2_DEV_SECRETS) and every other name from next. A nil next
// makes other names an ErrNotFound.
func WithOverrides(local map[string]string, next Func) Func {
	return func(ctx context.Context, name string) (string, error) {
		if v, ok := local[name]; ok {
			return v, nil
		}
		if next == nil {
			return "", fmt.Errorf("secrets: %q (no Key Vault configured): %w", name, ErrNotFound)
		}
		return next(ctx, name)
	}
}
