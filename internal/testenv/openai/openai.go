// Package openai is an Azure OpenAI chat-completions stand-in for tests (never imported by
// production code): a real HTTPS server that tests script turn by turn — a text answer, tool
// calls, a 429 with Retry-After, a content-filter refusal of the prompt or of the answer, or a
// stall — and that records every request so tests can assert what the model was shown.
//
// Sources:
//   - Azure OpenAI data-plane REST reference (learn.microsoft.com/azure/ai-foundry/openai/reference,
//     MicrosoftDocs/azure-ai-docs): POST {endpoint}/openai/deployments/{deployment}/chat/completions
//     ?api-version=…, the api-version query parameter is required on that route; the v1 API is
//     POST {endpoint}/openai/v1/chat/completions with the deployment as "model".
//   - Keyless authentication (learn.microsoft.com/azure/ai-services/authentication,
//     dotnet/docs ai/how-to/app-service-aoai-auth.md): "Authorization: Bearer" with a Microsoft
//     Entra token for the scope https://cognitiveservices.azure.com/.default (also the default
//     scope of openai-go's azure.WithTokenCredential). Azure also accepts an "api-key" header; this
//     stand-in refuses it, because onbehalf must never use a key (project rule, not Azure's).
//   - OpenAI chat-completions reference (platform.openai.com/docs/api-reference/chat): tool
//     calls {id, type:"function", function:{name, arguments}}, finish_reason "tool_calls";
//     a "tool" message must answer a tool_call_id of the preceding assistant message, and every
//     tool call must be answered before the next request (HTTP 400 invalid_request_error
//     otherwise); streaming answers are server-sent events "data: {chunk}" ending with
//     "data: [DONE]", chunks of object "chat.completion.chunk" with delta fields.
//   - Azure content filtering (learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter):
//     a filtered prompt → HTTP 400, error.code "content_filter", innererror.code
//     "ResponsibleAIPolicyViolation"; a filtered completion → HTTP 200 with
//     finish_reason "content_filter" (streaming: the last chunk carries it).
//   - Azure OpenAI quotas (learn.microsoft.com/azure/ai-foundry/openai/quotas-limits): a
//     throttled request → HTTP 429 with a Retry-After header (seconds).
//
// docs/fidelity.md (section 20) lists each rule with its source and status.
package openai

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Scope is the Entra scope whose token the stand-in accepts (Cognitive Services audience).
const Scope = "https://cognitiveservices.azure.com/.default"

// ToolCall is a function call the scripted model makes.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text, sent verbatim (a test may send invalid JSON on purpose)
}

// Turn is one scripted model answer. Exactly one kind applies: Throttle (429), FilterPrompt
// (400 content_filter), FilterAnswer (200, finish_reason content_filter), else a reply with
// Content and/or ToolCalls. Stall delays the answer (for timeout tests).
type Turn struct {
	Content      string
	ToolCalls    []ToolCall
	Throttle     time.Duration // >0: answer 429 with Retry-After in whole seconds
	FilterPrompt bool
	FilterAnswer bool
	Stall        time.Duration
	// ChunkDelay spaces streamed content chunks (a model producing tokens over time).
	ChunkDelay time.Duration
}

// Request is what a client sent, for assertions.
type Request struct {
	Path       string
	APIVersion string
	Model      string
	Stream     bool
	Messages   []Message
	Tools      []json.RawMessage
	Header     http.Header
}

// Message is a chat message as sent by the client.
type Message struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls,omitempty"`
}

// Text is the message content as plain text (string content, or the text parts joined).
func (m Message) Text() string {
	switch c := m.Content.(type) {
	case string:
		return c
	case []any:
		var sb strings.Builder
		for _, p := range c {
			if mp, ok := p.(map[string]any); ok {
				if s, ok := mp["text"].(string); ok {
					sb.WriteString(s)
				}
			}
		}
		return sb.String()
	}
	return ""
}

// Server is the stand-in.
type Server struct {
	// URL is the resource endpoint (https://127.0.0.1:port), the value of AZURE_OPENAI_ENDPOINT.
	URL string
	// Client trusts the server's certificate.
	Client *http.Client

	// Verify, when set, replaces the fixed-token check: it returns 0 to accept the bearer
	// token, or the HTTP status to refuse it with (401 for a bad token, 403 for an identity
	// without the data-plane role, which Azure answers with PermissionDenied).
	Verify func(token string) (int, error)

	// Responder, when set, answers every request that finds no scripted turn left (the
	// sandbox's rule-based model); without it such a request fails with HTTP 500.
	Responder func(Request) Turn

	srv        *httptest.Server
	token      string
	deployment string
	versions   map[string]bool

	mu       sync.Mutex
	script   []Turn
	requests []Request
	seq      int
}

// New starts a server with one deployment, accepting the given api-versions on the
// deployments route, and the bearer token tok (the token a test credential issues for Scope).
func New(deployment, tok string, apiVersions ...string) *Server {
	s := &Server{token: tok, deployment: deployment, versions: map[string]bool{}}
	logcheck.Issue("Azure OpenAI access token", tok)
	for _, v := range apiVersions {
		s.versions[v] = true
	}
	ca := testenv.SharedCA()
	s.srv = ca.NewServer(http.HandlerFunc(s.serve))
	s.URL, s.Client = s.srv.URL, ca.Client()
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Token is the bearer token the server accepts.
func (s *Server) Token() string { return s.token }

// Script appends turns the model will answer with, one per request, in order. A request with
// no scripted turn left fails the test's expectations with HTTP 500.
func (s *Server) Script(turns ...Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, turns...)
}

// Requests returns the requests received so far (authenticated and well-formed ones only).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Remaining is the number of scripted turns not yet used.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script)
}

func apiError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("api-key") != "" {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "401", "api-key authentication is not accepted by this stand-in")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.Verify != nil && ok {
		if status, err := s.Verify(bearer); status != 0 {
			code := "401"
			if status == http.StatusForbidden {
				code = "PermissionDenied"
			}
			apiError(w, status, "invalid_request_error", code, "token refused: "+err.Error())
			return
		}
	} else if !ok || bearer != s.token {
		apiError(w, http.StatusUnauthorized, "invalid_request_error", "401",
			"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.")
		return
	}
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "405", "method not allowed")
		return
	}
	version := r.URL.Query().Get("api-version")
	var model string
	switch {
	case r.URL.Path == "/openai/deployments/"+s.deployment+"/chat/completions":
		if version == "" {
			apiError(w, http.StatusNotFound, "invalid_request_error", "404", "Resource not found")
			return
		}
		if !s.versions[version] {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "BadRequest", "API version not supported")
			return
		}
		model = s.deployment
	case r.URL.Path == "/openai/v1/chat/completions":
		model = "" // taken from the body below
	case strings.HasPrefix(r.URL.Path, "/openai/deployments/"):
		apiError(w, http.StatusNotFound, "invalid_request_error", "DeploymentNotFound",
			"The API deployment for this resource does not exist.")
		return
	default:
		apiError(w, http.StatusNotFound, "invalid_request_error", "404", "Resource not found")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "unreadable body")
		return
	}
	var req struct {
		Model    string            `json:"model"`
		Messages []Message         `json:"messages"`
		Tools    []json.RawMessage `json:"tools"`
		Stream   bool              `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	if model == "" {
		if req.Model != s.deployment {
			apiError(w, http.StatusNotFound, "invalid_request_error", "DeploymentNotFound", "The API deployment for this resource does not exist.")
			return
		}
		model = req.Model
	}
	if msg := validMessages(req.Messages); msg != "" {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", msg)
		return
	}
	for _, t := range req.Tools {
		if msg := validTool(t); msg != "" {
			apiError(w, http.StatusBadRequest, "invalid_request_error", "", msg)
			return
		}
	}

	rec := Request{Path: r.URL.Path, APIVersion: version, Model: model, Stream: req.Stream,
		Messages: req.Messages, Tools: req.Tools, Header: r.Header.Clone()}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	var turn Turn
	switch {
	case len(s.script) > 0:
		turn = s.script[0]
		s.script = s.script[1:]
	case s.Responder != nil:
		turn = s.Responder(rec)
	default:
		s.mu.Unlock()
		apiError(w, http.StatusInternalServerError, "server_error", "", "stand-in: no scripted turn left")
		return
	}
	s.seq++
	id := fmt.Sprintf("chatcmpl-%d", s.seq)
	s.mu.Unlock()

	if turn.Stall > 0 {
		select {
		case <-time.After(turn.Stall):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case turn.Throttle > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int((turn.Throttle+time.Second-1)/time.Second)))
		apiError(w, http.StatusTooManyRequests, "", "429",
			"Requests to the ChatCompletions_Create Operation have exceeded the token rate limit of your current tier.")
		return
	case turn.FilterPrompt:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
			"type":    nil, "param": "prompt", "code": "content_filter", "status": 400,
			"innererror": map[string]any{"code": "ResponsibleAIPolicyViolation", "content_filter_result": map[string]any{
				"jailbreak": map[string]any{"filtered": true, "detected": true},
			}},
		}})
		return
	}
	if req.Stream {
		s.stream(w, id, model, turn)
		return
	}
	msg := map[string]any{"role": "assistant", "content": nil}
	finish := "stop"
	switch {
	case turn.FilterAnswer:
		finish = "content_filter"
	case len(turn.ToolCalls) > 0:
		msg["tool_calls"] = toolCallsJSON(turn.ToolCalls, false)
		finish = "tool_calls"
		if turn.Content != "" {
			msg["content"] = turn.Content
		}
	default:
		msg["content"] = turn.Content
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
	})
}

func toolCallsJSON(calls []ToolCall, indexed bool) []any {
	out := make([]any, len(calls))
	for i, c := range calls {
		tc := map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Arguments}}
		if indexed {
			tc["index"] = i
		}
		out[i] = tc
	}
	return out
}

// stream answers as server-sent events: the role, the content in pieces of a few words, the
// tool calls, and a final chunk with finish_reason, then [DONE].
func (s *Server) stream(w http.ResponseWriter, id, model string, turn Turn) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil)
	for _, piece := range chunks(turn.Content, 3) {
		if turn.ChunkDelay > 0 {
			time.Sleep(turn.ChunkDelay)
		}
		send(map[string]any{"content": piece}, nil)
	}
	finish := "stop"
	if len(turn.ToolCalls) > 0 {
		send(map[string]any{"tool_calls": toolCallsJSON(turn.ToolCalls, true)}, nil)
		finish = "tool_calls"
	}
	if turn.FilterAnswer {
		finish = "content_filter"
	}
	send(map[string]any{}, finish)
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

// chunks splits s into pieces of n words (keeping the spaces), as a model streams tokens.
func chunks(s string, n int) []string {
	if s == "" {
		return nil
	}
	var out []string
	words := strings.SplitAfter(s, " ")
	for i := 0; i < len(words); i += n {
		out = append(out, strings.Join(words[i:min(i+n, len(words))], ""))
	}
	return out
}

// validMessages applies the chat API's ordering rules for tool messages.
func validMessages(msgs []Message) string {
	if len(msgs) == 0 {
		return "'messages' must contain at least one message."
	}
	pending := map[string]bool{}
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer", "user":
			if len(pending) > 0 {
				return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'."
			}
		case "assistant":
			if len(pending) > 0 {
				return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'."
			}
			for _, tc := range m.ToolCalls {
				if tc.ID == "" || tc.Type != "function" || tc.Function.Name == "" {
					return fmt.Sprintf("messages[%d].tool_calls: id, type 'function' and function.name are required.", i)
				}
				pending[tc.ID] = true
			}
		case "tool":
			if !pending[m.ToolCallID] {
				return fmt.Sprintf("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls' (messages[%d]).", i)
			}
			delete(pending, m.ToolCallID)
		default:
			return fmt.Sprintf("messages[%d].role: unknown role %q.", i, m.Role)
		}
	}
	if len(pending) > 0 {
		return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'."
	}
	return ""
}

// validTool checks a tool definition: type "function", a name of [a-zA-Z0-9_-]{1,64}, and a
// JSON Schema object for parameters.
func validTool(raw json.RawMessage) string {
	var t struct {
		Type     string `json:"type"`
		Function struct {
			Name       string         `json:"name"`
			Parameters map[string]any `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &t); err != nil || t.Type != "function" {
		return "tools: each tool must be of type 'function'."
	}
	n := t.Function.Name
	if n == "" || len(n) > 64 || strings.IndexFunc(n, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return fmt.Sprintf("Invalid 'tools.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' (%q).", n)
	}
	if t.Function.Parameters != nil && t.Function.Parameters["type"] != "object" {
		return fmt.Sprintf("Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"'.", n)
	}
	return ""
}
