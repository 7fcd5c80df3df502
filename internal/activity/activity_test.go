package activity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/activity"
	"github.com/onbehalf/onbehalf/internal/audit"
)

// Each call is one line with its service, operation, who asked and the outcome; a tool name
// is shown in a code span (literal text), never as markup; a long history says that more exists.
func TestRenderListsCallsAsText(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	got := string(activity.Render([]audit.Record{
		{Time: at, Connector: "graph", Operation: "GET /v1.0/me", Asker: "command:whoami", Outcome: "ok", Status: 200},
		{Time: at, Connector: "contoso", Operation: "POST /api/me/leave", Asker: "assistant:<b>book</b>", Outcome: "denied"},
	}))
	for _, want := range []string{"Dec 1 09:30 UTC — **graph** `GET /v1.0/me`, asked by your command `whoami`: ok, HTTP 200",
		"**contoso** `POST /api/me/leave`, asked by the assistant (tool", ": denied"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Count(got, "<b>") != 1 || !strings.Contains(got, "(tool `<b>book</b>`)") {
		t.Errorf("a tool name reached the reply outside a code span:\n%s", got)
	}
	if got := activity.Render(nil); !strings.Contains(string(got), "no calls") {
		t.Errorf("empty: %s", got)
	}
	many := make([]audit.Record, activity.Shown+1)
	if got := activity.Render(many); strings.Count(string(got), "\n- ") != activity.Shown || !strings.Contains(string(got), "and more") {
		t.Errorf("long history:\n%s", got)
	}
}
