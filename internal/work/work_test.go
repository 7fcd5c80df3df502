package work_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
	"github.com/onbehalf/onbehalf/internal/work"
)

var ref = tokenstore.JobRef{Partition: strings.Repeat("a", 64), Row: "job|" + strings.Repeat("b", 64)}

type fakeStore struct {
	mu       sync.Mutex
	payload  []byte
	claims   int
	claimed  int // successful claims: the next one's Attempt
	finished int
	busy     int           // claims answered busy first
	busyFor  time.Duration // how long a busy claim's lease still runs (zero: 50 ms)
	down     error         // when set, every claim fails with it (Table Storage unreachable)
}

func (f *fakeStore) CreateJob(context.Context, tokenstore.UserKey, string, []byte, time.Duration) (tokenstore.JobRef, bool, error) {
	return ref, true, nil
}

func (f *fakeStore) ClaimJob(context.Context, tokenstore.JobRef, string, time.Duration) (tokenstore.JobClaim, []byte, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if f.down != nil {
		return tokenstore.JobClaim{}, nil, time.Time{}, f.down
	}
	if f.busy > 0 {
		f.busy--
		d := f.busyFor
		if d == 0 {
			d = 50 * time.Millisecond
		}
		return tokenstore.JobClaim{}, nil, time.Now().Add(d), tokenstore.ErrJobBusy
	}
	if f.finished > 0 {
		return tokenstore.JobClaim{}, nil, time.Time{}, tokenstore.ErrJobDone
	}
	f.claimed++
	return tokenstore.JobClaim{Ref: ref, Attempt: f.claimed}, f.payload, time.Time{}, nil
}

func (f *fakeStore) FinishJob(ctx context.Context, _ tokenstore.JobClaim) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err // as Table Storage's client does with a context already ended
	}
	f.finished++
	return nil
}

type fakeSender struct {
	mu     sync.Mutex
	sent   []string
	to     []string // conversation of each sent message
	typing int
	trust  []string
}

func (s *fakeSender) Send(_ context.Context, r botframework.ConversationReference, act *botframework.Activity) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, act.Text)
	s.to = append(s.to, r.Conversation.ID)
	return "1", nil
}

func (s *fakeSender) Typing(context.Context, botframework.ConversationReference) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typing++
	return nil
}

func (s *fakeSender) Trust(u string) { s.trust = append(s.trust, u) }

func newWorker(t *testing.T, run work.Runner) (*work.Worker, *fakeStore, *fakeSender) {
	t.Helper()
	job, _ := json.Marshal(work.Job{Kind: "k", Ref: botframework.ConversationReference{ServiceURL: "https://smba.example/amer/", Conversation: botframework.ConversationAccount{ID: "c1"}}})
	st, snd := &fakeStore{payload: job}, &fakeSender{}
	w := &work.Worker{Store: st, Sender: snd, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Instance: "i1"}
	w.Handle("k", run)
	return w, st, snd
}

func invoke(w http.Handler, method, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/work", strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, r)
	return rec
}

func message(count int, item string) string {
	b, _ := json.Marshal(map[string]any{
		"Data":     map[string]any{"job": item},
		"Metadata": map[string]any{"DequeueCount": count, "Id": "m1"},
	})
	return string(b)
}

func refItem() string { b, _ := json.Marshal(ref); return string(b) }

// Requests that are not custom-handler invocations are refused and nothing is claimed.
func TestBadInvocationsChangeNothing(t *testing.T) {
	w, st, _ := newWorker(t, func(context.Context, work.Job) error { return nil })
	for _, tc := range []struct {
		method, ctype, body string
		status              int
	}{
		{http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "text/plain", message(1, refItem()), http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/json", "{not json", http.StatusBadRequest},
		{http.MethodPost, "application/json", `{"Metadata":{}}`, http.StatusBadRequest},
		{http.MethodPost, "application/json", strings.Repeat(" ", 70<<10) + "{}", http.StatusRequestEntityTooLarge},
	} {
		if rec := invoke(w, tc.method, tc.ctype, tc.body); rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.ctype, rec.Code, tc.status)
		}
	}
	// A message that names no job row is dropped (another delivery cannot fix it).
	for _, item := range []string{`hello`, `{"p":"x","r":"y"}`, `{"p":"` + ref.Partition + `","r":"convref"}`} {
		if rec := invoke(w, http.MethodPost, "application/json", message(1, item)); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "dropped") {
			t.Errorf("item %q: %d %s", item, rec.Code, rec.Body)
		}
	}
	if st.claims != 0 {
		t.Fatalf("%d claims for bad invocations", st.claims)
	}
}

// A job runs once, with the typing indicator first and the answer shape the host expects; a
// second delivery of a finished job is skipped; a busy job is waited for.
func TestJobRunsOnceAndRedeliveryIsSkipped(t *testing.T) {
	runs := 0
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { runs++; return nil })
	st.busy = 1
	rec := invoke(w, http.MethodPost, "application/json; charset=utf-8", message(1, refItem()))
	var resp struct {
		Outputs     map[string]any
		Logs        []string
		ReturnValue any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusOK || resp.Outputs == nil || len(resp.Logs) != 1 {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if runs != 1 || st.finished != 1 || snd.typing != 1 || st.claims != 2 {
		t.Fatalf("runs %d, finished %d, typing %d, claims %d", runs, st.finished, snd.typing, st.claims)
	}
	if len(snd.trust) != 1 || snd.trust[0] != "https://smba.example/amer/" {
		t.Fatalf("trusted %v", snd.trust)
	}
	if rec := invoke(w, http.MethodPost, "application/json", message(2, refItem())); rec.Code != http.StatusOK || runs != 1 {
		t.Fatalf("redelivery: %d, runs %d", rec.Code, runs)
	}
}

// A failure before the last delivery asks for another (500); the first tells the user, once,
// that the answer is delayed; the last failure tells the user it gave up and ends the job.
func TestFailuresRetryThenTellTheUser(t *testing.T) {
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { return errors.New("down") })
	for n := 1; n <= 4; n++ {
		if rec := invoke(w, http.MethodPost, "application/json", message(n, refItem())); rec.Code != http.StatusInternalServerError || len(snd.sent) != 1 || st.finished != 0 {
			t.Fatalf("delivery %d: %d, sent %v, finished %d", n, rec.Code, snd.sent, st.finished)
		}
	}
	if snd.sent[0] != work.DelayedText {
		t.Fatalf("first failure told %q, want the delay notice", snd.sent[0])
	}
	if rec := invoke(w, http.MethodPost, "application/json", message(5, refItem())); rec.Code != http.StatusOK || len(snd.sent) != 2 || st.finished != 1 {
		t.Fatalf("last delivery: %d, sent %v, finished %d", rec.Code, snd.sent, st.finished)
	}
	if !strings.Contains(snd.sent[1], "could not finish your earlier request") {
		t.Fatalf("told %q", snd.sent[1])
	}
}

// A job that failed after it had already answered its user (say while recording itself done
// elsewhere) is retried without a delay notice: the user has heard back.
func TestFailureAfterAnAnswerSendsNoNotice(t *testing.T) {
	// The runner's answer is counted as the Connector counts a delivered message.
	w, _, snd := newWorker(t, func(ctx context.Context, _ work.Job) error {
		botframework.NoteDelivered(ctx)
		return errors.New("down after answering")
	})
	if rec := invoke(w, http.MethodPost, "application/json", message(1, refItem())); rec.Code != http.StatusInternalServerError || len(snd.sent) != 0 {
		t.Fatalf("first delivery: %d, sent %v", rec.Code, snd.sent)
	}
}

// notes seals nothing: it marks the payload and checks the ref, standing in for the sealing
// key (tokenstore's own tests cover the sealing).
type notes struct{}

func (notes) SealJobNote(_ context.Context, r tokenstore.JobRef, p []byte) (tokenstore.JobNote, error) {
	return tokenstore.JobNote{Version: r.Row, Data: p}, nil
}

func (notes) OpenJobNote(_ context.Context, r tokenstore.JobRef, n tokenstore.JobNote) ([]byte, error) {
	if n.Version != r.Row {
		return nil, tokenstore.ErrTampered
	}
	return n.Data, nil
}

type queueMessages struct{ got []string }

func (q *queueMessages) EnqueueMessage(_ context.Context, content string, _ *azqueue.EnqueueMessageOptions) (azqueue.EnqueueMessagesResponse, error) {
	b, err := base64.StdEncoding.DecodeString(content)
	q.got = append(q.got, string(b))
	return azqueue.EnqueueMessagesResponse{}, err
}

// While Table Storage is down the job's row cannot be read, yet the user is told at once,
// through the conversation sealed into the message, that the answer is delayed — once, however
// often the host delivers it in the outage; when storage is back the job runs and answers.
func TestStorageDownTellsTheUserThroughTheMessage(t *testing.T) {
	runs := 0
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { runs++; return nil })
	w.Notes = notes{}
	msgs := &queueMessages{}
	q := &work.Queue{Store: st, Messages: msgs, Notes: notes{}}
	conv := botframework.ConversationReference{ServiceURL: "https://smba.example/emea/", Conversation: botframework.ConversationAccount{ID: "c7"}}
	if err := q.Enqueue(context.Background(), "a1|turn", work.Job{Kind: "k", Ref: conv}); err != nil || len(msgs.got) != 1 {
		t.Fatalf("Enqueue: %v, %d messages", err, len(msgs.got))
	}
	st.down = tokenstore.ErrUnavailable
	for n := 1; n <= 2; n++ {
		if rec := invoke(w, http.MethodPost, "application/json", message(n, msgs.got[0])); rec.Code != http.StatusInternalServerError {
			t.Fatalf("delivery %d while storage is down: %d, want 500 (deliver again)", n, rec.Code)
		}
	}
	if len(snd.sent) != 1 || snd.sent[0] != work.DelayedText || snd.to[0] != "c7" {
		t.Fatalf("while storage is down the user got %v in %v, want one delay notice in c7", snd.sent, snd.to)
	}
	if len(snd.trust) != 1 || snd.trust[0] != conv.ServiceURL {
		t.Fatalf("trusted %v", snd.trust)
	}
	st.down = nil
	if rec := invoke(w, http.MethodPost, "application/json", message(3, msgs.got[0])); rec.Code != http.StatusOK || runs != 1 || st.finished != 1 {
		t.Fatalf("after the outage: %d, runs %d, finished %d", rec.Code, runs, st.finished)
	}
	if len(snd.sent) != 1 {
		t.Fatalf("after the outage the user got another notice: %v", snd.sent)
	}
}

// A message whose note does not open for its ref (altered, or copied from another job) sends
// nothing while storage is down: a forged note cannot steer the bot at another conversation.
func TestForgedNoteSendsNothing(t *testing.T) {
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { return nil })
	w.Notes = notes{}
	st.down = tokenstore.ErrUnavailable
	forged, _ := json.Marshal(map[string]any{"p": ref.Partition, "r": ref.Row,
		"n": tokenstore.JobNote{Version: "job|" + strings.Repeat("c", 64), Data: []byte(`{"serviceUrl":"https://evil.example/","conversation":{"id":"x"}}`)}})
	if rec := invoke(w, http.MethodPost, "application/json", message(1, string(forged))); rec.Code != http.StatusInternalServerError || len(snd.sent) != 0 || len(snd.trust) != 0 {
		t.Fatalf("forged note: %d, sent %v, trusted %v", rec.Code, snd.sent, snd.trust)
	}
}

// A job that fails on one instance and again on another tells its user once: the second
// worker reads from the job's row that a worker ran it before.
func TestSecondInstanceDoesNotRepeatTheNotice(t *testing.T) {
	fail := func(context.Context, work.Job) error { return errors.New("down") }
	a, st, snd := newWorker(t, fail)
	b := &work.Worker{Store: st, Sender: snd, Log: a.Log, Instance: "i2"}
	b.Handle("k", fail)
	for i, w := range []*work.Worker{a, b} {
		if rec := invoke(w, http.MethodPost, "application/json", message(i+1, refItem())); rec.Code != http.StatusInternalServerError {
			t.Fatalf("delivery %d: %d", i+1, rec.Code)
		}
	}
	if len(snd.sent) != 1 || snd.sent[0] != work.DelayedText {
		t.Fatalf("the user got %v, want one delay notice", snd.sent)
	}
}

// A delivery again that finds the job held by a worker that stopped mid-job (its lease runs
// for long yet) tells the user, once, that the answer is delayed, then runs the job when the
// lease lapses. A first delivery finding it busy tells nothing.
func TestRedeliveryHeldByAStoppedWorkerTellsTheUser(t *testing.T) {
	runs := 0
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { runs++; return nil })
	w.Notes = notes{}
	msgs := &queueMessages{}
	conv := botframework.ConversationReference{ServiceURL: "https://smba.example/emea/", Conversation: botframework.ConversationAccount{ID: "c9"}}
	if err := (&work.Queue{Store: st, Messages: msgs, Notes: notes{}}).Enqueue(context.Background(), "a9|turn", work.Job{Kind: "k", Ref: conv}); err != nil {
		t.Fatal(err)
	}
	st.busy, st.busyFor = 1, 6*time.Second
	start := time.Now()
	if rec := invoke(w, http.MethodPost, "application/json", message(2, msgs.got[0])); rec.Code != http.StatusOK || runs != 1 {
		t.Fatalf("redelivery: %d, runs %d", rec.Code, runs)
	}
	if len(snd.sent) != 1 || snd.sent[0] != work.DelayedText || snd.to[0] != "c9" {
		t.Fatalf("the user got %v in %v, want one delay notice in c9", snd.sent, snd.to)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the job waited %s: the lease lapse was not looked for every second", took)
	}
	w2, st2, snd2 := newWorker(t, func(context.Context, work.Job) error { return nil })
	w2.Notes = notes{}
	st2.busy, st2.busyFor = 1, 6*time.Second
	if rec := invoke(w2, http.MethodPost, "application/json", message(1, msgs.got[0])); rec.Code != http.StatusOK || len(snd2.sent) != 0 {
		t.Fatalf("first delivery finding the job busy: %d, sent %v", rec.Code, snd2.sent)
	}
}

// The host gives up on the invocation (it stops, or its connection to the handler breaks)
// after the job answered the user: the job is still recorded as done, so a delivery again
// does not answer twice.
func TestJobIsRecordedDoneWhenTheInvocationIsAbandonedAfterAnswering(t *testing.T) {
	ctx, abandon := context.WithCancel(context.Background())
	runs := 0
	w, st, _ := newWorker(t, func(context.Context, work.Job) error { runs++; abandon(); return nil })
	r := httptest.NewRequest(http.MethodPost, "/work", strings.NewReader(message(1, refItem()))).WithContext(ctx)
	r.Header.Set("Content-Type", "application/json")
	w.ServeHTTP(httptest.NewRecorder(), r)
	if st.finished != 1 {
		t.Fatalf("the answered job was not recorded done (finished %d)", st.finished)
	}
	if rec := invoke(w, http.MethodPost, "application/json", message(2, refItem())); rec.Code != http.StatusOK || runs != 1 {
		t.Fatalf("delivered again: %d, runs %d", rec.Code, runs)
	}
}
