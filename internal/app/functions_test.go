package app_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
)

// The deployed function definitions and host.json agree with what the handler serves and
// expects: the queue trigger's binding, queue and encoding, the last-delivery count the
// worker tells the user at, and a timer on a six-field NCRONTAB schedule.
func TestFunctionDefinitionsMatchTheHandler(t *testing.T) {
	fw, err := funchost.LoadFunction("../../functions", "work")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := fw.Trigger()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Type != "queueTrigger" || tr.Name != "job" || tr.QueueName != config.WorkQueueName || tr.Connection != "AzureWebJobsStorage" {
		t.Fatalf("functions/work trigger = %+v", tr)
	}
	qs, err := funchost.LoadQueueSettings("../../host.json")
	if err != nil {
		t.Fatal(err)
	}
	// work.Worker's default MaxDequeueCount and work.Queue's base64 messages.
	if qs.MaxDequeueCount != 5 || qs.MessageEncoding != "base64" || qs.BatchSize < 1 || qs.BatchSize > 32 {
		t.Fatalf("host.json extensions.queues = %+v", qs)
	}
	fp, err := funchost.LoadFunction("../../functions", "purge")
	if err != nil {
		t.Fatal(err)
	}
	pt, err := fp.Trigger()
	if err != nil {
		t.Fatal(err)
	}
	if pt.Type != "timerTrigger" || pt.Name != "timer" || len(strings.Fields(pt.Schedule)) != 6 {
		t.Fatalf("functions/purge trigger = %+v (NCRONTAB has six fields, seconds first)", pt)
	}

	// Every non-HTTP function is served at /{name} and answers the custom-handler payload.
	az, azq := azurite.Start(t), azurite.StartService(t, azurite.Queue)
	h := newHarness(t, map[string]string{
		"TOKENSTORE_CONNECTION_STRING": az.ConnectionString(), "TOKENSTORE_DEV_KEY": devKey(),
		"WORK_QUEUE_CONNECTION_STRING": azq.QueueConnectionString(),
	})
	host := &funchost.Host{HandlerURL: h.srv.URL}
	dirs, _ := os.ReadDir("../../functions")
	for _, d := range dirs {
		f, err := funchost.LoadFunction("../../functions", d.Name())
		if err != nil {
			t.Fatal(err)
		}
		tr, err := f.Trigger()
		if err != nil {
			t.Fatal(err)
		}
		var resp *funchost.InvokeResponse
		switch tr.Type {
		case "httpTrigger":
			continue
		case "timerTrigger":
			resp, err = host.FireTimer(context.Background(), d.Name(), tr.Name, funchost.TimerStatus{})
		case "queueTrigger":
			item, _ := json.Marshal(`{"p":"not a job"}`)
			resp, err = host.Invoke(context.Background(), d.Name(), funchost.InvokeRequest{
				Data: map[string]json.RawMessage{tr.Name: item}, Metadata: map[string]any{"DequeueCount": 1, "Id": "m1"},
			})
		default:
			t.Fatalf("%s: no test for trigger %s", d.Name(), tr.Type)
		}
		if err != nil || len(resp.Logs) == 0 {
			t.Fatalf("/%s: %v, %+v", d.Name(), err, resp)
		}
	}
	if !strings.Contains(h.logs.String(), "purge: expired rows removed") || !strings.Contains(h.logs.String(), "dropped a queue message that names no job") {
		t.Fatalf("log:\n%s", h.logs.String())
	}
}
