package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/sync/singleflight"

	"github.com/onbehalf/onbehalf/internal/seal"
)

// DefaultSecretName is the Key Vault secret holding the key versions (TOKENSTORE_KEY_NAME).
const DefaultSecretName = "tokenstore-key"

// VaultOptions configures NewVault.
//
// Example (in Azure, with the Function App's user-assigned managed identity):
//
//	cred, _ := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
//		ID: azidentity.ClientID(os.Getenv("BOT_MANAGED_IDENTITY_CLIENT_ID")),
//	})
//	ring, err := keyring.NewVault(keyring.VaultOptions{
//		VaultURL:   "https://onbehalf-kv.vault.azure.net/", // TOKENSTORE_KEYVAULT_URL
//		SecretName: "tokenstore-key",                      // TOKENSTORE_KEY_NAME
//		Credential: cred,
//		Logger:     slog.Default(),
//	})
type VaultOptions struct {
	// VaultURL is the vault's data-plane URL, https://<name>.vault.azure.net/. Required.
	VaultURL string
	// SecretName is the secret whose versions are the key versions. Empty: DefaultSecretName.
	SecretName string
	// Credential authenticates to Key Vault (normally the managed identity). Required.
	Credential azcore.TokenCredential
	// HTTPClient sends the requests. Nil: the SDK's default transport.
	HTTPClient *http.Client
	// Retry tunes the SDK's retry policy. Zero value: the SDK defaults.
	Retry policy.RetryOptions
	// CacheTTL is how long a fetched key (and the choice of current version) is used before
	// Key Vault is asked again. Zero: 5 minutes. Disabling a version takes effect within it.
	CacheTTL time.Duration
	// LogInterval is the least time between two log lines about an unreachable vault. Zero: 1 minute.
	LogInterval time.Duration
	// Logger receives the outage warnings. Nil: nothing is logged.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Vault is a keyring backed by the versions of one Key Vault secret. Safe for concurrent use.
type Vault struct {
	client *azsecrets.Client
	name   string
	url    string
	ttl    time.Duration
	every  time.Duration
	log    *slog.Logger
	now    func() time.Time
	flight singleflight.Group

	mu        sync.Mutex
	keys      map[string]*cached
	current   string
	curCheck  time.Time // when the current version must be re-chosen
	lastWarn  time.Time
	warnCount int
	// coldUntil: the vault could not be reached for a key not cached; until then, keys not
	// cached fail at once instead of each waiting out the client's retries again.
	coldUntil time.Time
}

type cached struct {
	key       seal.Key
	nextCheck time.Time
}

// maxCached bounds the versions held in memory; a vault rarely has more than a few live ones.
const maxCached = 64

// NewVault builds a Key Vault keyring. It does not contact the vault; the first Current or
// Version call does.
func NewVault(opts VaultOptions) (*Vault, error) {
	if opts.VaultURL == "" {
		return nil, errors.New("keyring: vault URL is required (TOKENSTORE_KEYVAULT_URL)")
	}
	if opts.Credential == nil {
		return nil, errors.New("keyring: a credential is required")
	}
	co := &azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Retry: opts.Retry}}
	if opts.HTTPClient != nil {
		co.Transport = opts.HTTPClient
	}
	c, err := azsecrets.NewClient(opts.VaultURL, opts.Credential, co)
	if err != nil {
		return nil, fmt.Errorf("keyring: key vault client: %w", err)
	}
	v := &Vault{
		client: c, name: opts.SecretName, url: opts.VaultURL,
		ttl: opts.CacheTTL, every: opts.LogInterval, log: opts.Logger, now: opts.Now,
		keys: map[string]*cached{},
	}
	if v.name == "" {
		v.name = DefaultSecretName
	}
	if v.ttl <= 0 {
		v.ttl = 5 * time.Minute
	}
	if v.every <= 0 {
		v.every = time.Minute
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// retryAfterFailure is how long a cached key is used without asking the vault again after a
// failed check, so an outage does not turn every read into a vault request; and how long a key
// not cached fails at once after the vault could not be reached for one.
func (v *Vault) retryAfterFailure() time.Duration { return min(v.ttl, 10*time.Second) }

// Current returns the newest enabled key version, for sealing new writes.
func (v *Vault) Current(ctx context.Context) (seal.Key, error) {
	v.mu.Lock()
	if v.current != "" && v.now().Before(v.curCheck) {
		if c := v.keys[v.current]; c != nil {
			v.mu.Unlock()
			return c.key, nil
		}
	}
	v.mu.Unlock()
	res, err, _ := v.flight.Do("\x00current", func() (any, error) { return v.chooseCurrent(ctx) })
	if err != nil {
		return seal.Key{}, err
	}
	return res.(seal.Key), nil
}

func (v *Vault) chooseCurrent(ctx context.Context) (seal.Key, error) {
	if err := v.coldFailure(""); err != nil {
		return seal.Key{}, err
	}
	ver, err := v.newestEnabled(ctx)
	if err != nil {
		if errors.Is(err, ErrKeyUnavailable) {
			return seal.Key{}, err
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if c := v.keys[v.current]; v.current != "" && c != nil {
			v.warnLocked(err)
			v.curCheck = v.now().Add(v.retryAfterFailure())
			return c.key, nil
		}
		v.markColdLocked(ctx)
		return seal.Key{}, fmt.Errorf("%w: list versions of %q: %w", ErrVaultUnavailable, v.name, err)
	}
	k, err := v.fetch(ctx, ver, true)
	if err != nil {
		return seal.Key{}, err
	}
	v.mu.Lock()
	v.current, v.curCheck = ver, v.now().Add(v.ttl)
	v.coldUntil = time.Time{}
	v.mu.Unlock()
	return k, nil
}

// newestEnabled lists the secret's versions and picks the enabled, unexpired one created last.
// Key Vault's list order is not documented (and is not creation order), so the creation time
// decides. Creation times are whole seconds, so versions set within one second tie; the
// vault's own current version (Get Secret without a version) breaks the tie, and where that
// is not among them (it is disabled), the highest version id does, so every instance agrees.
func (v *Vault) newestEnabled(ctx context.Context) (string, error) {
	now := v.now()
	var tied []string
	var bestCreated time.Time
	pager := v.client.NewListSecretPropertiesVersionsPager(v.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if isGone(err) {
				return "", fmt.Errorf("%w: secret %q not found", ErrKeyUnavailable, v.name)
			}
			return "", err
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil || p.Attributes == nil || p.Attributes.Enabled == nil || !*p.Attributes.Enabled {
				continue
			}
			a := p.Attributes
			if (a.Expires != nil && !now.Before(*a.Expires)) || (a.NotBefore != nil && now.Before(*a.NotBefore)) {
				continue
			}
			var created time.Time
			if a.Created != nil {
				created = *a.Created
			}
			switch {
			case len(tied) == 0 || created.After(bestCreated):
				tied, bestCreated = []string{p.ID.Version()}, created
			case created.Equal(bestCreated):
				tied = append(tied, p.ID.Version())
			}
		}
	}
	switch len(tied) {
	case 0:
		return "", fmt.Errorf("%w: secret %q has no enabled version", ErrKeyUnavailable, v.name)
	case 1:
		return tied[0], nil
	}
	if resp, err := v.client.GetSecret(ctx, v.name, "", nil); err == nil && resp.ID != nil {
		if cur := resp.ID.Version(); slices.Contains(tied, cur) {
			return cur, nil
		}
	}
	return slices.Max(tied), nil
}

// Version returns the key version ver, for opening values sealed under it.
func (v *Vault) Version(ctx context.Context, ver string) (seal.Key, error) {
	if ver == "" {
		return seal.Key{}, fmt.Errorf("%w: empty version", ErrKeyUnavailable)
	}
	v.mu.Lock()
	if c := v.keys[ver]; c != nil && v.now().Before(c.nextCheck) {
		v.mu.Unlock()
		return c.key, nil
	}
	v.mu.Unlock()
	return v.fetch(ctx, ver, false)
}

// fetch reads one version from the vault (collapsing concurrent reads of the same version).
// justListed skips the read when the value is cached: values of a version never change and the
// listing has just shown it enabled.
func (v *Vault) fetch(ctx context.Context, ver string, justListed bool) (seal.Key, error) {
	if justListed {
		v.mu.Lock()
		if c := v.keys[ver]; c != nil {
			c.nextCheck = v.now().Add(v.ttl)
			v.mu.Unlock()
			return c.key, nil
		}
		v.mu.Unlock()
	}
	res, err, _ := v.flight.Do(ver, func() (any, error) {
		if err := v.coldFailure(ver); err != nil {
			return seal.Key{}, err
		}
		resp, err := v.client.GetSecret(ctx, v.name, ver, nil)
		if err != nil {
			v.mu.Lock()
			defer v.mu.Unlock()
			if isGone(err) {
				delete(v.keys, ver)
				return seal.Key{}, fmt.Errorf("%w: %q version %s: %w", ErrKeyUnavailable, v.name, ver, err)
			}
			if c := v.keys[ver]; c != nil {
				v.warnLocked(err)
				c.nextCheck = v.now().Add(v.retryAfterFailure())
				return c.key, nil
			}
			v.markColdLocked(ctx)
			return seal.Key{}, fmt.Errorf("%w: get %q version %s: %w", ErrVaultUnavailable, v.name, ver, err)
		}
		if resp.Value == nil {
			return seal.Key{}, fmt.Errorf("%w: %q version %s has no value", ErrKeyUnavailable, v.name, ver)
		}
		secret, err := DecodeKey(*resp.Value)
		if err != nil {
			return seal.Key{}, fmt.Errorf("%w: %q version %s: %v", ErrKeyUnavailable, v.name, ver, err)
		}
		k, err := seal.NewKey(ver, secret)
		clear(secret)
		if err != nil {
			return seal.Key{}, fmt.Errorf("%w: %q version %s: %v", ErrKeyUnavailable, v.name, ver, err)
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		v.coldUntil = time.Time{}
		if len(v.keys) >= maxCached {
			v.evictOldestLocked()
		}
		v.keys[ver] = &cached{key: k, nextCheck: v.now().Add(v.ttl)}
		return k, nil
	})
	if err != nil {
		return seal.Key{}, err
	}
	return res.(seal.Key), nil
}

// coldFailure returns ErrVaultUnavailable, without asking the vault, when ver is not cached
// and the vault was found unreachable for an uncached key less than retryAfterFailure ago: a
// process that starts during an outage then fails its requests at once (the channel sends
// them again, perhaps to an instance that holds the key) instead of each one waiting out the
// client's retries. It asks again after that interval.
// An empty ver means the current version.
func (v *Vault) coldFailure(ver string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ver == "" {
		ver = v.current
	}
	if ver != "" && v.keys[ver] != nil {
		return nil
	}
	if now := v.now(); now.Before(v.coldUntil) {
		return fmt.Errorf("%w: unreachable moments ago; asking again in %s", ErrVaultUnavailable, v.coldUntil.Sub(now).Round(time.Second))
	}
	return nil
}

// markColdLocked records that the vault could not be reached for an uncached key; a request
// that was cancelled proves nothing about the vault.
func (v *Vault) markColdLocked(ctx context.Context) {
	if ctx.Err() == nil {
		v.coldUntil = v.now().Add(v.retryAfterFailure())
	}
}

func (v *Vault) evictOldestLocked() {
	var oldest string
	var at time.Time
	for ver, c := range v.keys {
		if ver == v.current {
			continue
		}
		if oldest == "" || c.nextCheck.Before(at) {
			oldest, at = ver, c.nextCheck
		}
	}
	delete(v.keys, oldest)
}

// warnLocked logs an outage at most once per LogInterval, counting what it did not log.
func (v *Vault) warnLocked(err error) {
	now := v.now()
	if v.log == nil {
		return
	}
	if !v.lastWarn.IsZero() && now.Sub(v.lastWarn) < v.every {
		v.warnCount++
		return
	}
	v.log.Warn("key vault unreachable; using cached token-store keys",
		"vault", v.url, "secret", v.name, "suppressed", v.warnCount, "error", err.Error())
	v.lastWarn, v.warnCount = now, 0
}

// isGone reports whether Key Vault answered that the version cannot be read: not found, or
// forbidden because it is disabled (inner error code SecretDisabled). Other 403s (missing RBAC
// role) are access problems of the whole vault and are treated as an outage.
func isGone(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.StatusCode {
	case http.StatusNotFound:
		return true
	case http.StatusForbidden:
		if re.RawResponse == nil {
			return false
		}
		body, _ := runtime.Payload(re.RawResponse)
		return bytes.Contains(bytes.ToLower(body), []byte("secretdisabled"))
	}
	return false
}
