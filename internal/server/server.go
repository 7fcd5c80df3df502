// Package server is the handler's HTTP edge: it checks method, content type and size,
// authenticates the channel's token, drops activities the channel re-delivers, hands the
// activity to the bot and logs one line per activity.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
)

// MaxBodyBytes bounds an activity's size. Teams messages are far smaller (about 28 KB of
// text plus cards); anything larger is refused before it is parsed.
const MaxBodyBytes = 256 << 10

// Authenticator validates an inbound channel token for an activity.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string, a *botframework.Activity) (*botframework.Claims, error)
}

var _ Authenticator = (*botframework.Authenticator)(nil)

// ActivityHandler answers an authenticated activity.
type ActivityHandler interface {
	OnActivity(ctx context.Context, act *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error)
}

var _ ActivityHandler = (*bot.Bot)(nil)

// Truster records serviceUrls that arrived in authenticated activities.
type Truster interface {
	Trust(serviceURL string)
}

var _ Truster = (*botframework.Connector)(nil)

// Messages serves POST /api/messages.
type Messages struct {
	// Auth validates channel tokens; nil means local anonymous mode.
	Auth Authenticator
	// Bot answers activities.
	Bot ActivityHandler
	// Trust learns the serviceUrls replies may go to.
	Trust Truster
	// Log receives one line per activity.
	Log *slog.Logger
	// Seen drops re-delivered activities; nil disables de-duplication.
	Seen *Dedupe
	// TurnTimeout bounds one turn (the channel gives up after about 15 s).
	TurnTimeout time.Duration
	// Now is the clock.
	Now func() time.Time
	// AllowLoopbackHTTP accepts activities whose serviceUrl is http on a loopback host (the
	// local Agents Playground and Emulator). Only local anonymous mode sets it; otherwise a
	// serviceUrl must be https.
	AllowLoopbackHTTP bool
}

// serveRecovered runs serve and turns a panic in the bot into a 500 with one log line naming
// its type and where it happened (never its value, which may hold user data), so one broken
// command does not cut the connection without an answer or a record.
func (m *Messages) serveRecovered(w http.ResponseWriter, r *http.Request, rec *logRecord) (status int) {
	defer func() {
		p := recover()
		if p == nil || p == http.ErrAbortHandler {
			if p != nil {
				panic(p)
			}
			return
		}
		where := "unknown"
		for i := 2; i < 12; i++ {
			pc, file, line, ok := runtime.Caller(i)
			if !ok {
				break
			}
			if fn := runtime.FuncForPC(pc); fn != nil && !strings.HasPrefix(fn.Name(), "runtime.") {
				where = fmt.Sprintf("%s (%s:%d)", fn.Name(), filepath.Base(file), line)
				break
			}
		}
		rec.reason = fmt.Sprintf("internal error: panic (%T) in %s", p, where)
		rec.outcome = "panic"
		status = http.StatusInternalServerError
		w.WriteHeader(status)
	}()
	return m.serve(w, r, rec)
}

// ServeHTTP implements the Bot Framework messaging endpoint.
func (m *Messages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	start := now()
	rec := logRecord{}
	status := m.serveRecovered(w, r, &rec)
	attrs := []any{
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(now().Sub(start).Microseconds())/1000),
	}
	if rec.act != nil {
		attrs = append(attrs,
			slog.String("id", rec.act.ID),
			slog.String("type", rec.act.Type),
			slog.String("channel", rec.act.ChannelID),
			slog.String("user", UserHash(rec.act)),
		)
		if rec.act.Name != "" {
			attrs = append(attrs, slog.String("name", rec.act.Name))
		}
	}
	attrs = append(attrs, slog.String("outcome", rec.outcome))
	level := slog.LevelInfo
	if rec.reason != "" {
		attrs = append(attrs, slog.String("reason", rec.reason))
		if status >= 500 {
			level = slog.LevelError
		} else {
			level = slog.LevelWarn
		}
	}
	if rec.outcome == "probe" {
		level = slog.LevelDebug
	}
	m.Log.Log(r.Context(), level, "activity", attrs...)
}

type logRecord struct {
	act     *botframework.Activity
	outcome string
	reason  string
}

func (m *Messages) serve(w http.ResponseWriter, r *http.Request, rec *logRecord) int {
	fail := func(status int, outcome, reason string) int {
		rec.outcome, rec.reason = outcome, reason
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		http.Error(w, http.StatusText(status), status)
		return status
	}
	if r.Method == http.MethodHead {
		// A reachability probe (the Agents Playground waits for the endpoint with HEAD on
		// every page load): answered without reading anything, and not a warning.
		rec.outcome = "probe"
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "rejected", "method "+r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "rejected", "content type is not application/json")
	}
	if r.ContentLength > MaxBodyBytes {
		return fail(http.StatusRequestEntityTooLarge, "rejected", "body too large")
	}
	authz := r.Header.Get("Authorization")
	if m.Auth != nil && authz == "" {
		return fail(http.StatusUnauthorized, "unauthorized", "no Authorization header")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fail(http.StatusRequestEntityTooLarge, "rejected", "body too large")
		}
		return fail(http.StatusBadRequest, "rejected", "unreadable body")
	}
	var act botframework.Activity
	if err := json.Unmarshal(body, &act); err != nil {
		return fail(http.StatusBadRequest, "rejected", "malformed JSON")
	}
	if err := act.Validate(); err != nil {
		return fail(http.StatusBadRequest, "rejected", err.Error())
	}
	rec.act = &act
	// Replies go to the serviceUrl; one that is not a plain origin and path is refused before
	// anything runs, rather than trusted and failed on at reply time.
	if err := botframework.CheckServiceURL(act.ServiceURL, m.AllowLoopbackHTTP); err != nil {
		return fail(http.StatusBadRequest, "rejected", err.Error())
	}

	ctx := r.Context()
	if m.Auth != nil {
		if _, err := m.Auth.Authenticate(ctx, authz, &act); err != nil {
			return fail(http.StatusUnauthorized, "unauthorized", err.Error())
		}
	}
	if m.Trust != nil {
		m.Trust.Trust(act.ServiceURL)
	}

	var entry *dedupeEntry
	if m.Seen != nil && act.ID != "" {
		var first bool
		entry, first = m.Seen.Begin(act.ChannelID + "|" + act.Conversation.ID + "|" + act.ID)
		if !first {
			resp, ok := entry.wait(ctx)
			rec.outcome = "duplicate"
			if !ok {
				return fail(http.StatusServiceUnavailable, "duplicate", "first delivery still running")
			}
			return writeInvoke(w, resp)
		}
	}

	timeout := m.TurnTimeout
	if timeout == 0 {
		timeout = 14 * time.Second
	}
	turnCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	resp, turn, err := m.Bot.OnActivity(turnCtx, &act)
	if turn != nil {
		rec.outcome = turn.Outcome
	}
	if err != nil && errors.Is(err, botframework.ErrBotNotInConversationRoster) {
		// The user removed the bot while this activity was on its way: the channel's retry
		// would meet the same refusal, so it is answered as done.
		rec.reason, rec.outcome = err.Error(), "bot-not-in-conversation"
		if entry != nil {
			entry.finish(resp)
		}
		return writeInvoke(w, resp)
	}
	if err != nil {
		rec.reason = err.Error()
		if rec.outcome == "" {
			rec.outcome = "error"
		}
		if entry != nil {
			m.Seen.Forget(entry) // let the channel's retry try again
		}
		if resp == nil {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return http.StatusInternalServerError
		}
		return writeInvoke(w, resp)
	}
	if rec.outcome == "" {
		rec.outcome = "ok"
	}
	if entry != nil {
		entry.finish(resp)
	}
	return writeInvoke(w, resp)
}

// writeInvoke writes an invoke response (or 200 with no body for other activities).
func writeInvoke(w http.ResponseWriter, resp *botframework.InvokeResponse) int {
	if resp == nil {
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	if resp.Body == nil {
		w.WriteHeader(resp.Status)
		return resp.Status
	}
	data, err := json.Marshal(resp.Body)
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(data)
	return resp.Status
}

// UserHash is a short, stable pseudonym of an activity's sender for logs: it correlates a
// user's lines without writing their identity.
func UserHash(a *botframework.Activity) string {
	id := a.From.AADObjectID
	if id == "" {
		id = a.From.ID
	}
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.ToLower(a.Conversation.TenantID + "/" + id)))
	return hex.EncodeToString(sum[:8])
}
