package audit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
)

type memSink struct {
	mu   sync.Mutex
	recs []audit.Record
	err  error
}

func (m *memSink) Keep(_ context.Context, r audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return m.err
}

func TestOperationKeepsNoUserText(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1.0/me/messages", "GET /v1.0/me/messages"},
		{"GET", "/v1.0/me/drive/root/search(q='salary%20review')", "GET /v1.0/me/drive/root/search({})"},
		{"GET", "/ex/jira/0b6a1c2e-1111-2222-3333-444455556666/rest/api/3/issue/PROJ-1", "GET /ex/jira/{}/rest/api/3/issue/{}"},
		{"GET", "/wiki/api/v2/pages/1001", "GET /wiki/api/v2/pages/{}"},
		{"POST", "/rest/api/3/search/jql", "POST /rest/api/3/search/jql"},
		{"GET", "/api/me/leave", "GET /api/me/leave"},
		{"GET", "/api/users/alice%40contoso.example", "GET /api/users/{}"},
	} {
		if got := audit.Operation(c.method, c.path); got != c.want {
			t.Errorf("Operation(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// Only requests a connector marked are recorded; the record names the user, target and
// asker from the context, the outcome from the answer, and neither the token nor the query.
func TestTransportRecordsMarkedCallsWithoutSecrets(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	sink := &memSink{}
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := &audit.Recorder{Sinks: []audit.Sink{sink}, Now: func() time.Time { return clock }}
	client := audit.Wrap(srv.Client(), rec, nil)

	user := audit.User{TenantID: "11111111-1111-1111-1111-111111111111", ObjectID: "22222222-2222-2222-2222-222222222222"}
	ctx := audit.WithAsker(audit.WithUser(context.Background(), user), "command:mail")
	get := func(ctx context.Context, path string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer SECRET-TOKEN")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	get(ctx, "/unmarked") // storage, Entra, the channel: not a call for the user
	if len(sink.recs) != 0 {
		t.Fatalf("an unmarked request was recorded: %+v", sink.recs)
	}
	target := audit.Target{Connector: "graph", Audience: "https://graph.microsoft.com", Scopes: []string{"Mail.Read"}}
	get(audit.WithTarget(ctx, target), "/v1.0/me/messages?$search=%22salary%22")
	status = http.StatusForbidden
	get(audit.WithTarget(ctx, target), "/v1.0/me")
	if len(sink.recs) != 2 {
		t.Fatalf("%d records, want 2", len(sink.recs))
	}
	r := sink.recs[0]
	if r.TenantID != user.TenantID || r.ObjectID != user.ObjectID || r.Connector != "graph" || r.Operation != "GET /v1.0/me/messages" ||
		r.Audience != target.Audience || strings.Join(r.Scopes, " ") != "Mail.Read" || r.Asker != "command:mail" ||
		r.Outcome != "ok" || r.Status != 200 || !r.Time.Equal(clock) {
		t.Fatalf("record %+v", r)
	}
	if r := sink.recs[1]; r.Outcome != "refused" || r.Status != 403 {
		t.Fatalf("refusal recorded as %+v", r)
	}
	for _, r := range sink.recs {
		if s := strings.Join([]string{r.Operation, r.Audience, r.Asker, r.Outcome}, " "); strings.Contains(s, "SECRET") || strings.Contains(s, "salary") {
			t.Fatalf("record holds the token or the user's search words: %+v", r)
		}
	}
}

// A back end that does not answer is recorded as unreachable; a sink that fails does not fail
// the user's call.
func TestTransportRecordsFailuresAndSurvivesSinkErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	sink := &memSink{err: errors.New("storage down")}
	client := audit.Wrap(&http.Client{}, &audit.Recorder{Sinks: []audit.Sink{sink}}, nil)
	ctx := audit.WithTarget(context.Background(), audit.Target{Connector: "jira"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/rest/api/3/myself", nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("want the connection error")
	}
	if len(sink.recs) != 1 || sink.recs[0].Outcome != "unreachable" || sink.recs[0].Asker != "unknown" {
		t.Fatalf("records %+v", sink.recs)
	}

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, ok.URL+"/x", nil)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a failing sink failed the call: %v", err)
	}
	resp.Body.Close()
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		status int
		err    error
		want   string
	}{
		{200, nil, "ok"}, {204, nil, "ok"}, {401, nil, "refused"}, {403, nil, "refused"}, {404, nil, "not-found"},
		{429, nil, "throttled"}, {500, nil, "failed"}, {400, nil, "failed"},
		{0, context.DeadlineExceeded, "cancelled"}, {0, errors.New("dial"), "unreachable"}, {0, nil, "ok"},
	} {
		if got := audit.Outcome(c.status, c.err); got != c.want {
			t.Errorf("Outcome(%d, %v) = %s, want %s", c.status, c.err, got, c.want)
		}
	}
}
