// Package work moves slow work off the channel's request: a job is recorded, sealed, in the
// token store under an idempotency key and named by a Storage queue message; the Functions
// host hands the message to the queue-triggered function "work", whose handler (Worker) claims
// the job, shows the user the typing indicator, does the work and replies proactively to the
// conversation the job came from. Timer-triggered housekeeping (Purge) lives here too.
//
// Exactly once, as the user sees it: a message delivered again after a finished job is
// skipped; one delivered again after a worker died mid-job waits for that worker's lease to
// lapse and runs the job again, so the only window for a repeated answer is a worker dying
// between sending its reply and marking the job done. When the last allowed delivery
// (maxDequeueCount in host.json) fails too, the user is told and the operator gets an error
// line, instead of the message silently ending in the poison queue.
//
// Delayed, as the user sees it: when a delivery fails and the host will deliver the message
// again, the user is told once that the answer is delayed and will come, unless the job had
// already answered them. The notice must not need Table Storage (its outage is a common cause),
// so each queue message carries, beside the job's ref, the conversation to answer sealed for
// that ref (a JobNote). A delivery again that finds the job still held for long by an earlier
// worker (one that stopped mid-job) tells the user too. "Once" is best effort: a failed
// delivery tells the user only if no worker ran the job before it (the row's claim count is 1)
// or, when the row cannot be read, if this instance has not told them about this job yet; so a
// user hears it at most once per instance, and once in the common case of one outage.
package work

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/recent"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Job is what a worker needs: the kind of work, whose it is, where to answer, and the
// kind's own input. It is stored sealed; the queue message holds only its JobRef.
type Job struct {
	Kind string                             `json:"k"`
	User tokenstore.UserKey                 `json:"u"`
	Ref  botframework.ConversationReference `json:"r"`
	Data json.RawMessage                    `json:"d,omitempty"`
}

// Store holds job rows (implemented by *tokenstore.Store).
type Store interface {
	CreateJob(ctx context.Context, u tokenstore.UserKey, key string, payload []byte, ttl time.Duration) (tokenstore.JobRef, bool, error)
	ClaimJob(ctx context.Context, ref tokenstore.JobRef, owner string, lease time.Duration) (tokenstore.JobClaim, []byte, time.Time, error)
	FinishJob(ctx context.Context, c tokenstore.JobClaim) error
}

var _ Store = (*tokenstore.Store)(nil)

// Notes seals and opens the conversation a queue message carries for the delay notice
// (implemented by *tokenstore.Store; needs only the sealing key, not Table Storage).
type Notes interface {
	SealJobNote(ctx context.Context, ref tokenstore.JobRef, payload []byte) (tokenstore.JobNote, error)
	OpenJobNote(ctx context.Context, ref tokenstore.JobRef, n tokenstore.JobNote) ([]byte, error)
}

var _ Notes = (*tokenstore.Store)(nil)

// message is a queue message's content: the job's ref and, when Notes was set, the sealed
// conversation reference to tell the user of a delay through.
type message struct {
	tokenstore.JobRef
	Note *tokenstore.JobNote `json:"n,omitempty"`
}

// Messages is the part of a Storage queue client the enqueuer uses.
type Messages interface {
	EnqueueMessage(ctx context.Context, content string, o *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error)
}

var _ Messages = (*azqueue.QueueClient)(nil)

// DefaultJobTTL is how long a job row (and so its idempotency record) lives.
const DefaultJobTTL = 24 * time.Hour

// Queue enqueues jobs.
type Queue struct {
	Store    Store
	Messages Messages
	// Notes, when set, seals the job's conversation into its message so a worker can tell
	// the user of a delay while the job's row cannot be read. Nil: no notice then.
	Notes Notes
	// TTL of job rows; zero means DefaultJobTTL.
	TTL time.Duration
}

// Enqueue records j under key (an activity id and a step, say) and queues a message naming
// it. Enqueuing the same key again queues another message for the same job, which the worker
// skips once the job is done, so a caller unsure whether an earlier Enqueue got through may
// simply repeat it.
func (q *Queue) Enqueue(ctx context.Context, key string, j Job) error {
	if j.Kind == "" || j.Ref.Conversation.ID == "" {
		return errors.New("work: a job needs a kind and a conversation")
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("work: encode job: %w", err)
	}
	ttl := q.TTL
	if ttl <= 0 {
		ttl = DefaultJobTTL
	}
	ref, _, err := q.Store.CreateJob(ctx, j.User, key, b, ttl)
	if err != nil {
		return fmt.Errorf("work: record job: %w", err)
	}
	m := message{JobRef: ref}
	if q.Notes != nil {
		// Best effort: without a note the job still runs; only the delay notice is lost.
		if rb, err := json.Marshal(j.Ref); err == nil {
			if n, err := q.Notes.SealJobNote(ctx, ref, rb); err == nil {
				m.Note = &n
			}
		}
	}
	msg, _ := json.Marshal(m)
	// The queue trigger's default messageEncoding is base64 (host.json extensions.queues).
	if _, err := q.Messages.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString(msg), nil); err != nil {
		return fmt.Errorf("work: enqueue: %w", err)
	}
	return nil
}

// Runner does one kind of job. Its errors are retried (the message is delivered again).
type Runner func(ctx context.Context, j Job) error

// Sender talks to the user's conversation (implemented by *botframework.Connector).
type Sender interface {
	Send(ctx context.Context, ref botframework.ConversationReference, act *botframework.Activity) (string, error)
	Typing(ctx context.Context, ref botframework.ConversationReference) error
	Trust(serviceURL string)
}

var _ Sender = (*botframework.Connector)(nil)

// Worker serves the queue-triggered function: POST /work with the custom-handler payload
// {"Data": {"job": "<message>"}, "Metadata": {"DequeueCount": n, "Id": ...}}.
type Worker struct {
	Store  Store
	Sender Sender
	Log    *slog.Logger
	// Notes opens the conversation a message carries, to tell the user of a delay when the
	// job's row cannot be read. Nil: the notice is sent only when the row was read.
	Notes Notes
	// Instance distinguishes this process's leases from other instances'.
	Instance string
	// Lease bounds one run of a job; a worker that dies holds the job this long. Zero: 2 min.
	Lease time.Duration
	// MaxDequeueCount is host.json's extensions.queues.maxDequeueCount (zero: 5, the
	// documented default): the delivery that reaches it is the last.
	MaxDequeueCount int
	// Binding is the trigger binding's name in functions/work/function.json (zero: "job").
	Binding string
	// Now is the clock leases are measured with (the token store's); nil is time.Now.
	Now func() time.Time

	runners map[string]Runner
	told    recent.Set // jobs whose users this instance told of a delay
}

// Handle registers the runner of a job kind.
func (w *Worker) Handle(kind string, r Runner) {
	if w.runners == nil {
		w.runners = map[string]Runner{}
	}
	w.runners[kind] = r
}

// invokeRequest and invokeResponse are the custom-handler payloads (Learn "Azure Functions
// custom handlers", "Request payload", "Response payload").
type invokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

type invokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// maxInvocationBytes bounds an invocation body; a job message is a few hundred bytes.
const maxInvocationBytes = 64 << 10

func readInvocation(w http.ResponseWriter, r *http.Request) (*invokeRequest, int, string) {
	if r.Method != http.MethodPost {
		return nil, http.StatusMethodNotAllowed, "method " + r.Method
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, http.StatusUnsupportedMediaType, "content type is not application/json"
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInvocationBytes))
	if err != nil {
		return nil, http.StatusRequestEntityTooLarge, "body unreadable or too large"
	}
	var req invokeRequest
	if err := json.Unmarshal(b, &req); err != nil || req.Data == nil {
		return nil, http.StatusBadRequest, "not a custom-handler invocation"
	}
	return &req, 0, ""
}

func answer(w http.ResponseWriter, status int, logs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(invokeResponse{Outputs: map[string]any{}, Logs: logs})
}

func (w *Worker) lease() time.Duration {
	if w.Lease <= 0 {
		return 2 * time.Minute
	}
	return w.Lease
}

func (w *Worker) maxDequeue() int64 {
	if w.MaxDequeueCount <= 0 {
		return 5
	}
	return int64(w.MaxDequeueCount)
}

// ServeHTTP runs the job a queue message names. 200 means the message is done with (the job
// finished, was skipped, or was given up on and the user told); 500 asks the host to deliver
// it again after the visibility timeout.
func (w *Worker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	req, status, reason := readInvocation(rw, r)
	if req == nil {
		w.Log.Warn("work: invocation refused", slog.Int("status", status), slog.String("reason", reason))
		http.Error(rw, http.StatusText(status), status)
		return
	}
	binding := w.Binding
	if binding == "" {
		binding = "job"
	}
	var msgID string
	var count int64
	_ = json.Unmarshal(req.Metadata["Id"], &msgID)
	_ = json.Unmarshal(req.Metadata["DequeueCount"], &count)
	var item string
	var m message
	if err := json.Unmarshal(req.Data[binding], &item); err != nil || json.Unmarshal([]byte(item), &m) != nil || m.Validate() != nil {
		// Delivering it again cannot make it readable: drop it, loudly.
		w.Log.Error("work: dropped a queue message that names no job", slog.String("message", msgID))
		answer(rw, http.StatusOK, "dropped: not a job reference")
		return
	}
	status, line := w.run(r.Context(), m, msgID, count)
	answer(rw, status, line)
}

func (w *Worker) run(ctx context.Context, m message, msgID string, count int64) (int, string) {
	ref := m.JobRef
	owner := w.Instance + "/" + msgID
	log := w.Log.With(slog.String("message", msgID), slog.Int64("dequeueCount", count))
	var (
		claim   tokenstore.JobClaim
		payload []byte
	)
	for {
		c, p, until, err := w.Store.ClaimJob(ctx, ref, owner, w.lease())
		switch {
		case err == nil:
			claim, payload = c, p
		case errors.Is(err, tokenstore.ErrJobDone):
			log.Info("work: job already done; delivery skipped")
			return http.StatusOK, "skipped: done"
		case errors.Is(err, tokenstore.ErrNotFound):
			log.Warn("work: job expired or unknown; delivery dropped")
			return http.StatusOK, "skipped: no such job"
		case errors.Is(err, tokenstore.ErrJobBusy):
			// Another worker holds it (or held it and died): wait for its lease to lapse,
			// looking again every second.
			now := time.Now
			if w.Now != nil {
				now = w.Now
			}
			// A delivery again finding the job held for long means an earlier worker stopped
			// mid-job (or its clock runs ahead): the user hears that the answer is delayed.
			if count > 1 && until.Sub(now()) > busyNotice {
				w.tellDelayed(ctx, log, m, nil)
			}
			wait := until.Sub(now()) + 100*time.Millisecond
			if wait <= 0 || wait > time.Second {
				wait = time.Second
			}
			select {
			case <-ctx.Done():
				return http.StatusInternalServerError, "busy"
			case <-time.After(wait):
			}
			continue
		default:
			log.Error("work: claiming the job failed", slog.String("error", err.Error()))
			if count < w.maxDequeue() {
				w.tellDelayed(ctx, log, m, nil)
			}
			return http.StatusInternalServerError, "claim failed"
		}
		break
	}
	var j Job
	if err := json.Unmarshal(payload, &j); err != nil {
		log.Error("work: job row unreadable; dropped")
		_ = w.finish(ctx, claim)
		return http.StatusOK, "dropped: unreadable job"
	}
	log = log.With(slog.String("kind", j.Kind), slog.String("user", j.User.String()), slog.Int("attempt", claim.Attempt))
	// The conversation reference arrived in an authenticated activity and comes back sealed
	// (AES-GCM bound to this row), so its serviceUrl is as trustworthy as when it was stored.
	w.Sender.Trust(j.Ref.ServiceURL)
	runner := w.runners[j.Kind]
	if runner == nil {
		log.Error("work: no runner for this kind of job; dropped")
		_ = w.finish(ctx, claim)
		return http.StatusOK, "dropped: unknown kind"
	}
	if err := w.Sender.Typing(ctx, j.Ref); err != nil {
		log.Debug("work: typing indicator failed", slog.String("error", err.Error()))
	}
	jctx, cancel := context.WithTimeout(ctx, w.lease())
	jctx, sent := botframework.CountDeliveries(jctx)
	start := time.Now()
	err := runner(jctx, j)
	cancel()
	if err != nil {
		if count < w.maxDequeue() {
			log.Warn("work: job failed; it will be delivered again", slog.String("error", err.Error()))
			// Told only by the first worker to run the job, and only if it said nothing yet.
			if claim.Attempt == 1 && sent.Load() == 0 {
				w.tellDelayed(ctx, log, m, &j.Ref)
			}
			return http.StatusInternalServerError, "failed; retrying"
		}
		log.Error("work: job failed on its last delivery; the user was told", slog.String("error", err.Error()))
		_, serr := w.Sender.Send(ctx, j.Ref, &botframework.Activity{Type: botframework.TypeMessage,
			Text: "Sorry — I could not finish your earlier request after several tries. Please ask again in a few minutes."})
		if serr != nil {
			log.Error("work: telling the user failed", slog.String("error", serr.Error()))
		}
		if ferr := w.finish(ctx, claim); ferr != nil {
			log.Warn("work: marking the job done failed", slog.String("error", ferr.Error()))
		}
		return http.StatusOK, "given up"
	}
	if err := w.finish(ctx, claim); err != nil {
		// The user has the answer; a re-delivery would repeat it only if the lease lapsed.
		log.Warn("work: marking the job done failed", slog.String("error", err.Error()))
	}
	log.Info("work: job done", slog.Float64("run_ms", float64(time.Since(start).Microseconds())/1000))
	return http.StatusOK, "done"
}

// finish records the job done even when the invocation was abandoned meanwhile (the host
// stopped, or its connection broke): by then the user may have the answer, and a delivery
// again must not repeat it.
func (w *Worker) finish(ctx context.Context, claim tokenstore.JobClaim) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	return w.Store.FinishJob(ctx, claim)
}

// finishTimeout bounds recording a job done once its invocation was abandoned.
const finishTimeout = 10 * time.Second

// busyNotice is how long a re-delivered job may still be held by another worker's lease
// before its user is told the answer is delayed.
const busyNotice = 5 * time.Second

// DelayedText is what a user is told when their request's job failed and will be tried again.
const DelayedText = "Your answer is delayed: a service I rely on is not responding right now. " +
	"I will answer here when it is back, so there is no need to ask again."

// tellDelayed tells the user of job m that the answer is delayed, once per job on this
// instance: through to when the row was read, through m's sealed note otherwise.
func (w *Worker) tellDelayed(ctx context.Context, log *slog.Logger, m message, to *botframework.ConversationReference) {
	if !w.told.Add(m.Partition + "/" + m.Row) {
		return
	}
	if to == nil {
		if m.Note == nil || w.Notes == nil {
			log.Info("work: the user could not be told of the delay: the message carries no note")
			return
		}
		b, err := w.Notes.OpenJobNote(ctx, m.JobRef, *m.Note)
		var ref botframework.ConversationReference
		if err == nil {
			err = json.Unmarshal(b, &ref)
		}
		if err != nil || ref.Conversation.ID == "" {
			log.Warn("work: the message's note does not open; the user was not told of the delay")
			return
		}
		// The note was sealed by this app beside this job's ref, from an authenticated
		// activity's reference, so its serviceUrl is as trustworthy as the row's.
		w.Sender.Trust(ref.ServiceURL)
		to = &ref
	}
	if _, err := w.Sender.Send(ctx, *to, &botframework.Activity{Type: botframework.TypeMessage, Text: DelayedText}); err != nil {
		w.told.Remove(m.Partition + "/" + m.Row)
		log.Warn("work: telling the user of the delay failed", slog.String("error", err.Error()))
		return
	}
	log.Info("work: the user was told the answer is delayed")
}

// Purger removes expired rows (implemented by *tokenstore.Store).
type Purger interface {
	PurgeExpired(ctx context.Context) (int, error)
}

var _ Purger = (*tokenstore.Store)(nil)

// Purge serves the timer-triggered function: POST /purge. It removes the token store's
// expired rows and reports how many, in the log and in the invocation's Logs.
type Purge struct {
	Store Purger
	Log   *slog.Logger
	// After runs once the purge is done (the connections' lapse warnings); nil: nothing. Its
	// failure is logged and reported, and does not undo the purge.
	After func(ctx context.Context, now time.Time) (int, error)
	// Now is the clock for After. Nil: time.Now.
	Now func() time.Time
}

// ServeHTTP runs one purge.
func (p *Purge) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if req, status, reason := readInvocation(rw, r); req == nil {
		p.Log.Warn("purge: invocation refused", slog.Int("status", status), slog.String("reason", reason))
		http.Error(rw, http.StatusText(status), status)
		return
	}
	n, err := p.Store.PurgeExpired(r.Context())
	if err != nil {
		p.Log.Error("purge: failed", slog.Int("removed", n), slog.String("error", err.Error()))
		answer(rw, http.StatusInternalServerError, fmt.Sprintf("purge failed after removing %d expired rows", n))
		return
	}
	p.Log.Info("purge: expired rows removed", slog.Int("removed", n))
	msg := fmt.Sprintf("removed %d expired rows", n)
	if p.After != nil {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		sent, err := p.After(r.Context(), now())
		if err != nil {
			p.Log.Warn("purge: lapse warnings incomplete", slog.Int("sent", sent), slog.String("error", err.Error()))
			msg += fmt.Sprintf("; %d lapse warnings sent, some failed", sent)
		} else {
			msg += fmt.Sprintf("; %d lapse warnings sent", sent)
		}
	}
	answer(rw, http.StatusOK, msg)
}
