package tokenstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// SignInState is what an OAuth sign-in started for a user must remember until the callback:
// who started it, for which connector, and the PKCE verifier. All of it is sealed.
type SignInState struct {
	User         UserKey           `json:"u"`
	Connector    string            `json:"c"`
	Resource     string            `json:"r,omitempty"`
	PKCEVerifier string            `json:"v,omitempty"`
	RedirectURI  string            `json:"ru,omitempty"`
	Extra        map[string]string `json:"x,omitempty"`
}

const (
	kindSignIn      = "signin"
	kindSignInIndex = "signinidx"
	// MaxSignInTTL caps how long a sign-in state may live.
	MaxSignInTTL = time.Hour
)

// signInKeys locates a state: its row in the signin table (partition = hash of the state,
// since the callback knows only the state) and its index row in the user's partition (so
// ForgetUser finds it).
func signInKeys(state string) (pk, rk, indexRK string) {
	h := hashKey("signin-state", state)
	return h, "s", "signin|" + h
}

// CreateSignIn stores st for at most ttl (capped at MaxSignInTTL) and returns a new random,
// URL-safe state value (256 bits) to put in the authorization request.
func (s *Store) CreateSignIn(ctx context.Context, st SignInState, ttl time.Duration) (string, error) {
	if err := st.User.Validate(); err != nil {
		return "", err
	}
	if st.Connector == "" {
		return "", fmt.Errorf("%w: connector name is empty", ErrInvalid)
	}
	if ttl <= 0 || ttl > MaxSignInTTL {
		ttl = min(max(ttl, 0), MaxSignInTTL)
		if ttl == 0 {
			ttl = 10 * time.Minute
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tokenstore: state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(b)
	pk, rk, irk := signInKeys(state)
	exp := s.now().Add(ttl)
	upk := st.User.Partition()

	// Index first: if the state row were written and the index not, ForgetUser could miss it.
	idx := &row{pk: upk, rk: irk, kind: kindSignInIndex, exp: exp}
	if _, err := s.insert(ctx, s.users, idx); err != nil {
		return "", err
	}
	r, err := s.newRow(ctx, s.signin, pk, rk, kindSignIn, st, exp)
	if err != nil {
		_ = s.remove(ctx, s.users, upk, irk, "")
		return "", err
	}
	r.user = upk
	if _, err := s.insert(ctx, s.signin, r); err != nil {
		_ = s.remove(ctx, s.users, upk, irk, "")
		return "", err
	}
	return state, nil
}

// ConsumeSignIn returns the sign-in state for state and deletes it, once: the delete is
// conditioned on the ETag read, so of two concurrent callers (or a replayed callback) exactly
// one succeeds and the other gets ErrNotFound. Unknown and expired states are ErrNotFound.
func (s *Store) ConsumeSignIn(ctx context.Context, state string) (SignInState, error) {
	if state == "" || len(state) > 512 {
		return SignInState{}, fmt.Errorf("tokenstore: consume sign-in: %w", ErrNotFound)
	}
	pk, rk, irk := signInKeys(state)
	r, err := s.read(ctx, s.signin, pk, rk)
	if err != nil {
		return SignInState{}, err
	}
	var st SignInState
	openErr := s.open(ctx, s.signin, r, kindSignIn, &st)
	if errors.Is(openErr, ErrNotFound) || errors.Is(openErr, ErrUnavailable) {
		// Expired (already dropped), or the key source is down: keep the state for a retry.
		return SignInState{}, openErr
	}
	// Delete before using: whoever deletes it owns it.
	if err := s.remove(ctx, s.signin, pk, rk, r.etag); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return SignInState{}, fmt.Errorf("tokenstore: sign-in state already used: %w", ErrNotFound)
		}
		return SignInState{}, err
	}
	if r.user != "" {
		_ = s.remove(ctx, s.users, r.user, irk, "")
	}
	if openErr != nil {
		return SignInState{}, openErr
	}
	if st.User.Partition() != r.user {
		return SignInState{}, fmt.Errorf("tokenstore: consume sign-in: %w: %w: owner mismatch", ErrSignInNeeded, ErrTampered)
	}
	return st, nil
}
