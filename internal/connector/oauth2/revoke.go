package oauth2

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// CanRevoke reports whether the provider has a revocation endpoint.
func (c *Connector) CanRevoke() bool { return c.cfg.RevokeURL != "" }

// Revoke asks the provider to revoke the refresh token (RFC 7009 §2.1, token_type_hint
// refresh_token), which also ends the access tokens issued from it. Without a RevokeURL it
// does nothing: the caller deletes the stored tokens either way. A 200 means revoked or
// already invalid (RFC 7009 §2.2).
func (c *Connector) Revoke(ctx context.Context, t *Token) error {
	const op = "oauth2 revoke"
	if c.cfg.RevokeURL == "" || t == nil || (t.RefreshToken == "" && t.AccessToken == "") {
		return nil
	}
	secret, err := c.rt.Secret(ctx, c.cfg.ClientSecretName)
	if err != nil {
		return fmt.Errorf("%s: %w: client secret: %w", op, ErrMisconfigured, err)
	}
	form := url.Values{"token": {t.RefreshToken}, "token_type_hint": {"refresh_token"}}
	if t.RefreshToken == "" {
		form = url.Values{"token": {t.AccessToken}, "token_type_hint": {"access_token"}}
	}
	if c.cfg.AuthStyle != "header" {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", strings.TrimSpace(secret))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.cfg.AuthStyle == "header" {
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(strings.TrimSpace(secret)))
	}
	resp, err := c.rt.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s: HTTP 401: %w", op, ErrMisconfigured)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%s: HTTP %d: %w", op, resp.StatusCode, ErrUnavailable)
	default:
		return fmt.Errorf("%s: HTTP %d", op, resp.StatusCode)
	}
}
