// Package funchost is a stand-in for the part of the Azure Functions host that a custom
// handler meets for non-HTTP triggers: it polls a real (Azurite) Storage queue and POSTs each
// message to the handler as a custom-handler invocation, and it fires timer invocations.
//
// Every rule here is taken from public sources (rows in docs/fidelity.md):
//   - Learn "Azure Functions custom handlers" (MicrosoftDocs/azure-docs
//     articles/azure-functions/functions-custom-handlers.md, "Request payload" and "Response
//     payload"): the host POSTs to /{functionName} a JSON body {"Data": {<trigger binding
//     name>: <value>}, "Metadata": {...}}; a queue trigger's Metadata holds DequeueCount,
//     ExpirationTime, Id, InsertionTime, NextVisibleTime, PopReceipt and sys {MethodName,
//     UtcNow, RandGuid}; the handler answers {"Outputs": {}, "Logs": [], "ReturnValue": ...}.
//   - Queue trigger and host.json "queues" settings (QueuesOptions of
//     Microsoft.Azure.WebJobs.Extensions.Storage.Queues; azure-webjobs-sdk QueueProcessor.cs):
//     batchSize (default 16, 1–32); messages are taken invisible for 10 minutes while the
//     function runs; a failed invocation makes the message visible again after
//     visibilityTimeout (default 0); when a failed message's DequeueCount reached
//     maxDequeueCount (default 5) it is copied to "<queue>-poison" and deleted; a message
//     already dequeued more than maxDequeueCount times (the instance died each time) goes to
//     the poison queue without running; messageEncoding defaults to base64.
//   - A failed invocation is a non-2xx answer or a broken connection (the handler died).
//   - Timer trigger: Data.<binding> is the TimerInfo object {Schedule, ScheduleStatus {Last,
//     Next, LastUpdated}, IsPastDue} as the .NET TimerInfo serializes it; the exact JSON the
//     host hands a custom handler for a timer is not shown in the custom-handler article
//     (unverified beyond those property names).
package funchost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// InvokeRequest is the body the host POSTs to /{functionName}.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]any             `json:"Metadata"`
}

// InvokeResponse is the body the handler answers with.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Defaults of the host.json "queues" settings.
const (
	DefaultBatchSize       = 16
	DefaultMaxDequeueCount = 5
	// RunningVisibility is how long a message stays invisible while its function runs.
	RunningVisibility = 10 * time.Minute
)

// QueueFunction is one queue-triggered function.
type QueueFunction struct {
	// Name is the function's folder name; the handler is invoked at /{Name}.
	Name string
	// Binding is the trigger binding's "name" in function.json (the key in Data).
	Binding string
	// Queue is the trigger queue; Poison is "<queue>-poison" on the same account.
	Queue, Poison *azqueue.QueueClient
	// BatchSize, VisibilityTimeout and MaxDequeueCount are the host.json "queues" settings;
	// zero values mean the documented defaults (16, 0, 5).
	BatchSize         int
	VisibilityTimeout time.Duration
	MaxDequeueCount   int
	// RawMessages is host.json messageEncoding "none"; false means base64 (the default).
	RawMessages bool
}

// Host invokes a custom handler the way the Functions host does.
type Host struct {
	// HandlerURL is the handler's base URL (http://127.0.0.1:FUNCTIONS_CUSTOMHANDLER_PORT).
	HandlerURL string
	HTTPClient *http.Client
	Log        *slog.Logger
	// PollInterval is the wait after an empty poll (the host backs off up to
	// maxPollingInterval, default 1 minute; tests use a short fixed wait).
	PollInterval time.Duration
	Now          func() time.Time
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Host) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Poll runs f until ctx ends: it takes up to BatchSize messages at a time and invokes the
// handler for each of them concurrently, waiting for the batch before taking the next.
func (h *Host) Poll(ctx context.Context, f QueueFunction) {
	wait := h.PollInterval
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	for ctx.Err() == nil {
		n, err := h.PollOnce(ctx, f)
		if err != nil && ctx.Err() == nil {
			h.log().Warn("funchost: poll failed", slog.String("function", f.Name), slog.String("error", err.Error()))
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

// PollOnce takes one batch and processes it; it returns how many messages it took.
func (h *Host) PollOnce(ctx context.Context, f QueueFunction) (int, error) {
	batch := int32(f.BatchSize)
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	if batch > 32 {
		return 0, errors.New("funchost: batchSize must be 1–32")
	}
	vis := int32(RunningVisibility / time.Second)
	// A dequeue under way finishes even when polling stops meanwhile: cancelled after
	// Azurite took the messages, it would leave them invisible for RunningVisibility with
	// nobody running them. What it took once polling has stopped is released at once, as a
	// host shutting down gives back messages it has not started.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	resp, err := f.Queue.DequeueMessages(dctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &batch, VisibilityTimeout: &vis})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("funchost: dequeue: %w", err)
	}
	if ctx.Err() != nil {
		for _, m := range resp.Messages {
			h.release(context.WithoutCancel(ctx), f, m)
		}
		return len(resp.Messages), nil
	}
	var wg sync.WaitGroup
	for _, m := range resp.Messages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.process(ctx, f, m)
		}()
	}
	wg.Wait()
	return len(resp.Messages), nil
}

func maxDequeue(f QueueFunction) int64 {
	if f.MaxDequeueCount <= 0 {
		return DefaultMaxDequeueCount
	}
	return int64(f.MaxDequeueCount)
}

func (h *Host) process(ictx context.Context, f QueueFunction, m *azqueue.DequeuedMessage) {
	// Releasing, deleting and poisoning finish even when polling stops meanwhile.
	ctx := context.WithoutCancel(ictx)
	id, pop, count := deref(m.MessageID), deref(m.PopReceipt), int64(0)
	if m.DequeueCount != nil {
		count = *m.DequeueCount
	}
	if count > maxDequeue(f) {
		h.poison(ctx, f, m)
		return
	}
	text := deref(m.MessageText)
	if !f.RawMessages {
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			// The host fails such a message like any failed invocation.
			h.log().Warn("funchost: message is not base64", slog.String("id", id))
			h.fail(ctx, f, m)
			return
		}
		text = string(b)
	}
	item, _ := json.Marshal(text)
	req := InvokeRequest{
		Data: map[string]json.RawMessage{f.Binding: item},
		Metadata: map[string]any{
			"DequeueCount":    count,
			"ExpirationTime":  timeOf(m.ExpirationTime),
			"Id":              id,
			"InsertionTime":   timeOf(m.InsertionTime),
			"NextVisibleTime": timeOf(m.TimeNextVisible),
			"PopReceipt":      pop,
			"sys":             h.sys("QueueTrigger"),
		},
	}
	// An invocation under way finishes even when polling stops meanwhile, as in the host's
	// drain mode (listeners stop; running functions complete), bounded by RunningVisibility.
	run, cancel := context.WithTimeout(ctx, RunningVisibility)
	defer cancel()
	if _, err := h.Invoke(run, f.Name, req); err != nil {
		h.log().Info("funchost: invocation failed", slog.String("function", f.Name), slog.String("id", id), slog.Int64("dequeueCount", count), slog.String("error", err.Error()))
		if count >= maxDequeue(f) {
			h.poison(ctx, f, m)
			return
		}
		h.fail(ctx, f, m)
		return
	}
	if _, err := f.Queue.DeleteMessage(ctx, id, pop, nil); err != nil {
		h.log().Warn("funchost: delete failed", slog.String("id", id), slog.String("error", err.Error()))
	}
}

// fail makes the message visible again after VisibilityTimeout.
func (h *Host) fail(ctx context.Context, f QueueFunction, m *azqueue.DequeuedMessage) {
	vis := int32(f.VisibilityTimeout / time.Second)
	if _, err := f.Queue.UpdateMessage(ctx, deref(m.MessageID), deref(m.PopReceipt), deref(m.MessageText), &azqueue.UpdateMessageOptions{VisibilityTimeout: &vis}); err != nil {
		h.log().Warn("funchost: release failed", slog.String("error", err.Error()))
	}
}

// release makes a message taken but not run visible again at once.
func (h *Host) release(ctx context.Context, f QueueFunction, m *azqueue.DequeuedMessage) {
	zero := int32(0)
	if _, err := f.Queue.UpdateMessage(ctx, deref(m.MessageID), deref(m.PopReceipt), deref(m.MessageText), &azqueue.UpdateMessageOptions{VisibilityTimeout: &zero}); err != nil {
		h.log().Warn("funchost: release failed", slog.String("error", err.Error()))
	}
}

// poison copies the message to "<queue>-poison" and deletes it from the trigger queue.
func (h *Host) poison(ctx context.Context, f QueueFunction, m *azqueue.DequeuedMessage) {
	if f.Poison == nil {
		return
	}
	if _, err := f.Poison.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "QueueAlreadyExists") {
		h.log().Warn("funchost: create poison queue failed", slog.String("error", err.Error()))
	}
	if _, err := f.Poison.EnqueueMessage(ctx, deref(m.MessageText), nil); err != nil {
		h.log().Warn("funchost: poison enqueue failed", slog.String("error", err.Error()))
		return
	}
	h.log().Warn("funchost: message moved to the poison queue", slog.String("function", f.Name), slog.String("id", deref(m.MessageID)))
	_, _ = f.Queue.DeleteMessage(ctx, deref(m.MessageID), deref(m.PopReceipt), nil)
}

// TimerStatus is the schedule status of a timer invocation.
type TimerStatus struct {
	Last, Next, LastUpdated time.Time
	PastDue                 bool
}

// FireTimer invokes a timer-triggered function once.
func (h *Host) FireTimer(ctx context.Context, function, binding string, st TimerStatus) (*InvokeResponse, error) {
	info := map[string]any{
		"Schedule": map[string]any{"AdjustForDST": true},
		"ScheduleStatus": map[string]any{
			"Last": st.Last.UTC().Format(time.RFC3339Nano), "Next": st.Next.UTC().Format(time.RFC3339Nano),
			"LastUpdated": st.LastUpdated.UTC().Format(time.RFC3339Nano),
		},
		"IsPastDue": st.PastDue,
	}
	b, _ := json.Marshal(info)
	return h.Invoke(ctx, function, InvokeRequest{
		Data:     map[string]json.RawMessage{binding: b},
		Metadata: map[string]any{"sys": h.sys("TimerTrigger")},
	})
}

func (h *Host) sys(method string) map[string]any {
	var g [16]byte
	_, _ = rand.Read(g[:])
	s := hex.EncodeToString(g[:])
	return map[string]any{
		"MethodName": method,
		"UtcNow":     h.now().UTC().Format(time.RFC3339Nano),
		"RandGuid":   s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:],
	}
}

// Invoke POSTs one invocation to /{function} and decodes the answer. A non-2xx status, a
// broken connection or an answer that is not an InvokeResponse is a failed invocation.
func (h *Host) Invoke(ctx context.Context, function string, req InvokeRequest) (*InvokeResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(h.HandlerURL, "/")+"/"+function, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	c := h.HTTPClient
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("funchost: invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("funchost: invoke %s: %w", function, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("funchost: invoke %s: status %d", function, resp.StatusCode)
	}
	var out InvokeResponse
	dec := json.NewDecoder(bytes.NewReader(rb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("funchost: invoke %s: answer is not {Outputs, Logs, ReturnValue}: %w", function, err)
	}
	return &out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func timeOf(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05-07:00")
}
