package tokenstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TokenKey names one connector token of a user: the connector (e.g. "atlassian") and the
// resource within it (e.g. a cloud id or scope set; may be empty).
type TokenKey struct {
	Connector string
	Resource  string
}

func (k TokenKey) validate() error {
	if k.Connector == "" {
		return fmt.Errorf("%w: connector name is empty", ErrInvalid)
	}
	return nil
}

func (k TokenKey) rowKey() string { return "tok|" + hashKey("token", k.Connector, k.Resource) }

// Token is a connector's OAuth token set. All of it is sealed.
type Token struct {
	AccessToken  string            `json:"at,omitempty"`
	RefreshToken string            `json:"rt,omitempty"`
	TokenType    string            `json:"tt,omitempty"`
	Expiry       time.Time         `json:"exp,omitzero"` // of the access token
	Scopes       []string          `json:"sc,omitempty"`
	Extra        map[string]string `json:"x,omitempty"`
}

// validFor reports whether the access token is usable for at least d more.
func (t *Token) validFor(now time.Time, d time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(d).Before(t.Expiry))
}

const kindToken = "token"

// GetToken returns the stored token (from the L1 if fresh there). ErrNotFound when there is
// none; ErrSignInNeeded when it can no longer be opened. Do not refresh a rotating token
// from this value: use FreshToken or UpdateToken, which read Table Storage.
func (s *Store) GetToken(ctx context.Context, u UserKey, k TokenKey) (Token, error) {
	if err := validate(u, k); err != nil {
		return Token{}, err
	}
	pk, rk := u.Partition(), k.rowKey()
	key := l1Key(s.users, pk, rk)
	if b, ok := s.l1.get(key); ok {
		var t Token
		if json.Unmarshal(b, &t) == nil {
			return t, nil
		}
	}
	// Concurrent cold reads of the same token share one round trip.
	v, err, _ := s.flight.Do("get\x00"+key, func() (any, error) {
		t, _, err := s.readToken(ctx, pk, rk)
		return t, err
	})
	if err != nil {
		return Token{}, err
	}
	return v.(Token), nil
}

// readToken reads and opens the token row from Table Storage (never the L1) and refreshes the
// L1 with it.
func (s *Store) readToken(ctx context.Context, pk, rk string) (Token, *row, error) {
	r, err := s.read(ctx, s.users, pk, rk)
	if err != nil {
		return Token{}, nil, err
	}
	var t Token
	if err := s.open(ctx, s.users, r, kindToken, &t); err != nil {
		return Token{}, r, err
	}
	s.cacheToken(pk, rk, t, r.exp)
	return t, r, nil
}

func (s *Store) cacheToken(pk, rk string, t Token, exp time.Time) {
	if b, err := json.Marshal(t); err == nil {
		s.l1.put(l1Key(s.users, pk, rk), b, exp)
	}
}

// PutToken stores a token unconditionally (after a sign-in), sealed under the current key.
func (s *Store) PutToken(ctx context.Context, u UserKey, k TokenKey, t Token) error {
	if err := validate(u, k); err != nil {
		return err
	}
	pk, rk := u.Partition(), k.rowKey()
	r, err := s.newRow(ctx, s.users, pk, rk, kindToken, t, s.now().Add(s.tokenTTL))
	if err != nil {
		return err
	}
	if err := s.upsert(ctx, s.users, r); err != nil {
		return err
	}
	s.cacheToken(pk, rk, t, r.exp)
	return nil
}

// DeleteToken removes a token (sign-out of one connector). Deleting a missing token is not an error.
func (s *Store) DeleteToken(ctx context.Context, u UserKey, k TokenKey) error {
	if err := validate(u, k); err != nil {
		return err
	}
	err := s.remove(ctx, s.users, u.Partition(), k.rowKey(), "")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// UpdateToken reads the token from Table Storage (bypassing the L1), calls fn with it (nil when
// there is none, or it expired or can no longer be opened) and writes fn's result conditioned
// on the ETag it read; on a conflict it reads again and calls fn again, so fn must be free of
// side effects it cannot repeat. fn returning nil deletes the token. The result is re-sealed
// under the current key, which is how old rows move to a new key version.
func (s *Store) UpdateToken(ctx context.Context, u UserKey, k TokenKey, fn func(cur *Token) (*Token, error)) (*Token, error) {
	if err := validate(u, k); err != nil {
		return nil, err
	}
	pk, rk := u.Partition(), k.rowKey()
	const attempts = 16
	for i := 0; i < attempts; i++ {
		cur, r, err := s.readToken(ctx, pk, rk)
		var curp *Token
		switch {
		case err == nil:
			curp = &cur
		case errors.Is(err, ErrNotFound):
			// Absent, or expired and just deleted: fn decides from nothing; the write inserts.
			r = nil
		case errors.Is(err, ErrSignInNeeded):
			// Unusable: fn decides from nothing; the write replaces it.
		default:
			return nil, err
		}
		next, err := fn(curp)
		if err != nil {
			return nil, err
		}
		if next == nil {
			if r == nil {
				return nil, nil
			}
			err = s.remove(ctx, s.users, pk, rk, r.etag)
			if errors.Is(err, ErrNotFound) {
				return nil, nil
			}
		} else {
			err = s.writeToken(ctx, pk, rk, *next, r, time.Time{}, "")
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			// Changed or deleted since we read it: read again.
			sleepJitter(ctx, i)
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
	return nil, fmt.Errorf("tokenstore: update token: %w: gave up after %d attempts", ErrConflict, attempts)
}

// writeToken writes t: insert-only when prev is nil, else replace conditioned on prev's ETag.
func (s *Store) writeToken(ctx context.Context, pk, rk string, t Token, prev *row, leaseUntil time.Time, owner string) error {
	nr, err := s.newRow(ctx, s.users, pk, rk, kindToken, t, s.now().Add(s.tokenTTL))
	if err != nil {
		return err
	}
	nr.leaseUntil, nr.leaseOwner = leaseUntil, owner
	if prev == nil {
		_, err = s.insert(ctx, s.users, nr)
	} else {
		_, err = s.replace(ctx, s.users, nr, prev.etag)
	}
	if err == nil && leaseUntil.IsZero() {
		s.cacheToken(pk, rk, t, nr.exp)
	}
	return err
}

// RefreshFunc obtains a new token from the provider using cur (normally cur.RefreshToken).
// Return an error wrapping ErrSignInNeeded when the provider refuses the grant
// (invalid_grant): the stored token is then deleted.
type RefreshFunc func(ctx context.Context, cur Token) (Token, error)

// FreshToken returns an access token valid for at least minValid, refreshing it when needed so
// that, across every process sharing the table, each refresh token is used at most once:
//
//  1. A token in the L1 valid for minValid is returned as is.
//  2. Otherwise one goroutine per process (single-flight) reads the row from Table Storage.
//     If it is valid for minValid (another instance refreshed it), it is returned.
//  3. If another instance holds the refresh lease, wait and read again.
//  4. Else take the lease with a write conditioned on the ETag just read (losing the race means
//     someone else changed the row: go to 2), call refresh, and store its result, releasing
//     the lease, conditioned on the lease's ETag.
//
// ErrNotFound: no token (sign in). ErrSignInNeeded: the token is unusable or refresh said so.
func (s *Store) FreshToken(ctx context.Context, u UserKey, k TokenKey, minValid time.Duration, refresh RefreshFunc) (Token, error) {
	if err := validate(u, k); err != nil {
		return Token{}, err
	}
	if refresh == nil {
		return Token{}, fmt.Errorf("%w: refresh function is nil", ErrInvalid)
	}
	pk, rk := u.Partition(), k.rowKey()
	key := l1Key(s.users, pk, rk)
	if b, ok := s.l1.get(key); ok {
		var t Token
		if json.Unmarshal(b, &t) == nil && t.validFor(s.now(), minValid) {
			return t, nil
		}
	}
	// The shared flow must not die with the first caller's context: the others wait on it.
	// Callers share a flow only when they ask for the same validity: a forced refresh (a
	// token that must outlive any stored one) must not receive an ordinary read's result,
	// which may be the very token an API just refused. Flows for one row still run one at a
	// time across instances, through the lease.
	ch := s.flight.DoChan("fresh\x00"+key+"\x00"+minValid.String(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*s.lease)
		defer cancel()
		return s.freshen(fctx, pk, rk, minValid, refresh)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Token{}, res.Err
		}
		return res.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, fmt.Errorf("tokenstore: fresh token: %w", ctx.Err())
	}
}

func (s *Store) freshen(ctx context.Context, pk, rk string, minValid time.Duration, refresh RefreshFunc) (Token, error) {
	owner := newOwner()
	for {
		cur, r, err := s.readToken(ctx, pk, rk)
		if err != nil {
			return Token{}, err
		}
		now := s.now()
		if cur.validFor(now, minValid) {
			return cur, nil
		}
		if now.Before(r.leaseUntil) && r.leaseOwner != owner {
			// Another instance is refreshing; its result will appear in the row.
			if err := sleepCtx(ctx, s.leasePoll); err != nil {
				return Token{}, fmt.Errorf("tokenstore: waiting for refresh: %w", err)
			}
			continue
		}
		if cur.RefreshToken == "" {
			return Token{}, fmt.Errorf("tokenstore: token expired and cannot be refreshed: %w", ErrSignInNeeded)
		}
		// Take the lease: same sealed data, plus lease fields, conditioned on what we read.
		leased := *r
		leased.leaseUntil, leased.leaseOwner = now.Add(s.lease), owner
		leaseTag, err := s.replace(ctx, s.users, &leased, r.etag)
		if errors.Is(err, ErrConflict) {
			continue // changed under us: read again
		}
		if err != nil {
			return Token{}, err
		}
		leased.etag = leaseTag

		rctx, cancel := context.WithTimeout(ctx, s.lease*3/4)
		next, rerr := refresh(rctx, cur)
		cancel()
		if rerr != nil {
			if errors.Is(rerr, ErrSignInNeeded) {
				_ = s.remove(ctx, s.users, pk, rk, leaseTag)
				return Token{}, fmt.Errorf("tokenstore: refresh: %w", rerr)
			}
			// Release the lease so the next caller may try; the refresh token was not consumed
			// as far as we know.
			leased.leaseUntil, leased.leaseOwner = time.Time{}, ""
			_, _ = s.replace(ctx, s.users, &leased, leaseTag)
			return Token{}, fmt.Errorf("tokenstore: refresh: %w", rerr)
		}
		if next.RefreshToken == "" {
			next.RefreshToken = cur.RefreshToken // providers that do not rotate
		}
		if err := s.storeRotated(ctx, pk, rk, next, &leased); err != nil {
			return Token{}, err
		}
		return next, nil
	}
}

// rotatedWriteBudget bounds how long storing a freshly rotated token is retried.
const rotatedWriteBudget = 10 * time.Second

// storeRotated stores a just-refreshed token. The provider has already spent the old refresh
// token, so losing this write would leave a spent token in the row — and at Atlassian, reusing
// it after the leeway revokes the user's whole grant. Transient failures are retried; a
// conflict re-reads the row, because a write whose answer was lost may have landed.
func (s *Store) storeRotated(ctx context.Context, pk, rk string, next Token, leased *row) error {
	deadline := time.Now().Add(rotatedWriteBudget)
	wait := 100 * time.Millisecond
	for {
		err := s.writeToken(ctx, pk, rk, next, leased, time.Time{}, "")
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrConflict) {
			if cur, _, rerr := s.readToken(ctx, pk, rk); rerr == nil && cur.RefreshToken == next.RefreshToken {
				return nil
			}
		}
		if !errors.Is(err, ErrUnavailable) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("tokenstore: store refreshed token (the rotated refresh token is lost; the user may have to sign in again): %w", err)
		}
		if serr := sleepCtx(ctx, wait); serr != nil {
			return fmt.Errorf("tokenstore: store refreshed token: %w", err)
		}
		wait = min(wait*2, time.Second)
	}
}

func validate(u UserKey, k TokenKey) error {
	if err := u.Validate(); err != nil {
		return err
	}
	return k.validate()
}

func newOwner() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleepJitter backs off a little after a lost race so retries spread out.
func sleepJitter(ctx context.Context, attempt int) {
	var b [1]byte
	_, _ = rand.Read(b[:])
	d := time.Duration(1+int(b[0])%10) * time.Millisecond * time.Duration(min(attempt+1, 8))
	_ = sleepCtx(ctx, d)
}
