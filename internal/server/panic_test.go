package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/server"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

type panickingBot struct{}

func (panickingBot) OnActivity(_ context.Context, a *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error) {
	var sites []string
	_ = sites[len(a.Text)] // a command indexing past what it has, as a bare "jira site" once did
	return nil, nil, nil
}

// A command that panics gets a 500 and one log line that names the panic's type and where it
// happened, not its value (the user's words stay out of the log), and the server goes on.
func TestPanickingCommandIsA500WithALogLine(t *testing.T) {
	var logs bytes.Buffer
	logcheck.Watch(t, logs.String)
	m := &server.Messages{Auth: &countingAuth{}, Bot: panickingBot{}, Trust: &countingTrust{}, Seen: &server.Dedupe{},
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	for i, text := range []string{"secret words of the user", "again"} {
		act := map[string]any{"type": "message", "id": "act-" + string(rune('1'+i)), "serviceUrl": "https://smba.trafficmanager.net/amer/",
			"channelId": "msteams", "conversation": map[string]any{"id": "a:1"}, "from": map[string]any{"id": "29:u"}, "text": text}
		body, _ := json.Marshal(act)
		req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer x")
		w := httptest.NewRecorder()
		m.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d, want 500", i, w.Code)
		}
	}
	out := logs.String()
	if strings.Count(out, `"outcome":"panic"`) != 2 || !strings.Contains(out, "runtime.boundsError") || !strings.Contains(out, "panic_test.go") {
		t.Fatalf("log does not name the panic and where it happened:\n%s", out)
	}
	if strings.Contains(out, "secret words") || strings.Contains(out, "index out of range [24]") {
		t.Fatalf("the panic's value reached the log:\n%s", out)
	}
}
