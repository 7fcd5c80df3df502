package funchost_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
)

// The request example of Learn "Azure Functions custom handlers", "Request payload".
const documentedRequest = `{
  "Data": {"myQueueItem": "{ message: \"Message sent\" }"},
  "Metadata": {
    "DequeueCount": 1,
    "ExpirationTime": "2019-10-16T17:58:31+00:00",
    "Id": "800ae4b3-bdd2-4c08-badd-f08e5a34b865",
    "InsertionTime": "2019-10-09T17:58:31+00:00",
    "NextVisibleTime": "2019-10-09T18:08:32+00:00",
    "PopReceipt": "AgAAAAMAAAAAAAAAAgtnj8x+1QE=",
    "sys": {"MethodName": "QueueTrigger", "UtcNow": "2019-10-09T17:58:32.2205399Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9"}
  }
}`

// The response example of the same article, "Response payload".
const documentedResponse = `{
  "Outputs": {"res": {"body": "Message enqueued"}, "myQueueOutput": ["queue message 1", "queue message 2"]},
  "Logs": ["Log message 1", "Log message 2"],
  "ReturnValue": "{\"hello\":\"world\"}"
}`

func newQueue(t *testing.T) (*azqueue.QueueClient, *azqueue.QueueClient) {
	t.Helper()
	az := azurite.StartService(t, azurite.Queue)
	svc, err := azqueue.NewServiceClientFromConnectionString(az.QueueConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := svc.NewQueueClient("work")
	if _, err := q.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return q, svc.NewQueueClient("work-poison")
}

// shape is a JSON value's structure: object keys (recursively) and value kinds.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e)
		}
		return out
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return "?"
}

func shapeOf(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(shape(v))
	return string(out)
}

// The stand-in POSTs a queue message to /{function} in exactly the documented shape, and
// accepts the documented response shape (a success deletes the message).
func TestQueueInvocationMatchesTheDocumentedPayload(t *testing.T) {
	q, poison := newQueue(t)
	var mu sync.Mutex
	var got []byte
	var path, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, path, ctype = b, r.URL.Path, r.Header.Get("Content-Type")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, documentedResponse)
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, err := q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(`{ message: "Message sent" }`)), nil); err != nil {
		t.Fatal(err)
	}
	h := &funchost.Host{HandlerURL: srv.URL}
	f := funchost.QueueFunction{Name: "MyQueueFunction", Binding: "myQueueItem", Queue: q, Poison: poison}
	if n, err := h.PollOnce(ctx, f); err != nil || n != 1 {
		t.Fatalf("PollOnce = %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "/MyQueueFunction" || ctype != "application/json" {
		t.Fatalf("invoked %s (%s), want POST /MyQueueFunction as JSON", path, ctype)
	}
	if a, b := shapeOf(t, got), shapeOf(t, []byte(documentedRequest)); a != b {
		t.Fatalf("request shape\n got %s\nwant %s", a, b)
	}
	var req funchost.InvokeRequest
	_ = json.Unmarshal(got, &req)
	var item string
	_ = json.Unmarshal(req.Data["myQueueItem"], &item)
	if item != `{ message: "Message sent" }` {
		t.Fatalf("Data.myQueueItem = %q (base64 not decoded?)", item)
	}
	if _, err := time.Parse(time.RFC3339, req.Metadata["InsertionTime"].(string)); err != nil {
		t.Fatalf("InsertionTime: %v", err)
	}
	peek, _ := q.PeekMessages(ctx, nil)
	if len(peek.Messages) != 0 {
		t.Fatal("a successful invocation left its message in the queue")
	}
}

// A handler that fails (non-2xx) gets the message again, with a growing DequeueCount, until
// maxDequeueCount; then the message goes to "<queue>-poison".
func TestFailedInvocationsEndInThePoisonQueue(t *testing.T) {
	q, poison := newQueue(t)
	var mu sync.Mutex
	var counts []float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req funchost.InvokeRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		counts = append(counts, req.Metadata["DequeueCount"].(float64))
		mu.Unlock()
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()
	ctx := context.Background()
	if _, err := q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(`job`)), nil); err != nil {
		t.Fatal(err)
	}
	h := &funchost.Host{HandlerURL: srv.URL}
	f := funchost.QueueFunction{Name: "work", Binding: "job", Queue: q, Poison: poison, MaxDequeueCount: 3}
	for i := 0; i < 5; i++ {
		if _, err := h.PollOnce(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(counts) != 3 || counts[0] != 1 || counts[2] != 3 {
		t.Fatalf("dequeue counts seen = %v, want [1 2 3]", counts)
	}
	p, err := poison.PeekMessages(ctx, nil)
	if err != nil || len(p.Messages) != 1 {
		t.Fatalf("poison queue holds %v, %v; want the one message", p, err)
	}
	if left, _ := q.PeekMessages(ctx, nil); len(left.Messages) != 0 {
		t.Fatal("poisoned message still in the trigger queue")
	}
}

// An answer that is not {Outputs, Logs, ReturnValue} is a failed invocation, as is a handler
// that dies mid-request; the message stays for another try.
func TestMalformedAnswerOrDeadHandlerKeepsTheMessage(t *testing.T) {
	for name, hf := range map[string]http.HandlerFunc{
		"wrong shape": func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"Output":{}}`) },
		"dies": func(w http.ResponseWriter, r *http.Request) {
			c, _, _ := w.(http.Hijacker).Hijack()
			_ = c.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			q, poison := newQueue(t)
			srv := httptest.NewServer(hf)
			defer srv.Close()
			ctx := context.Background()
			_, _ = q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(`job`)), nil)
			h := &funchost.Host{HandlerURL: srv.URL}
			f := funchost.QueueFunction{Name: "work", Binding: "job", Queue: q, Poison: poison}
			if _, err := h.PollOnce(ctx, f); err != nil {
				t.Fatal(err)
			}
			if left, _ := q.PeekMessages(ctx, nil); len(left.Messages) != 1 {
				t.Fatal("the message was deleted after a failed invocation")
			}
		})
	}
}

// A timer invocation carries the TimerInfo properties under the trigger binding's name.
func TestTimerInvocationShape(t *testing.T) {
	var got funchost.InvokeRequest
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&got)
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["purged 0"],"ReturnValue":null}`)
	}))
	defer srv.Close()
	h := &funchost.Host{HandlerURL: srv.URL}
	now := time.Now()
	resp, err := h.FireTimer(context.Background(), "purge", "timer", funchost.TimerStatus{Last: now.Add(-time.Hour), Next: now.Add(time.Hour), LastUpdated: now})
	if err != nil || len(resp.Logs) != 1 {
		t.Fatalf("FireTimer = %+v, %v", resp, err)
	}
	var info map[string]any
	_ = json.Unmarshal(got.Data["timer"], &info)
	var keys []string
	for k := range info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if path != "/purge" || len(keys) != 3 || keys[0] != "IsPastDue" || keys[1] != "Schedule" || keys[2] != "ScheduleStatus" {
		t.Fatalf("timer invocation %s with %v", path, keys)
	}
}

// slowDequeue answers a dequeue (GET of the messages) only after delay, once Azurite has
// already taken the messages; every other request passes through at once.
type slowDequeue struct {
	next  http.RoundTripper
	delay time.Duration
}

func (s slowDequeue) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	if err == nil && r.Method == http.MethodGet && r.URL.Query().Has("visibilitytimeout") {
		select {
		case <-time.After(s.delay):
		case <-r.Context().Done():
			resp.Body.Close()
			return nil, r.Context().Err()
		}
	}
	return resp, err
}

// Polling stops while a dequeue is under way, after Azurite has taken the message: the host
// gives the message back at once instead of leaving it invisible for the running visibility
// timeout with nobody running it, and does not invoke the handler.
func TestStoppingDuringADequeueGivesTheMessageBack(t *testing.T) {
	az := azurite.StartService(t, azurite.Queue)
	target, _ := url.Parse(az.QueueEndpoint())
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	rp.Transport = slowDequeue{next: http.DefaultTransport, delay: 700 * time.Millisecond}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	svc, err := azqueue.NewServiceClientFromConnectionString(strings.Replace(az.QueueConnectionString(), target.Host, strings.TrimPrefix(proxy.URL, "http://"), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := svc.NewQueueClient("work")
	ctx := context.Background()
	if _, err := q.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(`job`)), nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		_, _ = io.WriteString(w, `{"Outputs":{}}`)
	}))
	defer srv.Close()
	h := &funchost.Host{HandlerURL: srv.URL}
	f := funchost.QueueFunction{Name: "work", Binding: "job", Queue: q, VisibilityTimeout: time.Minute}
	pctx, stop := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, stop)
	_, _ = h.PollOnce(pctx, f)
	left, err := q.PeekMessages(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Messages) != 1 {
		t.Fatal("the message taken while polling stopped is not visible again")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Fatalf("the handler was invoked %d times after polling stopped", calls)
	}
}

// Polling stops while the handler is running a message: the invocation completes (as in the
// host's drain mode) and the message is deleted, not released to run again.
func TestStoppingDuringAnInvocationLetsItFinish(t *testing.T) {
	q, poison := newQueue(t)
	ctx := context.Background()
	if _, err := q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(`job`)), nil); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		<-release
		_, _ = io.WriteString(w, `{"Outputs":{}}`)
	}))
	defer srv.Close()
	h := &funchost.Host{HandlerURL: srv.URL, PollInterval: 20 * time.Millisecond}
	f := funchost.QueueFunction{Name: "work", Binding: "job", Queue: q, Poison: poison}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { h.Poll(pctx, f); close(done) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was never invoked")
	}
	stop()
	time.Sleep(100 * time.Millisecond)
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("polling did not stop")
	}
	props, err := q.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := props.ApproximateMessagesCount; n == nil || *n != 0 {
		left := int32(-1)
		if n != nil {
			left = *n
		}
		t.Fatalf("%d messages left after the invocation completed; want it deleted", left)
	}
}
