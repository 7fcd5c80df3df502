package oauth2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
)

// Client returns an *http.Client that calls the connector's API as the user whose tokens ts
// yields. Per request it:
//   - refuses any origin other than Config.APIBaseURL's (the user's token never leaves it);
//   - on 401 asks ts for one forced refresh (when ts implements ForceRefresher) and retries
//     once; a second 401 gives an error matching ErrReconnect;
//   - on 429 waits for Retry-After when it is no longer than RetryPolicy.MaxRetryAfter and
//     attempts remain, else returns *ThrottledError;
//   - on 5xx retries with doubling backoff up to RetryPolicy.MaxAttempts, then returns an
//     error matching ErrUnavailable.
//
// Other statuses are returned as responses for the caller to read. Errors from the client
// arrive wrapped in *url.Error; errors.Is and errors.As see through it.
func (c *Connector) Client(ts TokenSource) *http.Client {
	base := c.rt.HTTPClient
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	return &http.Client{
		Transport: &transport{conn: c, ts: ts, next: next},
		Timeout:   base.Timeout,
		// Redirects to another origin would carry no token (net/http strips Authorization
		// across hosts) but we refuse them anyway: APIs we call do not redirect off-origin.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !c.sameOrigin(req) {
				return fmt.Errorf("oauth2 %s: redirect to another origin refused", c.cfg.Name)
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

func (c *Connector) sameOrigin(req *http.Request) bool {
	return strings.EqualFold(req.URL.Scheme, c.apiURL.Scheme) && strings.EqualFold(req.URL.Host, c.apiURL.Host)
}

type transport struct {
	conn *Connector
	ts   TokenSource
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.conn
	op := "oauth2 " + c.cfg.Name + " " + req.Method + " " + req.URL.Path
	if !c.sameOrigin(req) {
		return nil, fmt.Errorf("%s: origin %s is not the connector's API", op, req.URL.Host)
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Without GetBody the request cannot be replayed; send it once, no retries.
		return t.once(req, op)
	}
	ctx := req.Context()
	tok, err := t.ts.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: token: %w", op, err)
	}
	policy := c.rt.Retry
	refreshed := false
	for attempt := 1; ; attempt++ {
		resp, err := t.send(req, tok)
		if denied := new(audit.DeniedError); errors.As(err, &denied) {
			// Refused before it was sent (the administrator's policy): final.
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if err != nil {
			if ctx.Err() != nil || attempt >= policy.MaxAttempts {
				return nil, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
			}
			if err := sleep(ctx, backoff(policy, attempt)); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			continue
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			drain(resp)
			fr, ok := t.ts.(ForceRefresher)
			if refreshed {
				return nil, fmt.Errorf("%s: %w", op, ErrRefusedAfterRefresh)
			}
			if !ok {
				return nil, fmt.Errorf("%s: API refused the token: %w", op, ErrReconnect)
			}
			refreshed = true
			tok, err = fr.ForceRefresh(ctx, tok)
			if err != nil {
				return nil, fmt.Errorf("%s: refresh after 401: %w", op, err)
			}
			attempt-- // the forced refresh does not use up a retry attempt
		case resp.StatusCode == http.StatusTooManyRequests:
			ra := ParseRetryAfter(resp.Header.Get("Retry-After"), c.rt.Now())
			drain(resp)
			if attempt >= policy.MaxAttempts || ra > policy.MaxRetryAfter {
				return nil, fmt.Errorf("%s: %w", op, &ThrottledError{RetryAfter: ra})
			}
			if ra == 0 {
				ra = backoff(policy, attempt)
			}
			if err := sleep(ctx, ra); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		case resp.StatusCode >= 500:
			drain(resp)
			if attempt >= policy.MaxAttempts {
				return nil, fmt.Errorf("%s: HTTP %d after %d attempts: %w", op, resp.StatusCode, attempt, ErrUnavailable)
			}
			if err := sleep(ctx, backoff(policy, attempt)); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		default:
			return resp, nil
		}
	}
}

// once sends a non-replayable request a single time, mapping statuses like RoundTrip.
func (t *transport) once(req *http.Request, op string) (*http.Response, error) {
	tok, err := t.ts.Token(req.Context())
	if err != nil {
		return nil, fmt.Errorf("%s: token: %w", op, err)
	}
	resp, err := t.send(req, tok)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		drain(resp)
		if fr, ok := t.ts.(ForceRefresher); ok {
			// Refresh so the next call works, but the body is gone: ask to try again.
			if _, err := fr.ForceRefresh(req.Context(), tok); err != nil {
				return nil, fmt.Errorf("%s: refresh after 401: %w", op, err)
			}
			return nil, fmt.Errorf("%s: token refreshed, request not replayable: %w", op, ErrUnavailable)
		}
		return nil, fmt.Errorf("%s: API refused the token: %w", op, ErrReconnect)
	case resp.StatusCode == http.StatusTooManyRequests:
		ra := ParseRetryAfter(resp.Header.Get("Retry-After"), t.conn.rt.Now())
		drain(resp)
		return nil, fmt.Errorf("%s: %w", op, &ThrottledError{RetryAfter: ra})
	case resp.StatusCode >= 500:
		drain(resp)
		return nil, fmt.Errorf("%s: HTTP %d: %w", op, resp.StatusCode, ErrUnavailable)
	}
	return resp, nil
}

func (t *transport) send(req *http.Request, tok *Token) (*http.Response, error) {
	scopes := c0(t.conn.cfg.Scopes)
	if tok.Scope != "" {
		scopes = strings.Fields(tok.Scope)
	}
	r := req.Clone(audit.WithTarget(req.Context(), audit.Target{Connector: t.conn.cfg.Name, Audience: t.conn.apiURL.Host, Scopes: scopes}))
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return t.next.RoundTrip(r)
}

func backoff(p RetryPolicy, attempt int) time.Duration {
	return p.Backoff << (attempt - 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// c0 copies a scope list, so an audit record never aliases configuration.
func c0(s []string) []string { return append([]string(nil), s...) }
