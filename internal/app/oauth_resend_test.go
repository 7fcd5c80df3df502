package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// A question that needs a Jira link, whose connect card could not be delivered, is sent again
// by the channel (same activity id). The user gets the card, and once linked the answer comes
// once — not once per attempt.
func TestResentQuestionWaitingForALinkIsAnsweredOnce(t *testing.T) {
	e := newAtlEnv(t, 1)
	bo := newChatUser("bo")
	busy := channel.Fault{Status: http.StatusServiceUnavailable}
	e.ch.FailNext(busy, busy, busy, busy, busy)
	act := map[string]any{"type": "message", "text": "jira OPS-7", "id": "resent-question-1"}
	if st, _ := e.send(t, 0, bo, act); st < 500 {
		t.Fatalf("first attempt, the card undeliverable: HTTP %d, want a 5xx so that the channel sends it again", st)
	}
	st, recs := e.send(t, 0, bo, map[string]any{"type": "message", "text": "jira OPS-7", "id": "resent-question-1"})
	if st != http.StatusOK || !strings.Contains(dump(recs), "application/vnd.microsoft.card.signin") {
		t.Fatalf("resent question: HTTP %d, want the connect card:\n%s", st, dump(recs))
	}
	from := len(e.ch.Recorded())
	e.link(t, bo, standin.Bob, true)
	time.Sleep(500 * time.Millisecond)
	if d := dump(e.ch.Recorded()[from:]); strings.Count(d, "Disk alert on build agents") != 1 {
		t.Fatalf("want the answer once after linking, got %d:\n%s", strings.Count(d, "Disk alert on build agents"), d)
	}
}
