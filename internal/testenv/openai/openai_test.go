package openai_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"

	"github.com/onbehalf/onbehalf/internal/testenv/azuretoken"
	"github.com/onbehalf/onbehalf/internal/testenv/openai"
)

const version = "2024-10-21"

func client(s *openai.Server, scope string) oai.Client {
	cred := azuretoken.New(map[string]string{scope: s.Token()})
	return oai.NewClient(azure.WithEndpoint(s.URL, version), azure.WithTokenCredential(cred),
		option.WithHTTPClient(s.Client), option.WithMaxRetries(0))
}

func params(msgs ...oai.ChatCompletionMessageParamUnion) oai.ChatCompletionNewParams {
	return oai.ChatCompletionNewParams{Model: "chat", Messages: msgs}
}

func TestAnswersScriptedTurnsThroughTheAzureSDK(t *testing.T) {
	s := openai.New("chat", "tok-cs", version)
	defer s.Close()
	s.Script(openai.Turn{ToolCalls: []openai.ToolCall{{ID: "c1", Name: "jira_issue", Arguments: `{"key":"PROJ-1"}`}}},
		openai.Turn{Content: "PROJ-1 is In Progress."})
	c := client(s, openai.Scope)
	ctx := context.Background()
	first, err := c.Chat.Completions.New(ctx, params(oai.UserMessage("status of PROJ-1?")))
	if err != nil {
		t.Fatal(err)
	}
	if first.Choices[0].FinishReason != "tool_calls" || first.Choices[0].Message.ToolCalls[0].Function.Name != "jira_issue" {
		t.Fatalf("first turn: %+v", first.Choices[0])
	}
	second, err := c.Chat.Completions.New(ctx, params(oai.UserMessage("status of PROJ-1?"), first.Choices[0].Message.ToParam(),
		oai.ToolMessage(`{"status":"In Progress"}`, "c1")))
	if err != nil {
		t.Fatal(err)
	}
	if second.Choices[0].Message.Content != "PROJ-1 is In Progress." {
		t.Fatalf("second turn: %q", second.Choices[0].Message.Content)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[1].Messages[2].Role != "tool" || reqs[0].APIVersion != version {
		t.Fatalf("recorded requests: %+v", reqs)
	}
}

func TestRefusesAWrongAudienceAndAnyAPIKey(t *testing.T) {
	s := openai.New("chat", "tok-cs", version)
	defer s.Close()
	s.Script(openai.Turn{Content: "never"})
	c := client(s, "https://management.azure.com/.default") // the SDK asks for Cognitive Services; this credential has no token for it
	_, err := c.Chat.Completions.New(context.Background(), params(oai.UserMessage("hi")))
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong audience: want 401, got %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/openai/deployments/chat/chat/completions?api-version="+version,
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("api-key", "k")
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || s.Remaining() != 1 {
		t.Fatalf("api-key: want 401 and no turn used, got %d (remaining %d)", resp.StatusCode, s.Remaining())
	}
}

func TestRefusesBadRequests(t *testing.T) {
	s := openai.New("chat", "tok-cs", version)
	defer s.Close()
	post := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Token())
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	dep := "/openai/deployments/chat/chat/completions?api-version=" + version
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"no api-version", "/openai/deployments/chat/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 404},
		{"unknown api-version", "/openai/deployments/chat/chat/completions?api-version=1999-01-01", `{"messages":[{"role":"user","content":"x"}]}`, 400},
		{"unknown deployment", "/openai/deployments/other/chat/completions?api-version=" + version, `{"messages":[{"role":"user","content":"x"}]}`, 404},
		{"tool message without a call", dep, `{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c9","content":"{}"}]}`, 400},
		{"unanswered tool call", dep, `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, 400},
		{"bad tool name", dep, `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a b","parameters":{"type":"object"}}}]}`, 400},
		{"v1 with unknown model", "/openai/v1/chat/completions", `{"model":"other","messages":[{"role":"user","content":"x"}]}`, 404},
	} {
		if got := post(tc.path, tc.body); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	if len(s.Requests()) != 0 {
		t.Fatalf("refused requests were recorded: %d", len(s.Requests()))
	}
}

func TestThrottlesAndFilters(t *testing.T) {
	s := openai.New("chat", "tok-cs", version)
	defer s.Close()
	s.Script(openai.Turn{Throttle: 7e9}, openai.Turn{FilterPrompt: true}, openai.Turn{FilterAnswer: true})
	c := client(s, openai.Scope)
	ctx := context.Background()
	_, err := c.Chat.Completions.New(ctx, params(oai.UserMessage("hi")))
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Response.Header.Get("Retry-After") != "7" {
		t.Fatalf("throttle: %v", err)
	}
	_, err = c.Chat.Completions.New(ctx, params(oai.UserMessage("hi")))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "content_filter" {
		t.Fatalf("prompt filter: %v", err)
	}
	res, err := c.Chat.Completions.New(ctx, params(oai.UserMessage("hi")))
	if err != nil || res.Choices[0].FinishReason != "content_filter" {
		t.Fatalf("answer filter: %v %+v", err, res)
	}
}

func TestStreamsServerSentEvents(t *testing.T) {
	s := openai.New("chat", "tok-cs", version)
	defer s.Close()
	s.Script(openai.Turn{Content: "the quick brown fox jumps over the lazy dog"})
	c := client(s, openai.Scope)
	st := c.Chat.Completions.NewStreaming(context.Background(), params(oai.UserMessage("hi")))
	var acc oai.ChatCompletionAccumulator
	n := 0
	for st.Next() {
		acc.AddChunk(st.Current())
		n++
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 4 || acc.Choices[0].Message.Content != "the quick brown fox jumps over the lazy dog" || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("stream: %d chunks, %+v", n, acc.Choices)
	}
	// The raw stream ends with [DONE].
	s.Script(openai.Turn{Content: "x"})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("raw stream: %s", b)
	}
}
