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
// Keys are kept for MaxAge (the Bot Framework SDKs keep them for a day or more). A key the
// issuer publishes is usable as soon as it appears: a token whose kid is not cached waits for
// a fetch that starts after the token arrived, and is accepted if that fetch finds the key
// (auth0/node-jwks-rsa README, "Rate Limiting": a missing kid means the issuer may have
// rotated its keys, so the endpoint is asked again).
//
// Forged kids cannot turn into a storm of requests to the issuer: fetches start at most once
// per MinRefetchInterval, however many unknown kids arrive. A token arriving sooner than that
// after the last fetch waits for the interval to end and shares the next fetch with every
// other waiter, so a genuine rotation costs at most MinRefetchInterval of latency, never a
// refusal, and an attacker's random kids cost the issuer one fetch (metadata and key set) per
// interval. While the issuer fails, callers get the last failure at once instead of queueing.
type KeySet struct {
	// MetadataURL is the OpenID configuration document (its jwks_uri names the keys).
	MetadataURL string
	// HTTPClient performs the fetches.
	HTTPClient *http.Client
	// Now is the clock.
	Now func() time.Time
	// MaxAge is how long fetched keys are trusted before a refetch is due (default 24 h).
	MaxAge time.Duration
	// MinRefetchInterval is the shortest gap between the starts of two fetches (default 5 s).
	MinRefetchInterval time.Duration
	// FetchTimeout bounds one fetch of the metadata and keys (default 10 s). A fetch serves
	// every caller waiting for it, so it does not end when the caller that started it leaves.
	FetchTimeout time.Duration

	mu        sync.Mutex
	issuer    string
	keys      map[string]signingKey
	fetchedAt time.Time     // the last successful fetch
	startedAt time.Time     // the start of the last fetch, successful or not
	started   uint64        // fetches started so far; a fetch's number is its count
	finished  uint64        // the number of the last fetch that ended
	lastErr   error         // how that fetch ended
	running   chan struct{} // non-nil while a fetch runs; closed when it ends
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
	s.mu.Lock()
	iss, fresh, next := s.issuer, s.freshLocked(), s.nextLocked()
	s.mu.Unlock()
	switch {
	case iss != "" && fresh:
		return iss, nil
	case iss != "":
		_ = s.refreshStale(ctx, next) // stale: keep the cached issuer if the issuer is unreachable
	default:
		if err := s.fetchAfter(ctx, next, ""); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer, nil
}

// Key returns the key with the given kid. An unknown kid waits for a fetch that started after
// the call (see KeySet); a known but stale key is refreshed when the interval allows and kept
// while the issuer is unreachable.
func (s *KeySet) Key(ctx context.Context, kid string) (signingKey, error) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	fresh, next := s.freshLocked(), s.nextLocked()
	s.mu.Unlock()
	switch {
	case ok && fresh:
		return k, nil
	case ok:
		if err := s.refreshStale(ctx, next); err != nil {
			return k, nil // stale but known: keep working while the issuer is unreachable
		}
	default:
		if err := s.fetchAfter(ctx, next, kid); err != nil {
			return signingKey{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return signingKey{}, fmt.Errorf("%w (kid %q)", ErrUnknownKey, kid)
}

// Warm fetches the keys ahead of the first request.
func (s *KeySet) Warm(ctx context.Context) error {
	s.mu.Lock()
	next := s.nextLocked()
	s.mu.Unlock()
	return s.fetchAfter(ctx, next, "")
}

// nextLocked is the fetch a caller arriving now must see end. With keys cached it is one that
// starts after now: a fetch already under way may have begun before the issuer published the
// key the caller needs. With none cached, any fetch that ends from now on will do.
func (s *KeySet) nextLocked() uint64 {
	if s.fetchedAt.IsZero() {
		return s.finished + 1
	}
	return s.started + 1
}

func (s *KeySet) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// freshLocked must be called with s.mu held.
func (s *KeySet) freshLocked() bool {
	maxAge := s.MaxAge
	if maxAge == 0 {
		maxAge = 24 * time.Hour
	}
	return !s.fetchedAt.IsZero() && s.now().Sub(s.fetchedAt) < maxAge
}

// gapLocked is the shortest gap between two fetch starts; before the first success it is
// firstFetchRetry, so a failing issuer at start-up is retried sooner.
func (s *KeySet) gapLocked() time.Duration {
	if s.fetchedAt.IsZero() {
		return firstFetchRetry
	}
	if s.MinRefetchInterval > 0 {
		return s.MinRefetchInterval
	}
	return defaultMinRefetchInterval
}

const (
	// defaultMinRefetchInterval bounds fetches caused by unknown kids: at most one metadata and
	// one JWKS request per 5 s per process, and at most 5 s of waiting for a genuine new key.
	defaultMinRefetchInterval = 5 * time.Second
	// firstFetchRetry spaces attempts while no key has ever been fetched.
	firstFetchRetry     = 2 * time.Second
	defaultFetchTimeout = 10 * time.Second
)

// refreshStale refetches keys past MaxAge without waiting: when a fetch is under way or the
// interval has not passed, the caller keeps the cached keys (errRefreshSkipped).
func (s *KeySet) refreshStale(ctx context.Context, need uint64) error {
	return s.awaitFetch(ctx, need, "", false)
}

var errRefreshSkipped = errors.New("refresh skipped: a fetch is under way or happened moments ago")

// fetchAfter returns once a fetch numbered need or later has ended (need is one more than the
// fetches started when the caller arrived, so the fetch began after the caller did), or once
// kid (when not empty) is known, starting a fetch if none is running and the interval allows,
// waiting out the interval otherwise.
func (s *KeySet) fetchAfter(ctx context.Context, need uint64, kid string) error {
	return s.awaitFetch(ctx, need, kid, true)
}

// awaitFetch is fetchAfter; unless mayWait, it returns errRefreshSkipped instead of waiting for a
// running fetch or for the interval to pass.
func (s *KeySet) awaitFetch(ctx context.Context, need uint64, kid string, mayWait bool) error {
	slept := false
	for {
		s.mu.Lock()
		if _, ok := s.keys[kid]; ok && kid != "" {
			s.mu.Unlock()
			return nil
		}
		if s.finished >= need {
			err := s.lastErr
			s.mu.Unlock()
			return err
		}
		if running := s.running; running != nil {
			s.mu.Unlock()
			if !mayWait {
				return errRefreshSkipped
			}
			select {
			case <-running:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if wait := s.gapLocked() - s.now().Sub(s.startedAt); !s.startedAt.IsZero() && wait > 0 && !slept {
			if s.lastErr != nil {
				// The issuer is failing: report it now rather than queue every request.
				err := s.lastErr
				s.mu.Unlock()
				return fmt.Errorf("signing keys unavailable (retrying shortly): %w", err)
			}
			s.mu.Unlock()
			if !mayWait {
				return errRefreshSkipped
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			// Having waited out the interval, this caller may start the next fetch even if
			// the (injected) clock did not move.
			slept = true
			continue
		}
		s.started++
		n, running := s.started, make(chan struct{})
		s.startedAt, s.running = s.now(), running
		s.mu.Unlock()

		err := s.fetchDetached(ctx)

		s.mu.Lock()
		s.finished, s.lastErr, s.running = n, err, nil
		s.mu.Unlock()
		close(running)
	}
}

// fetchDetached runs one fetch for every caller waiting on it: the starting caller's
// cancellation does not end it, FetchTimeout does.
func (s *KeySet) fetchDetached(ctx context.Context) error {
	timeout := s.FetchTimeout
	if timeout <= 0 {
		timeout = defaultFetchTimeout
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return s.fetch(fctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

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
