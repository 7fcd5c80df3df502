package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/background"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// EventName is the message of every audit log line, so a query finds them all (Application
// Insights: traces | where message == "onbehalf.audit").
const EventName = "onbehalf.audit"

// LogSink writes each record as one structured log line. A Functions custom handler's output
// reaches Application Insights through the host, which stores each line as a trace
// (learn.microsoft.com azure-functions/functions-custom-handlers, "Trace logging"); the
// record's fields are the line's JSON properties.
type LogSink struct {
	Log *slog.Logger
}

var _ Sink = LogSink{}

// Keep implements Sink.
func (s LogSink) Keep(ctx context.Context, r Record) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(ctx, slog.LevelInfo, EventName,
		slog.Time("at", r.Time),
		slog.String("tenantId", r.TenantID),
		slog.String("objectId", r.ObjectID),
		slog.String("connector", r.Connector),
		slog.String("operation", r.Operation),
		slog.String("audience", r.Audience),
		slog.String("scopes", strings.Join(r.Scopes, " ")),
		slog.String("asker", r.Asker),
		slog.String("outcome", r.Outcome),
		slog.Int("status", r.Status),
		slog.Int64("durationMs", r.DurationMS),
	)
	return nil
}

// ActivityStore keeps a user's records in their own partition (tokenstore.Store).
type ActivityStore interface {
	AddActivity(ctx context.Context, u tokenstore.UserKey, at time.Time, record []byte, ttl time.Duration) error
	Activity(ctx context.Context, u tokenstore.UserKey, since time.Time, max int) ([][]byte, error)
}

var _ ActivityStore = (*tokenstore.Store)(nil)

// DefaultRetention is how long a user can see a record with the activity command.
const DefaultRetention = 7 * 24 * time.Hour

// TableSink keeps each record in the user's partition of the token store for Retention, so
// the user can list what was done through the bot as them. Records without a user are not
// kept there (they are still logged).
type TableSink struct {
	Store     ActivityStore
	Retention time.Duration
	// Pending, when set, takes the writes off the user's request: Keep returns at once and
	// the write runs in the group (wait for it before reading, and before stopping); a failed
	// write is logged to Log. Nil: Keep writes before it returns.
	Pending *background.Group
	Log     *slog.Logger
}

var _ Sink = TableSink{}

// Keep implements Sink.
func (s TableSink) Keep(ctx context.Context, r Record) error {
	if r.TenantID == "" || r.ObjectID == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ttl := s.Retention
	if ttl <= 0 {
		ttl = DefaultRetention
	}
	u := tokenstore.UserKey{TenantID: r.TenantID, ObjectID: r.ObjectID}
	if s.Pending == nil {
		if err := s.Store.AddActivity(ctx, u, r.Time, b, ttl); err != nil {
			return fmt.Errorf("audit: keep record: %w", err)
		}
		return nil
	}
	s.Pending.Go(ctx, 30*time.Second, func(ctx context.Context) {
		if err := s.Store.AddActivity(ctx, u, r.Time, b, ttl); err != nil {
			log := s.Log
			if log == nil {
				log = slog.Default()
			}
			log.Warn("audit record not kept in the user's activity", slog.String("connector", r.Connector), slog.String("user", u.String()), slog.String("error", err.Error()))
		}
	})
	return nil
}

// Recent returns u's records since since, newest first, at most max.
func Recent(ctx context.Context, s ActivityStore, u tokenstore.UserKey, since time.Time, max int) ([]Record, error) {
	raw, err := s.Activity(ctx, u, since, max)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(raw))
	for _, b := range raw {
		var r Record
		if json.Unmarshal(b, &r) != nil {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
