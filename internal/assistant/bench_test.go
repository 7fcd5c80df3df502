package assistant_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/onbehalf/onbehalf/internal/assistant"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
)

// instantModel answers at once: a tool call to jira_issue, then a text with links.
type instantModel struct{}

func (instantModel) Complete(_ context.Context, msgs []assistant.Message, tools []assistant.Spec) (assistant.Message, error) {
	if len(tools) > 0 {
		return assistant.Message{Role: "assistant", ToolCalls: []assistant.Call{{ID: "c1", Name: "jira_issue", Arguments: `{"key":"PROJ-1"}`}}}, nil
	}
	return assistant.Message{Role: "assistant", Content: "PROJ-1 is In Progress: [PROJ-1](https://contoso.atlassian.net/browse/PROJ-1), not [this](https://evil.example/x)."}, nil
}

// BenchmarkAssistantOverheadPerTurn is the assistant's own work in a tool-using turn — tool
// schemas, argument validation, result framing and trimming, answer sanitizing, routing —
// with the model and the back end answering instantly, so neither's time is included.
func BenchmarkAssistantOverheadPerTurn(b *testing.B) {
	a := &assistant.Assistant{Model: instantModel{}, Tools: assistant.AtlassianTools(&reader{}), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s := &sender{}
	bt := bot.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	bt.Fallback = a.Answer
	act := &botframework.Activity{Type: botframework.TypeMessage, ID: "x", Text: "what's the status of PROJ-1?",
		From: botframework.ChannelAccount{ID: "29:alice", AADObjectID: "alice"}, Conversation: botframework.ConversationAccount{ID: "c", ConversationType: "personal"}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := bt.OnActivity(ctx, act); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := s.messages(); got[len(got)-1].Text != "PROJ-1 is In Progress: [PROJ-1](https://contoso.atlassian.net/browse/PROJ-1), not this." {
		b.Fatalf("answer %q", got[len(got)-1].Text)
	}
}
