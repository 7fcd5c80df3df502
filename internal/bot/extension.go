package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/onbehalf/onbehalf/internal/botframework"
)

// ExtensionQuery is the value of a composeExtension/query invoke (msteams-docs
// messaging-extensions/how-to/search-commands/respond-to-search.md; add-authentication.md for
// state; msgex-sso-code.md for authentication).
type ExtensionQuery struct {
	CommandID  string `json:"commandId"`
	Parameters []struct {
		Name  string `json:"name"`
		Value any    `json:"value"`
	} `json:"parameters"`
	QueryOptions struct {
		Skip  int `json:"skip"`
		Count int `json:"count"`
	} `json:"queryOptions"`
	State          string          `json:"state,omitempty"`
	Authentication *ActionAuthData `json:"authentication,omitempty"`
}

// Words is the text the user typed (the first string parameter other than initialRun).
func (q ExtensionQuery) Words() string {
	for _, p := range q.Parameters {
		if s, ok := p.Value.(string); ok && p.Name != "initialRun" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// ExtensionResponse is {composeExtension: result}, HTTP 200.
func ExtensionResponse(result map[string]any) *botframework.InvokeResponse {
	return &botframework.InvokeResponse{Status: http.StatusOK, Body: map[string]any{"composeExtension": result}}
}

// ExtensionResults is a list of results the user may insert.
func ExtensionResults(items []map[string]any) *botframework.InvokeResponse {
	if items == nil {
		items = []map[string]any{}
	}
	return ExtensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": items})
}

// ExtensionMessage is a short text shown in the compose box instead of results.
func ExtensionMessage(text string) *botframework.InvokeResponse {
	return ExtensionResponse(map[string]any{"type": "message", "text": text})
}

// ExtensionSignIn completes the SSO sign-in a reissued query carries (authentication.token):
// nil when the user is now signed in, else the answer to give (HTTP 412 when consent is
// needed, as msgex-sso-code.md shows).
type ExtensionSignIn func(ctx context.Context, t *Turn, auth *ActionAuthData) *botframework.InvokeResponse

// HandleSearch registers the answer of one search command of the message extension.
func (b *Bot) HandleSearch(commandID string, f InvokeFunc) { b.searches[commandID] = f }

// SearchByCommand answers a search command by running the bot command prefix+" "+words as the
// user, its answer (one card) becoming the single result. A needed Teams sign-in becomes the
// silentAuth answer whose openUrl is the sign-in link (Teams then obtains the user's SSO token
// and reissues the query with it); in a shared conversation nothing is answered but the
// results the user picks to insert.
func (b *Bot) SearchByCommand(prefix, title string) InvokeFunc {
	return func(ctx context.Context, t *Turn) (*botframework.InvokeResponse, error) {
		var q ExtensionQuery
		_ = json.Unmarshal(t.Activity.Value, &q)
		words := q.Words()
		if words == "" {
			return ExtensionResults(nil), nil
		}
		if q.Authentication != nil && q.Authentication.Token != "" && b.ExtensionSignIn != nil {
			if resp := b.ExtensionSignIn(ctx, t, q.Authentication); resp != nil {
				return resp, nil
			}
		}
		if wait, limited := b.limited(ctx, t); limited {
			return ExtensionMessage(string(LimitedText(wait))), nil
		}
		t.Capture()
		c, args, ok := b.match(prefix + " " + words)
		var err error
		if ok {
			err = c.Run(ctx, t, args)
		}
		got := t.Captured()
		if err != nil {
			return ExtensionMessage("That did not work; try again."), nil
		}
		var items []map[string]any
		for _, a := range got {
			for _, att := range a.Attachments {
				switch att.ContentType {
				case oauthCardType:
					raw, _ := json.Marshal(att.Content)
					var card struct {
						Buttons []struct{ Value string } `json:"buttons"`
					}
					_ = json.Unmarshal(raw, &card)
					link := ""
					if len(card.Buttons) > 0 {
						link = card.Buttons[0].Value
					}
					t.Outcome = "extension-sign-in"
					return ExtensionResponse(map[string]any{"type": "silentAuth", "suggestedActions": map[string]any{
						"actions": []map[string]any{{"type": "openUrl", "value": link, "title": "Sign in"}},
					}}), nil
				case ActionCard:
					items = append(items, map[string]any{"contentType": ActionCard, "content": att.Content,
						"preview": map[string]any{"contentType": "application/vnd.microsoft.card.thumbnail",
							"content": map[string]any{"title": title + ": " + words}}})
				}
			}
		}
		if len(items) == 0 {
			for _, a := range got {
				if a.Text != "" {
					return ExtensionMessage(strings.NewReplacer("**", "", "`", "").Replace(a.Text)), nil
				}
			}
		}
		return ExtensionResults(items), nil
	}
}

// extensionQuery dispatches composeExtension/query by commandId.
func (b *Bot) extensionQuery(ctx context.Context, t *Turn) (*botframework.InvokeResponse, error) {
	var q ExtensionQuery
	if err := json.Unmarshal(t.Activity.Value, &q); err != nil {
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	f, ok := b.searches[q.CommandID]
	if !ok {
		t.Outcome = "extension-unknown-command"
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	return f(ctx, t)
}
