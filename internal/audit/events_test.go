package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/appinsights"
	"github.com/onbehalf/onbehalf/internal/testenv/azuretoken"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

const ikey = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

// fakeEntra issues opaque tokens: "tok|<audience>|<oid>" stands for a token of identity oid for
// audience, and the stand-in's verifier accepts exactly that.
func verify(tok, aud string) (map[string]any, error) {
	f := strings.Split(tok, "|")
	if len(f) != 3 || f[0] != "tok" || f[1] != aud {
		return nil, errors.New("invalid token")
	}
	return map[string]any{"oid": f[2]}, nil
}

func newSink(ai *appinsights.Server, tokens map[string]string) (*audit.EventSink, *logcheck.Buffer) {
	logs := &logcheck.Buffer{}
	return &audit.EventSink{
		Endpoint: ai.URL + "/", IKey: ikey, Credential: azuretoken.New(tokens),
		HTTPClient: testenv.SharedCA().Client(), Log: slog.New(slog.NewJSONHandler(logs, nil)),
		MaxBatch: 100, Delay: time.Hour,
	}, logs
}

func record(i int) audit.Record {
	return audit.Record{Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		TenantID: "tid", ObjectID: fmt.Sprintf("oid-%d", i), Connector: "jira", Operation: "GET /ex/jira/{}/rest/api/3/issue/{}",
		Audience: "api.atlassian.com", Scopes: []string{"read:jira-work"}, Asker: "command:jira", Outcome: "ok", Status: 200, DurationMS: 12}
}

// 250 records reach Application Insights as 250 custom events in three batches, with every
// field of the record, sent with the managed identity's token for the Monitor audience.
func TestAuditRecordsBecomeCustomEvents(t *testing.T) {
	ai := appinsights.Start(ikey, verify, "uami")
	defer ai.Close()
	sink, logs := newSink(ai, map[string]string{appinsights.Scope: "tok|https://monitor.azure.com/|uami"})
	start := time.Now()
	for i := range 250 {
		if err := sink.Keep(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Keep took %v for 250 records: it must not wait for the network", d)
	}
	if !sink.Flush(context.Background()) {
		t.Fatal("flush did not finish")
	}
	evs := ai.Events()
	if len(evs) != 250 || ai.Batches() != 3 || ai.Refused() != 0 {
		t.Fatalf("%d events in %d batches (%d refused); log:\n%s", len(evs), ai.Batches(), ai.Refused(), logs)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		p := e.Properties
		if e.Name != audit.EventName || p["tenantId"] != "tid" || p["connector"] != "jira" || p["scopes"] != "read:jira-work" ||
			p["asker"] != "command:jira" || p["outcome"] != "ok" || p["status"] != "200" || p["audience"] != "api.atlassian.com" ||
			e.Measurements["durationMs"] != 12 || e.Publisher != "uami" {
			t.Fatalf("event: %+v", e)
		}
		seen[p["objectId"]] = true
	}
	if len(seen) != 250 {
		t.Fatalf("%d distinct records among 250 events", len(seen))
	}
}

// The endpoint failing once (503) is retried; refused credentials (wrong audience, an
// identity without Monitoring Metrics Publisher) and an endpoint that is gone lose the events
// with one warning per batch that names no token — the records stay in the log.
func TestAuditEventFailures(t *testing.T) {
	ai := appinsights.Start(ikey, verify, "uami")
	defer ai.Close()
	good := map[string]string{appinsights.Scope: "tok|https://monitor.azure.com/|uami"}

	sink, logs := newSink(ai, good)
	ai.FailNext(http.StatusServiceUnavailable)
	_ = sink.Keep(context.Background(), record(1))
	sink.Flush(context.Background())
	if len(ai.Events()) != 1 || strings.Contains(logs.String(), "not delivered") {
		t.Fatalf("a 503 was not retried: %d events; log:\n%s", len(ai.Events()), logs)
	}

	for name, tokens := range map[string]map[string]string{
		"token for another audience": {"https://management.azure.com//.default": "tok|https://management.azure.com/|uami"},
		"identity without the role":  {appinsights.Scope: "tok|https://monitor.azure.com/|someone-else"},
	} {
		before := len(ai.Events())
		sink, logs := newSink(ai, tokens)
		_ = sink.Keep(context.Background(), record(2))
		sink.Flush(context.Background())
		if len(ai.Events()) != before || !strings.Contains(logs.String(), "not delivered to Application Insights") ||
			!strings.Contains(logs.String(), `"records":1`) || strings.Contains(logs.String(), "tok|") {
			t.Errorf("%s: events %d→%d; log:\n%s", name, before, len(ai.Events()), logs)
		}
	}

	gone := appinsights.Start(ikey, verify, "uami")
	gone.Close()
	sink, logs = newSink(gone, good)
	start := time.Now()
	_ = sink.Keep(context.Background(), record(3))
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("Keep waited for an unreachable endpoint")
	}
	sink.Flush(context.Background())
	if !strings.Contains(logs.String(), "not delivered") {
		t.Fatalf("unreachable endpoint not reported:\n%s", logs)
	}
}

// Records wait at most Delay before they are sent, without a flush.
func TestAuditEventsLeaveAfterTheDelay(t *testing.T) {
	ai := appinsights.Start(ikey, verify, "uami")
	defer ai.Close()
	sink, _ := newSink(ai, map[string]string{appinsights.Scope: "tok|https://monitor.azure.com/|uami"})
	sink.Delay = 50 * time.Millisecond
	_ = sink.Keep(context.Background(), record(1))
	for deadline := time.Now().Add(5 * time.Second); len(ai.Events()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if len(ai.Events()) != 1 {
		t.Fatal("a record was not sent after the delay")
	}
}

// BenchmarkEventSinkKeep is what one record costs the request that made it.
func BenchmarkEventSinkKeep(b *testing.B) {
	ai := appinsights.Start(ikey, verify, "uami")
	defer ai.Close()
	sink, _ := newSink(ai, map[string]string{appinsights.Scope: "tok|https://monitor.azure.com/|uami"})
	sink.MaxQueue = b.N + 1
	r := record(1)
	b.ResetTimer()
	for range b.N {
		_ = sink.Keep(context.Background(), r)
	}
	b.StopTimer()
	sink.Flush(context.Background())
}
