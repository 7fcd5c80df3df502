package assistant_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv/openai"
)

type streamEntity struct {
	Type           string `json:"type"`
	StreamID       string `json:"streamId"`
	StreamType     string `json:"streamType"`
	StreamSequence *int   `json:"streamSequence"`
}

func entityOf(t *testing.T, a *botframework.Activity) *streamEntity {
	t.Helper()
	for _, raw := range a.Entities {
		var e streamEntity
		if json.Unmarshal(raw, &e) == nil && e.Type == "streaminfo" {
			return &e
		}
	}
	return nil
}

// checkStream applies the rules of msteams-docs bots/streaming-ux.md to what the bot sent:
// the first update has streamSequence 1 and no streamId; later ones carry the first one's id
// (the Send response) and increasing sequences; each "streaming" text extends the previous
// one; updates come at most about once a second; the end is a message with streamType
// "final" and no streamSequence. It returns the streamed texts and the final text.
func checkStream(t *testing.T, s *sender) ([]string, string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acts) < 2 {
		t.Fatalf("no stream: %d activities", len(s.acts))
	}
	var streamed []string
	var lastStream time.Time
	for i, a := range s.acts {
		e := entityOf(t, a)
		if e == nil {
			t.Fatalf("activity %d has no streaminfo entity", i)
		}
		last := i == len(s.acts)-1
		switch {
		case i == 0 && (a.Type != "typing" || e.StreamID != "" || e.StreamSequence == nil || *e.StreamSequence != 1 || e.StreamType != "informative"):
			t.Fatalf("first update: %+v %+v", a, e)
		case i > 0 && e.StreamID != "r":
			t.Fatalf("update %d without the stream id: %+v", i, e)
		case last && (a.Type != "message" || e.StreamType != "final" || e.StreamSequence != nil):
			t.Fatalf("last activity is not the final message: %+v %+v", a, e)
		case !last && (a.Type != "typing" || e.StreamSequence == nil || *e.StreamSequence != i+1):
			t.Fatalf("update %d: type %s sequence %v", i, a.Type, e.StreamSequence)
		}
		if !last {
			if !lastStream.IsZero() && s.at[i].Sub(lastStream) < 900*time.Millisecond {
				t.Fatalf("two updates %s apart", s.at[i].Sub(lastStream))
			}
			lastStream = s.at[i]
		}
		if e.StreamType == "streaming" {
			if len(streamed) > 0 && !strings.HasPrefix(a.Text, streamed[len(streamed)-1]) {
				t.Fatalf("update %q does not extend %q", a.Text, streamed[len(streamed)-1])
			}
			streamed = append(streamed, a.Text)
		}
	}
	return streamed, s.acts[len(s.acts)-1].Text
}

const streamedAnswer = "PROJ-1 is In Progress and assigned to Alice, who is fixing the payment timeout this week. " +
	"See [PROJ-1](https://contoso.atlassian.net/browse/PROJ-1) and not https://evil.example/x for the details of the fix."

func TestStreamsInformativeThenChunksThenFinal(t *testing.T) {
	r := newRig(t)
	r.a.Stream, r.a.Timeout = true, 10*time.Second
	r.model.Script(openai.Turn{ToolCalls: []openai.ToolCall{call("c1", "jira_issue", `{"key":"PROJ-1"}`)}},
		openai.Turn{Content: streamedAnswer, ChunkDelay: 300 * time.Millisecond})
	r.ask(t, "alice", "personal", "status of PROJ-1?")
	streamed, final := checkStream(t, r.sender)
	if len(streamed) < 2 {
		t.Fatalf("want at least two streamed updates, got %q", streamed)
	}
	want, _ := assistant.SafeAnswer(streamedAnswer, []string{"contoso.atlassian.net"})
	if final != want {
		t.Fatalf("final %q, want %q", final, want)
	}
	for _, s := range append(streamed, final) {
		if strings.Contains(s, "evil") {
			t.Fatalf("a foreign link was streamed: %q", s)
		}
	}
	if !r.model.Requests()[1].Stream {
		t.Fatal("the answer was not requested as a stream")
	}
}

// A filtered answer that was partly streamed ends with the honest sentence as the final message.
func TestStreamedAnswerFilteredMidwayEndsHonestly(t *testing.T) {
	r := newRig(t)
	r.a.Stream = true
	r.model.Script(openai.Turn{ToolCalls: []openai.ToolCall{call("c1", "jira_issue", `{"key":"PROJ-1"}`)}},
		openai.Turn{Content: streamedAnswer, ChunkDelay: 200 * time.Millisecond, FilterAnswer: true})
	r.ask(t, "alice", "personal", "status of PROJ-1?")
	_, final := checkStream(t, r.sender)
	if !strings.Contains(final, "blocked by the content filter") {
		t.Fatalf("final %q", final)
	}
}

func TestGroupChatsGetTheFinalMessageOnly(t *testing.T) {
	r := newRig(t)
	r.a.Stream = true
	r.model.Script(openai.Turn{Content: "Ask me in a 1:1 chat."})
	r.ask(t, "alice", "groupChat", "status of PROJ-1?")
	r.sender.mu.Lock()
	defer r.sender.mu.Unlock()
	for _, a := range r.sender.acts {
		if entityOf(t, a) != nil {
			t.Fatalf("streamed in a group chat: %+v", a)
		}
	}
}
