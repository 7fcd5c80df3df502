package oauth2

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	xoauth2 "golang.org/x/oauth2"
)

// ErrReconnect means the user's grant no longer works: the bot must mark the connection
// disconnected and ask the user, once, to connect again. Retrying cannot help.
var ErrReconnect = errors.New("the connection must be made again")

// ErrInvalidGrant is the token endpoint's invalid_grant (RFC 6749 §5.2): an expired, revoked
// or reused code or refresh token. It matches ErrReconnect with errors.Is.
var ErrInvalidGrant = fmt.Errorf("%w: invalid_grant", ErrReconnect)

// ErrRefusedAfterRefresh means the API refused a token it had just been issued: the grant
// works but does not cover this request (Atlassian answers 401 "scope does not match" for a
// scope or site the consent does not include). The link stays; the user is told what is
// missing rather than sent round the reconnect loop.
var ErrRefusedAfterRefresh = errors.New("the API refused a freshly issued token: the connection does not cover this request")

// ErrNotConnected means no tokens are stored for this user and connector.
var ErrNotConnected = errors.New("not connected")

// ErrUnavailable means the provider failed (5xx or network) and kept failing within the
// retry bound; trying later may work.
var ErrUnavailable = errors.New("the service is unavailable")

// ErrMisconfigured means the connector itself is wrong (client id or secret refused, secret
// missing): an operator must fix it, so users must not be sent round the consent loop.
var ErrMisconfigured = errors.New("the connector is misconfigured")

// ThrottledError is a 429 whose Retry-After was longer than the client waits, or that
// persisted through every attempt.
type ThrottledError struct {
	// RetryAfter is how long the provider asked to wait (0 if it did not say).
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("throttled: retry after %s", e.RetryAfter)
	}
	return "throttled"
}

// StatusError is an API answer the client does not handle itself (4xx other than 401 and
// 429). Callers map it to their domain (for example 404 → not permitted).
type StatusError struct {
	StatusCode int
	// Body is the start of the response body, for logs; it never holds tokens.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d", e.StatusCode)
}

// classifyTokenError maps a token-endpoint failure from x/oauth2 to this package's errors.
// The raw body is never included: a misbehaving server might echo credentials.
func classifyTokenError(op string, err error, refresh bool, now time.Time) error {
	var re *xoauth2.RetrieveError
	if !errors.As(err, &re) {
		// Transport failure: DNS, TLS, timeout.
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	switch {
	case re.ErrorCode == "invalid_grant":
		return fmt.Errorf("%s: token endpoint answered %d: %w", op, status, ErrInvalidGrant)
	case refresh && re.ErrorCode == "unauthorized_client" && strings.Contains(re.ErrorDescription, "refresh_token"):
		// Atlassian answers a rotated-away or expired refresh token with 403 unauthorized_client
		// "refresh_token is invalid" (seen by integrators; not in its documentation): the
		// grant is dead, not the client. A bad client secret fails the exchange as well.
		return fmt.Errorf("%s: token endpoint answered %d unauthorized_client for the refresh token: %w", op, status, ErrInvalidGrant)
	case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" || status == http.StatusUnauthorized:
		return fmt.Errorf("%s: token endpoint answered %d %s: %w", op, status, re.ErrorCode, ErrMisconfigured)
	case status == http.StatusTooManyRequests:
		var ra time.Duration
		if re.Response != nil {
			ra = ParseRetryAfter(re.Response.Header.Get("Retry-After"), now)
		}
		return fmt.Errorf("%s: %w", op, &ThrottledError{RetryAfter: ra})
	case status >= 500:
		return fmt.Errorf("%s: token endpoint answered %d: %w", op, status, ErrUnavailable)
	default:
		return fmt.Errorf("%s: token endpoint answered %d %s", op, status, re.ErrorCode)
	}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3). Unparseable or past values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
