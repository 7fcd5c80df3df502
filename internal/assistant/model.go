package assistant

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is one chat message in the model's conversation.
type Message struct {
	// Role is "system", "user", "assistant" or "tool".
	Role    string
	Content string
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []Call
	// ToolCallID names the call a tool message answers.
	ToolCallID string
}

// Call is a function call the model asks for.
type Call struct {
	ID   string
	Name string
	// Arguments is the JSON text the model produced; validated before any use.
	Arguments string
}

// Model answers a conversation, optionally calling tools. Implementations must be safe for
// concurrent use and return the typed errors below for throttling and content filtering.
type Model interface {
	// Complete returns the model's next message. With no tools, the model cannot call any.
	Complete(ctx context.Context, msgs []Message, tools []Spec) (Message, error)
}

// ErrFiltered means the service's content filter refused the prompt or the answer.
var ErrFiltered = errors.New("assistant: refused by the content filter")

// ErrUnavailable means the model could not be reached or failed.
var ErrUnavailable = errors.New("assistant: model unavailable")

// ThrottledError is the model service's 429; RetryAfter is its Retry-After (0 when absent).
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("assistant: model throttled (retry after %s)", e.RetryAfter)
}
