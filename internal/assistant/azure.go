package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// AzureConfig configures the Azure OpenAI model. Authentication is an Entra token from
// Credential (the managed identity in Azure) for https://cognitiveservices.azure.com/.default;
// there is deliberately no API-key option.
//
//	assistant.AzureConfig{
//		Endpoint:   "https://aoai-onbehalf.openai.azure.com",
//		Deployment: "gpt-4o-mini",
//		APIVersion: "2024-10-21",
//		Credential: managedIdentity,
//	}
type AzureConfig struct {
	Endpoint, Deployment, APIVersion string
	Credential                       azcore.TokenCredential
	// HTTPClient must have a non-nil Transport (the SDK checks redirects through it).
	HTTPClient *http.Client
	// MaxTokens bounds each answer (default 800).
	MaxTokens int64
}

// AzureModel is the Azure OpenAI chat-completions model.
type AzureModel struct {
	client     oai.Client
	deployment string
	maxTokens  int64
}

var _ Model = (*AzureModel)(nil)

// NewAzure returns the model; it makes no network call.
func NewAzure(c AzureConfig) (*AzureModel, error) {
	if c.Endpoint == "" || c.Deployment == "" || c.APIVersion == "" || c.Credential == nil {
		return nil, errors.New("assistant: endpoint, deployment, api-version and credential are required")
	}
	hc := c.HTTPClient
	if hc == nil || hc.Transport == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 800
	}
	return &AzureModel{
		client: oai.NewClient(
			azure.WithEndpoint(c.Endpoint, c.APIVersion),
			azure.WithTokenCredential(c.Credential),
			option.WithHTTPClient(hc),
			// The assistant decides about throttling itself: it tells the user instead of
			// holding the turn through the SDK's retries.
			option.WithMaxRetries(0),
		),
		deployment: c.Deployment, maxTokens: c.MaxTokens,
	}, nil
}

// Complete implements Model.
func (m *AzureModel) Complete(ctx context.Context, msgs []Message, tools []Spec) (Message, error) {
	p := oai.ChatCompletionNewParams{Model: m.deployment, MaxCompletionTokens: oai.Int(m.maxTokens)}
	for _, msg := range msgs {
		p.Messages = append(p.Messages, toParam(msg))
	}
	for _, s := range tools {
		p.Tools = append(p.Tools, oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: s.Name, Description: oai.String(s.Description), Parameters: shared.FunctionParameters(s.Schema()),
		}))
	}
	res, err := m.client.Chat.Completions.New(ctx, p)
	if err != nil {
		return Message{}, classify(ctx, err)
	}
	if len(res.Choices) == 0 {
		return Message{}, fmt.Errorf("%w: no choices", ErrUnavailable)
	}
	ch := res.Choices[0]
	if ch.FinishReason == "content_filter" {
		return Message{}, ErrFiltered
	}
	out := Message{Role: "assistant", Content: ch.Message.Content}
	for _, tc := range ch.Message.ToolCalls {
		if tc.Type != "function" {
			continue
		}
		out.ToolCalls = append(out.ToolCalls, Call{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return out, nil
}

func toParam(m Message) oai.ChatCompletionMessageParamUnion {
	switch m.Role {
	case "system":
		return oai.SystemMessage(m.Content)
	case "tool":
		return oai.ToolMessage(m.Content, m.ToolCallID)
	case "assistant":
		a := oai.ChatCompletionAssistantMessageParam{}
		if m.Content != "" {
			a.Content.OfString = oai.String(m.Content)
		}
		for _, c := range m.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, oai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &oai.ChatCompletionMessageFunctionToolCallParam{
					ID: c.ID, Function: oai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: c.Name, Arguments: c.Arguments},
				},
			})
		}
		return oai.ChatCompletionMessageParamUnion{OfAssistant: &a}
	default:
		return oai.UserMessage(m.Content)
	}
}

// classify maps the SDK's errors to this package's.
func classify(ctx context.Context, err error) error {
	var apiErr *oai.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
		te := &ThrottledError{}
		if apiErr.Response != nil {
			if s, perr := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); perr == nil && s > 0 {
				te.RetryAfter = time.Duration(s) * time.Second
			}
		}
		return te
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest && apiErr.Code == "content_filter":
		return ErrFiltered
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: HTTP %d %s", ErrUnavailable, apiErr.StatusCode, apiErr.Code)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// rawJSON checks that s is a JSON object.
func rawJSON(s string) (map[string]any, error) {
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return v, nil
}

var _ StreamingModel = (*AzureModel)(nil)

// CompleteStream implements StreamingModel: the answer, without tools, as server-sent events.
func (m *AzureModel) CompleteStream(ctx context.Context, msgs []Message, onText func(string)) (Message, error) {
	p := oai.ChatCompletionNewParams{Model: m.deployment, MaxCompletionTokens: oai.Int(m.maxTokens)}
	for _, msg := range msgs {
		p.Messages = append(p.Messages, toParam(msg))
	}
	st := m.client.Chat.Completions.NewStreaming(ctx, p)
	defer st.Close()
	var acc oai.ChatCompletionAccumulator
	var sb strings.Builder
	for st.Next() {
		c := st.Current()
		acc.AddChunk(c)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			sb.WriteString(c.Choices[0].Delta.Content)
			onText(sb.String())
		}
	}
	if err := st.Err(); err != nil {
		return Message{}, classify(ctx, err)
	}
	if len(acc.Choices) == 0 {
		return Message{}, fmt.Errorf("%w: no choices", ErrUnavailable)
	}
	if acc.Choices[0].FinishReason == "content_filter" {
		return Message{}, ErrFiltered
	}
	return Message{Role: "assistant", Content: acc.Choices[0].Message.Content}, nil
}
