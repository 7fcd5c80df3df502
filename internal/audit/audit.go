// Package audit accounts for every call the bot makes to a back end on a user's behalf: one
// Record per call, saying when, for which user (tenant id and object id, never a name), to
// which connector and operation, with which token audience and scopes (never the token), who
// asked (a command, a card action, an assistant tool) and how it ended.
//
// The record is made in one place, Transport, an http.RoundTripper under every client that
// calls a back end as the user. The user and who asked travel in the request's context
// (WithUser, WithAsker, set when the turn starts); the connector marks its requests with
// WithTarget. Requests without a target (Entra, the token service, storage) pass through
// unrecorded. Back ends reached without HTTP (LDAP) call Recorder.Call themselves.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// User is the authenticated user a call is made for.
type User struct {
	TenantID string
	ObjectID string
}

// Target says which back end a request is for and what the token it carries allows.
type Target struct {
	// Connector names the back end ("graph", "jira", "contoso", "saml:sap", "ldap").
	Connector string
	// Audience is the token's audience (resource) and Scopes its scopes, from configuration.
	Audience string
	Scopes   []string
}

// Record is one call made for a user.
type Record struct {
	Time      time.Time `json:"time"`
	TenantID  string    `json:"tenantId"`
	ObjectID  string    `json:"objectId"`
	Connector string    `json:"connector"`
	// Operation is the method and path template ("GET /v1.0/me/messages"): no query string,
	// and path segments that may carry user text or identifiers replaced by "{}".
	Operation string   `json:"operation"`
	Audience  string   `json:"audience,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	// Asker is who asked: "command:<name>", "card:<name>", "invoke:<name>", "assistant:<tool>".
	Asker string `json:"asker"`
	// Outcome is ok, refused (401/403), not-found, throttled, failed (other 4xx/5xx),
	// unreachable (no answer) or denied (refused by the bot's own policy, never sent).
	Outcome    string `json:"outcome"`
	Status     int    `json:"status,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

type ctxKey int

const (
	userKey ctxKey = iota
	askerKey
	targetKey
)

// WithUser returns ctx carrying the user calls are made for. Only code that authenticated
// the user (the bot, from a validated activity) sets it.
func WithUser(ctx context.Context, u User) context.Context { return context.WithValue(ctx, userKey, u) }

// UserFrom returns the user set by WithUser.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey).(User)
	return u, ok && u.TenantID != "" && u.ObjectID != ""
}

// WithAsker returns ctx saying who asked for the calls made under it.
func WithAsker(ctx context.Context, asker string) context.Context {
	return context.WithValue(ctx, askerKey, asker)
}

// AskerFrom returns the asker set by WithAsker, or "unknown".
func AskerFrom(ctx context.Context) string {
	if a, ok := ctx.Value(askerKey).(string); ok && a != "" {
		return a
	}
	return "unknown"
}

// WithTarget marks the requests made under ctx as calls to a back end for the user.
func WithTarget(ctx context.Context, t Target) context.Context {
	return context.WithValue(ctx, targetKey, t)
}

func targetFrom(ctx context.Context) (Target, bool) {
	t, ok := ctx.Value(targetKey).(Target)
	return t, ok && t.Connector != ""
}

// Sink keeps records. Implementations must be safe for concurrent use.
type Sink interface {
	Keep(ctx context.Context, r Record) error
}

// Recorder makes records and hands them to its sinks. A nil *Recorder records nothing.
type Recorder struct {
	Sinks []Sink
	// Log receives sink failures (a record that could not be kept). Nil: slog.Default().
	Log *slog.Logger
	Now func() time.Time
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Call records one call to target for the user in ctx that began at start and ended with
// status (0 when the back end did not answer over HTTP) and err.
func (r *Recorder) Call(ctx context.Context, t Target, operation string, start time.Time, status int, err error) {
	if r == nil {
		return
	}
	u, _ := UserFrom(ctx)
	rec := Record{
		Time: start.UTC(), TenantID: u.TenantID, ObjectID: u.ObjectID,
		Connector: t.Connector, Operation: operation, Audience: t.Audience, Scopes: t.Scopes,
		Asker: AskerFrom(ctx), Outcome: Outcome(status, err), Status: status,
		DurationMS: r.now().Sub(start).Milliseconds(),
	}
	r.keep(ctx, rec)
}

// Denied records a call the bot refused to make (its policy does not allow it).
func (r *Recorder) Denied(ctx context.Context, t Target, operation string) {
	if r == nil {
		return
	}
	u, _ := UserFrom(ctx)
	r.keep(ctx, Record{Time: r.now().UTC(), TenantID: u.TenantID, ObjectID: u.ObjectID, Connector: t.Connector,
		Operation: operation, Audience: t.Audience, Scopes: t.Scopes, Asker: AskerFrom(ctx), Outcome: "denied"})
}

func (r *Recorder) keep(ctx context.Context, rec Record) {
	// The sinks' own requests (Table Storage) are not calls for the user.
	ctx = context.WithValue(context.WithoutCancel(ctx), targetKey, Target{})
	for _, s := range r.Sinks {
		if err := s.Keep(ctx, rec); err != nil {
			log := r.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn("audit record not kept", slog.String("connector", rec.Connector), slog.String("error", err.Error()))
		}
	}
}

// Outcome names how a call ended.
func Outcome(status int, err error) string {
	switch {
	case status == 0 && err != nil:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "cancelled"
		}
		return "unreachable"
	case status == 0, status < 400:
		return "ok"
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return "refused"
	case status == http.StatusNotFound:
		return "not-found"
	case status == http.StatusTooManyRequests:
		return "throttled"
	default:
		return "failed"
	}
}

// Transport records each request whose context carries a Target, then hands every request to
// Next unchanged. It sits under the clients that add the user's token, so it records each
// request the back end receives (a retried call is two records) and never sees more of the
// token than the Target says.
type Transport struct {
	Next     http.RoundTripper
	Recorder *Recorder
	// Guard, when set, may refuse a marked request before it is sent; the refusal is
	// recorded (outcome "denied") and returned.
	Guard Guard
}

// Guard decides whether a request for a user may be sent (the administrator's policy).
type Guard interface {
	Check(req *http.Request, t Target) error
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	target, ok := targetFrom(req.Context())
	if !ok {
		return next.RoundTrip(req)
	}
	if t.Guard != nil {
		if err := t.Guard.Check(req, target); err != nil {
			t.Recorder.Denied(req.Context(), target, Operation(req.Method, req.URL.EscapedPath()))
			return nil, &DeniedError{Err: err}
		}
	}
	if t.Recorder == nil {
		return next.RoundTrip(req)
	}
	start := t.Recorder.now()
	resp, err := next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.Recorder.Call(req.Context(), target, Operation(req.Method, req.URL.EscapedPath()), start, status, err)
	return resp, err
}

// DeniedError is the Transport's answer to a request its Guard refused: the request was never
// sent, and sending it again cannot succeed, so clients must not retry it.
type DeniedError struct{ Err error }

func (e *DeniedError) Error() string { return e.Err.Error() }

// Unwrap returns the Guard's error.
func (e *DeniedError) Unwrap() error { return e.Err }

// Wrap returns a copy of c whose transport is a Transport recording to r and checking g
// (nil: no check).
func Wrap(c *http.Client, r *Recorder, g Guard) *http.Client {
	out := *c
	out.Transport = &Transport{Next: c.Transport, Recorder: r, Guard: g}
	return &out
}

var (
	wordRE     = regexp.MustCompile(`^[A-Za-z_$][A-Za-z_$.]{0,39}$`)
	versionRE  = regexp.MustCompile(`^v?[0-9]{1,2}(\.[0-9]{1,2})?$`)
	functionRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z_.]{0,39})\(.*\)$`)
)

// Operation is method plus a path template: the query is dropped, and each path segment that
// is not a plain word or a short version number ("v1.0", "3") becomes "{}", so identifiers,
// keys and search text typed by the user stay out of the record. A function segment keeps its
// name: "search(q='x')" becomes "search({})".
func Operation(method, escapedPath string) string {
	segs := strings.Split(escapedPath, "/")
	for i, s := range segs {
		switch {
		case s == "" || wordRE.MatchString(s) || versionRE.MatchString(s):
		case functionRE.MatchString(s):
			segs[i] = functionRE.FindStringSubmatch(s)[1] + "({})"
		default:
			segs[i] = "{}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}
