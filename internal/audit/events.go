package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/onbehalf/onbehalf/internal/background"
)

// DefaultMonitorScope is the scope of the Microsoft Entra token for Application Insights
// ingestion in the public cloud (token audience https://monitor.azure.com, learn.microsoft.com
// azure-monitor/app/azure-ad-authentication "Token audience"; the Azure SDKs' spelling).
const DefaultMonitorScope = "https://monitor.azure.com//.default"

// EventSink sends each record to Application Insights as a custom event named EventName, so
// that it lands in customEvents with the record's fields as customDimensions. A custom
// handler cannot do this through the Functions host: the host turns everything the handler
// writes into traces (learn.microsoft.com azure-functions/functions-custom-handlers), so the
// sink posts to the component's ingestion endpoint itself ("{IngestionEndpoint}/v2.1/track",
// the endpoint that takes Microsoft Entra tokens), as the managed identity, which needs the
// Monitoring Metrics Publisher role on the component.
//
// Keep never blocks and never fails: records are queued and sent in batches in the
// background (MaxBatch records, or after Delay). A batch that cannot be delivered (no token,
// refused, the endpoint down after one retry) is dropped with a warning naming how many records
// it held — each of them is also in the log (LogSink), which is the fallback. Flush sends what
// is queued and waits; call it before stopping.
type EventSink struct {
	// Endpoint is the connection string's IngestionEndpoint; IKey its InstrumentationKey.
	Endpoint, IKey string
	// Credential gets the token for Scope (DefaultMonitorScope when empty).
	Credential azcore.TokenCredential
	Scope      string
	HTTPClient *http.Client
	Log        *slog.Logger
	// MaxBatch (default 100), Delay (default 2s) and MaxQueue (default 10,000 records waiting;
	// more are not sent) bound the batching.
	MaxBatch int
	Delay    time.Duration
	MaxQueue int

	mu      sync.Mutex
	queue   []Record
	timer   *time.Timer
	sending background.Group
	dropped int
}

var _ Sink = (*EventSink)(nil)

// Keep implements Sink: it queues r and returns at once.
func (s *EventSink) Keep(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.maxQueue() {
		s.dropped++ // still in the log
		return nil
	}
	s.queue = append(s.queue, r)
	switch {
	case len(s.queue) >= s.maxBatch():
		s.startLocked()
	case s.timer == nil:
		s.timer = time.AfterFunc(s.delay(), func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.timer = nil
			s.startLocked()
		})
	}
	return nil
}

// Flush sends every queued record and waits for the sends in flight, or until ctx ends; it
// reports whether everything was handled.
func (s *EventSink) Flush(ctx context.Context) bool {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	for len(s.queue) > 0 {
		s.startLocked()
	}
	s.mu.Unlock()
	return s.sending.Wait(ctx)
}

// startLocked takes up to MaxBatch queued records and sends them in the background.
func (s *EventSink) startLocked() {
	if len(s.queue) == 0 {
		return
	}
	n := min(len(s.queue), s.maxBatch())
	batch := append([]Record(nil), s.queue[:n]...)
	s.queue = s.queue[n:]
	dropped := s.dropped
	s.dropped = 0
	s.sending.Go(context.Background(), 30*time.Second, func(ctx context.Context) {
		if dropped > 0 {
			s.log().Warn("audit events not sent: queue full; the records are in the log", slog.Int("records", dropped))
		}
		if err := s.send(ctx, batch); err != nil {
			s.log().Warn("audit events not delivered to Application Insights; the records are in the log",
				slog.Int("records", len(batch)), slog.String("error", err.Error()))
		}
	})
}

// send posts batch, retrying once what the service says may be retried.
func (s *EventSink) send(ctx context.Context, batch []Record) error {
	for attempt := 0; ; attempt++ {
		retry, err := s.post(ctx, batch)
		if err == nil {
			return nil
		}
		if len(retry) == 0 || attempt == 1 {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		batch = retry
	}
}

// trackResult is the ingestion endpoint's answer.
type trackResult struct {
	Received int `json:"itemsReceived"`
	Accepted int `json:"itemsAccepted"`
	Errors   []struct {
		Index      int    `json:"index"`
		StatusCode int    `json:"statusCode"`
		Message    string `json:"message"`
	} `json:"errors"`
}

func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, 439, http.StatusInternalServerError, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// post sends batch once; on failure it returns the records worth sending again.
func (s *EventSink) post(ctx context.Context, batch []Record) ([]Record, error) {
	scope := s.Scope
	if scope == "" {
		scope = DefaultMonitorScope
	}
	tok, err := s.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return nil, fmt.Errorf("audit: token for Application Insights: %w", err)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // one envelope per line
	for _, r := range batch {
		if err := enc.Encode(s.envelope(r)); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.Endpoint, "/")+"/v2.1/track", &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-json-stream")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	hc := s.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return batch, fmt.Errorf("audit: send events: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var res trackResult
	_ = json.Unmarshal(raw, &res)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil, nil
	case resp.StatusCode == http.StatusPartialContent:
		var again []Record
		for _, e := range res.Errors {
			if retryable(e.StatusCode) && e.Index >= 0 && e.Index < len(batch) {
				again = append(again, batch[e.Index])
			}
		}
		return again, fmt.Errorf("audit: %d of %d events accepted", res.Accepted, len(batch))
	case retryable(resp.StatusCode):
		return batch, fmt.Errorf("audit: send events: status %d", resp.StatusCode)
	default:
		msg := ""
		if len(res.Errors) > 0 {
			msg = ": " + res.Errors[0].Message
		}
		return nil, fmt.Errorf("audit: events refused: status %d%s", resp.StatusCode, msg)
	}
}

// envelope is r as an Application Insights custom event (microsoft/ApplicationInsights-Go
// appinsights/contracts: Envelope, EventData).
func (s *EventSink) envelope(r Record) map[string]any {
	props := map[string]string{
		"tenantId": r.TenantID, "objectId": r.ObjectID, "connector": r.Connector, "operation": r.Operation,
		"audience": r.Audience, "scopes": strings.Join(r.Scopes, " "), "asker": r.Asker, "outcome": r.Outcome,
		"status": strconv.Itoa(r.Status),
	}
	return map[string]any{
		"name": "Microsoft.ApplicationInsights.Event",
		"time": r.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		"iKey": s.IKey,
		"tags": map[string]string{"ai.cloud.role": "onbehalf"},
		"data": map[string]any{
			"baseType": "EventData",
			"baseData": map[string]any{
				"ver": 2, "name": EventName, "properties": props,
				"measurements": map[string]float64{"durationMs": float64(r.DurationMS)},
			},
		},
	}
}

func (s *EventSink) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *EventSink) maxBatch() int {
	if s.MaxBatch > 0 {
		return s.MaxBatch
	}
	return 100
}

func (s *EventSink) maxQueue() int {
	if s.MaxQueue > 0 {
		return s.MaxQueue
	}
	return 10_000
}

func (s *EventSink) delay() time.Duration {
	if s.Delay > 0 {
		return s.Delay
	}
	return 2 * time.Second
}
