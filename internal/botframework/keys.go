package botframework

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownKey reports a token signed with a key the issuer does not publish.
var ErrUnknownKey = errors.New("signing key not published by the issuer")

// signingKey is one published RSA key and the channels it is endorsed for.
type signingKey struct {
	key          *rsa.PublicKey
	endorsements []string
}

// KeySet fetches and caches the signing keys named by an OpenID metadata document.
//
// Keys are kept for MaxAge (the Bot Framework SDKs keep them for days). A token whose kid is
// not in the cache triggers one refetch, at most once per MinRefetchInterval, and concurrent
// refetches are collapsed into one request, so a flood of forged kids cannot turn into a
// flood of requests to the issuer.
type KeySet struct {
	// MetadataURL is the OpenID configuration document (its jwks_uri names the keys).
	MetadataURL string
	// HTTPClient performs the fetches.
	HTTPClient *http.Client
	// Now is the clock.
	Now func() time.Time
	// MaxAge is how long fetched keys are trusted before a background refetch is due.
	MaxAge time.Duration
	// MinRefetchInterval bounds refetches caused by unknown kids.
	MinRefetchInterval time.Duration

	mu          sync.RWMutex
	issuer      string
	keys        map[string]signingKey
	fetchedAt   time.Time
	attemptedAt time.Time
	lastErr     error
	inFlight    bool
	group       singleflight.Group
}

type openIDMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// rawJWKS keeps each key raw so that fields go-jose does not model (endorsements) survive.
type rawJWKS struct {
	Keys []json.RawMessage `json:"keys"`
}

// Issuer returns the issuer named by the metadata document, fetching it if needed.
func (s *KeySet) Issuer(ctx context.Context) (string, error) {
	s.mu.RLock()
	iss, fresh := s.issuer, s.fresh()
	s.mu.RUnlock()
	if iss != "" && fresh {
		return iss, nil
	}
	if err := s.refresh(ctx, iss == ""); err != nil && iss == "" {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.issuer, nil
}

// Key returns the key with the given kid, refetching once (rate-limited) when it is unknown.
func (s *KeySet) Key(ctx context.Context, kid string) (signingKey, error) {
	s.mu.RLock()
	k, ok := s.keys[kid]
	fresh := s.fresh()
	s.mu.RUnlock()
	if ok && fresh {
		return k, nil
	}
	if err := s.refresh(ctx, !ok); err != nil {
		if ok {
			return k, nil // stale but known: keep working while the issuer is unreachable
		}
		return signingKey{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return signingKey{}, fmt.Errorf("%w (kid %q)", ErrUnknownKey, kid)
}

// Warm fetches the keys ahead of the first request.
func (s *KeySet) Warm(ctx context.Context) error { return s.refresh(ctx, true) }

func (s *KeySet) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// fresh must be called with s.mu held.
func (s *KeySet) fresh() bool {
	maxAge := s.MaxAge
	if maxAge == 0 {
		maxAge = 24 * time.Hour
	}
	return !s.fetchedAt.IsZero() && s.now().Sub(s.fetchedAt) < maxAge
}

// refresh refetches the metadata and keys when they are stale or a kid is unknown. Attempts
// are rate-limited from the last attempt, successful or not — MinRefetchInterval while keys
// are cached, firstFetchRetry before the first success — so neither forged kids nor a failing
// issuer turn into a stream of requests. Callers arriving while a fetch is under way wait for
// it and see its keys.
func (s *KeySet) refresh(ctx context.Context, unknownKid bool) error {
	s.mu.RLock()
	fresh, inFlight := s.fresh(), s.inFlight
	limited, limitErr := s.rateLimitedLocked()
	s.mu.RUnlock()
	if fresh && !unknownKid {
		return nil
	}
	if limited && !inFlight {
		return limitErr
	}
	_, err, _ := s.group.Do("refresh", func() (any, error) {
		s.mu.Lock()
		if limited, limitErr := s.rateLimitedLocked(); limited {
			s.mu.Unlock() // a fetch finished just before this one would have started
			return nil, limitErr
		}
		s.attemptedAt, s.inFlight = s.now(), true
		s.mu.Unlock()
		err := s.fetch(ctx)
		s.mu.Lock()
		s.lastErr, s.inFlight = err, false
		s.mu.Unlock()
		return nil, err
	})
	return err
}

// rateLimitedLocked reports whether the last attempt is too recent to try again, and what
// the caller then gets: nothing when keys are cached, the last failure otherwise.
func (s *KeySet) rateLimitedLocked() (bool, error) {
	gap := s.MinRefetchInterval
	if gap == 0 {
		gap = time.Minute
	}
	if s.fetchedAt.IsZero() {
		gap = firstFetchRetry
	}
	if s.attemptedAt.IsZero() || s.now().Sub(s.attemptedAt) >= gap {
		return false, nil
	}
	if !s.fetchedAt.IsZero() {
		return true, nil
	}
	if s.lastErr != nil {
		return true, fmt.Errorf("signing keys unavailable (retrying shortly): %w", s.lastErr)
	}
	return false, nil
}

// firstFetchRetry spaces attempts while no key has ever been fetched.
const firstFetchRetry = 2 * time.Second

func (s *KeySet) fetch(ctx context.Context) error {
	var meta openIDMetadata
	if err := s.getJSON(ctx, s.MetadataURL, &meta); err != nil {
		return fmt.Errorf("fetch OpenID metadata: %w", err)
	}
	if meta.Issuer == "" || meta.JWKSURI == "" {
		return fmt.Errorf("fetch OpenID metadata: document lacks issuer or jwks_uri")
	}
	var set rawJWKS
	if err := s.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return fmt.Errorf("fetch signing keys: %w", err)
	}
	keys := make(map[string]signingKey, len(set.Keys))
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue // one unusable key must not hide the others
		}
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok || jwk.KeyID == "" {
			continue
		}
		var extra struct {
			Endorsements []string `json:"endorsements"`
		}
		_ = json.Unmarshal(raw, &extra)
		keys[jwk.KeyID] = signingKey{key: pub, endorsements: extra.Endorsements}
	}
	if len(keys) == 0 {
		return fmt.Errorf("fetch signing keys: no usable RSA keys at %s", meta.JWKSURI)
	}
	s.mu.Lock()
	s.issuer, s.keys, s.fetchedAt = meta.Issuer, keys, s.now()
	s.mu.Unlock()
	return nil
}

func (s *KeySet) getJSON(ctx context.Context, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := s.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(into)
}

// PublicKey returns the RSA key with the given kid (refetching once, rate-limited, when it is
// unknown), for validators of other tokens from the same issuer.
func (s *KeySet) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k, err := s.Key(ctx, kid)
	if err != nil {
		return nil, err
	}
	return k.key, nil
}
