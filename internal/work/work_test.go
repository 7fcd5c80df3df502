package work_test

import (
	"context"
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

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
	"github.com/onbehalf/onbehalf/internal/work"
)

var ref = tokenstore.JobRef{Partition: strings.Repeat("a", 64), Row: "job|" + strings.Repeat("b", 64)}

type fakeStore struct {
	mu       sync.Mutex
	payload  []byte
	claims   int
	finished int
	busy     int // claims answered busy first
}

func (f *fakeStore) CreateJob(context.Context, tokenstore.UserKey, string, []byte, time.Duration) (tokenstore.JobRef, bool, error) {
	return ref, true, nil
}

func (f *fakeStore) ClaimJob(context.Context, tokenstore.JobRef, string, time.Duration) (tokenstore.JobClaim, []byte, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if f.busy > 0 {
		f.busy--
		return tokenstore.JobClaim{}, nil, time.Now().Add(50 * time.Millisecond), tokenstore.ErrJobBusy
	}
	if f.finished > 0 {
		return tokenstore.JobClaim{}, nil, time.Time{}, tokenstore.ErrJobDone
	}
	return tokenstore.JobClaim{Ref: ref, Attempt: 1}, f.payload, time.Time{}, nil
}

func (f *fakeStore) FinishJob(context.Context, tokenstore.JobClaim) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished++
	return nil
}

type fakeSender struct {
	mu     sync.Mutex
	sent   []string
	typing int
	trust  []string
}

func (s *fakeSender) Send(_ context.Context, _ botframework.ConversationReference, act *botframework.Activity) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, act.Text)
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

// A failure before the last delivery asks for another (500) and tells the user nothing; the
// last failure tells the user once and ends the job.
func TestFailuresRetryThenTellTheUser(t *testing.T) {
	w, st, snd := newWorker(t, func(context.Context, work.Job) error { return errors.New("down") })
	if rec := invoke(w, http.MethodPost, "application/json", message(4, refItem())); rec.Code != http.StatusInternalServerError || len(snd.sent) != 0 || st.finished != 0 {
		t.Fatalf("4th delivery: %d, sent %v, finished %d", rec.Code, snd.sent, st.finished)
	}
	if rec := invoke(w, http.MethodPost, "application/json", message(5, refItem())); rec.Code != http.StatusOK || len(snd.sent) != 1 || st.finished != 1 {
		t.Fatalf("last delivery: %d, sent %v, finished %d", rec.Code, snd.sent, st.finished)
	}
	if !strings.Contains(snd.sent[0], "could not finish your earlier request") {
		t.Fatalf("told %q", snd.sent[0])
	}
}
