package oauth2

import (
	"context"
	"fmt"
	"time"

	xoauth2 "golang.org/x/oauth2"
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
