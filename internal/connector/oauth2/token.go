package oauth2

import (
	"context"
	"errors"
	"fmt"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Token is what is stored, sealed, for one user and connector.
type Token struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitempty"`
	Scope        string    `json:"scope,omitempty"`
}

// expiryMargin is how long before its expiry a token is treated as expired, so that a call
// started just before expiry does not arrive with a dead token.
const expiryMargin = 2 * time.Minute

// Fresh reports whether the access token can still be used at now.
func (t *Token) Fresh(now time.Time) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.Expiry.IsZero() || now.Add(expiryMargin).Before(t.Expiry)
}

// TokenSource yields a usable access token for one (user, connector). Implementations
// refresh when needed; they must be safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (*Token, error)
}

// ForceRefresher is implemented by token sources that can replace an access token the API
// rejected with 401. rejected is the token that failed: if the stored token already differs,
// another caller refreshed and the stored one is returned without a new refresh.
type ForceRefresher interface {
	ForceRefresh(ctx context.Context, rejected *Token) (*Token, error)
}

// Key names one user's connection to one connector.
type Key struct {
	// User is the opaque, authenticated user key (from the Entra tenant and object ids).
	User string
	// Connector is Config.Name.
	Connector string
}

// TokenStore persists tokens; internal/tokenstore implements it with sealed rows and ETags.
type TokenStore interface {
	// Get returns the stored token or an error matching ErrNotConnected.
	Get(ctx context.Context, k Key) (*Token, error)
	// Update reads the current token (nil if none), calls fn and stores what fn returns,
	// conditionally on the row being unchanged; on a conflict it reads again and calls fn
	// again. fn returning nil, nil deletes the row. An error from fn aborts with nothing
	// written and is returned. Implementations should let only one caller across instances
	// run fn for a key at a time (a lease), because fn spends a rotating refresh token.
	Update(ctx context.Context, k Key, fn func(cur *Token) (*Token, error)) (*Token, error)
}

// Exchange redeems an authorization code with the PKCE verifier kept for it.
func (c *Connector) Exchange(ctx context.Context, code, verifier string) (*Token, error) {
	const op = "oauth2 exchange"
	if code == "" || verifier == "" {
		return nil, fmt.Errorf("%s: missing code or verifier", op)
	}
	oc, err := c.oauthConfig(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ctx = context.WithValue(ctx, xoauth2.HTTPClient, c.rt.HTTPClient)
	xt, err := oc.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
	if err != nil {
		return nil, classifyTokenError(op, err, false, c.rt.Now())
	}
	return c.fromX(xt), nil
}

// Refresh spends refreshToken and returns the new token, including the rotated refresh token
// the caller must persist before anything else uses the old one. When the provider does not
// rotate, the old refresh token is carried over.
func (c *Connector) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	const op = "oauth2 refresh"
	if refreshToken == "" {
		return nil, fmt.Errorf("%s: %w", op, ErrInvalidGrant)
	}
	oc, err := c.oauthConfig(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ctx = context.WithValue(ctx, xoauth2.HTTPClient, c.rt.HTTPClient)
	xt, err := oc.TokenSource(ctx, &xoauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, classifyTokenError(op, err, true, c.rt.Now())
	}
	t := c.fromX(xt)
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	return t, nil
}

// fromX converts, computing expiry from expires_in against the injected clock (x/oauth2
// uses the wall clock).
func (c *Connector) fromX(xt *xoauth2.Token) *Token {
	t := &Token{AccessToken: xt.AccessToken, RefreshToken: xt.RefreshToken, TokenType: xt.TokenType}
	switch {
	case xt.ExpiresIn > 0:
		t.Expiry = c.rt.Now().Add(time.Duration(xt.ExpiresIn) * time.Second)
	case !xt.Expiry.IsZero():
		t.Expiry = c.rt.Now().Add(time.Until(xt.Expiry))
	}
	if s, ok := xt.Extra("scope").(string); ok {
		t.Scope = s
	}
	return t
}

// StoreSource is a TokenSource over a TokenStore: it returns the stored token while fresh and
// otherwise refreshes it inside TokenStore.Update, so that the rotated refresh token is
// persisted by the same step that spent the old one. Concurrent callers in this process share
// one refresh; across instances the store's Update must serialise (see TokenStore).
// On invalid_grant the stored token is deleted, so the user is asked to connect again once
// rather than on every turn.
type StoreSource struct {
	Conn  *Connector
	Store TokenStore
	Key   Key
}

var (
	_ TokenSource    = (*StoreSource)(nil)
	_ ForceRefresher = (*StoreSource)(nil)
)

// flights collapses concurrent refreshes of the same key within this process.
var flights singleflight.Group

// Token returns a fresh token, refreshing if the stored one is near expiry.
func (s *StoreSource) Token(ctx context.Context) (*Token, error) {
	t, err := s.Store.Get(ctx, s.Key)
	if err != nil {
		return nil, err
	}
	if t.Fresh(s.Conn.rt.Now()) {
		return t, nil
	}
	return s.refresh(ctx, t)
}

// ForceRefresh refreshes unless the stored token already differs from rejected.
func (s *StoreSource) ForceRefresh(ctx context.Context, rejected *Token) (*Token, error) {
	return s.refresh(ctx, rejected)
}

func (s *StoreSource) refresh(ctx context.Context, stale *Token) (*Token, error) {
	staleAT := ""
	if stale != nil {
		staleAT = stale.AccessToken
	}
	ch := flights.DoChan(s.Key.User+"\x00"+s.Key.Connector, func() (any, error) {
		// The refresh runs to completion even if the turn that started it gives up: a
		// rotated refresh token that is issued but never persisted would leave only the spent
		// one, whose reuse after the leeway revokes the user's grant.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		var spent error
		t, err := s.Store.Update(ctx, s.Key, func(cur *Token) (*Token, error) {
			if cur == nil {
				return nil, ErrNotConnected
			}
			// Someone else refreshed while we waited: use theirs, spend nothing.
			if cur.AccessToken != staleAT && cur.Fresh(s.Conn.rt.Now()) {
				return cur, nil
			}
			nt, err := s.Conn.Refresh(ctx, cur.RefreshToken)
			if errors.Is(err, ErrInvalidGrant) {
				spent = err
				return nil, nil // delete: the grant is gone
			}
			if err != nil {
				return nil, err
			}
			return nt, nil
		})
		if spent != nil {
			return nil, spent
		}
		return t, err
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Token), nil
	}
}

// refreshTimeout bounds one refresh-and-persist, independent of the caller's deadline.
const refreshTimeout = 30 * time.Second
