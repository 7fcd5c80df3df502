package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/onbehalf/onbehalf/internal/botframework"
)

// Content types of an adaptiveCard/action invoke response (msteams-docs
// task-modules-and-cards/cards/Universal-actions-for-adaptive-cards: Work-with-Universal-Actions-for-Adaptive-Cards.md,
// authentication-flow-in-universal-action-for-adaptive-cards.md, sso-adaptive-cards-universal-action.md).
const (
	ActionCard               = "application/vnd.microsoft.card.adaptive"
	ActionMessage            = "application/vnd.microsoft.activity.message"
	ActionLoginRequest       = "application/vnd.microsoft.activity.loginRequest"
	ActionInvalidAuthCode    = "application/vnd.microsoft.error.invalidAuthCode"
	ActionPreconditionFailed = "application/vnd.microsoft.error.preconditionFailed"
	ActionError              = "application/vnd.microsoft.error"
)

// ExecuteVerb is the verb of the bot's Action.Execute buttons; their data is {"command": "…"}.
const ExecuteVerb = "command"

// oauthCardType is the OAuthCard attachment a sign-in sends; in an Action.Execute answer it
// becomes the login request.
const oauthCardType = "application/vnd.microsoft.card.oauth"

// ActionValue is the value of an adaptiveCard/action invoke: the action, and on a retry after
// a login request either the SSO token (authentication) or the code the sign-in page showed
// (state).
type ActionValue struct {
	Action struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Verb string          `json:"verb"`
		Data json.RawMessage `json:"data"`
	} `json:"action"`
	Trigger        string          `json:"trigger,omitempty"`
	Authentication *ActionAuthData `json:"authentication,omitempty"`
	State          string          `json:"state,omitempty"`
}

// ActionAuthData is the SSO token Teams sends with a retried action: {id, connectionName, token}.
type ActionAuthData struct {
	ID             string `json:"id"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
}

// ActionResponse is an adaptiveCard/action answer: HTTP 200 carrying {statusCode, type, value}.
func ActionResponse(statusCode int, typ string, value any) *botframework.InvokeResponse {
	body := map[string]any{"statusCode": statusCode, "type": typ}
	if value != nil {
		body["value"] = value
	}
	return &botframework.InvokeResponse{Status: http.StatusOK, Body: body}
}

// ActionSignIn completes the sign-in an action retry carries. It returns a response to give
// instead of running the action (a refused token, a wrong code, a login request without SSO),
// or nil to run it.
type ActionSignIn func(ctx context.Context, t *Turn, v *ActionValue) *botframework.InvokeResponse

// ExecuteCommand is a card button that runs command as if the user had typed it, through
// Action.Execute (universal actions: the same button works in Teams and Outlook).
func ExecuteCommand(title, command string) map[string]any {
	return map[string]any{"type": "Action.Execute", "title": title, "verb": ExecuteVerb, "data": map[string]any{"command": command}}
}

// actionExecute answers adaptiveCard/action for the bot's buttons: it runs the button's
// command with the clicking user's identity and answers in the invoke response — a login
// request when the command needs a sign-in (Teams then signs the user in and sends the action
// again), the answer as a card or message in a personal chat. In a group chat or channel the
// answer goes to the conversation as the command's replies do (to the requester alone), since
// a card in the invoke response would replace the message everyone sees.
func (b *Bot) actionExecute(ctx context.Context, t *Turn) (*botframework.InvokeResponse, error) {
	var v ActionValue
	if err := json.Unmarshal(t.Activity.Value, &v); err != nil || v.Action.Type != "Action.Execute" {
		t.Outcome = "action-malformed"
		return ActionResponse(http.StatusBadRequest, ActionError, map[string]any{"code": "BadRequest", "message": "not an Action.Execute"}), nil
	}
	var data struct {
		Command string `json:"command"`
	}
	_ = json.Unmarshal(v.Action.Data, &data)
	command := strings.TrimSpace(data.Command)
	if v.Action.Verb != ExecuteVerb || command == "" {
		t.Outcome = "action-unknown"
		return ActionResponse(http.StatusBadRequest, ActionError, map[string]any{"code": "BadRequest", "message": "unknown action"}), nil
	}
	if b.ActionSignIn != nil && (v.Authentication != nil || v.State != "") {
		if resp := b.ActionSignIn(ctx, t, &v); resp != nil {
			return resp, nil
		}
	}
	t.Capture()
	err := b.RunText(ctx, t, command)
	got := t.Captured()
	if err != nil {
		b.log.Warn("card action failed", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
		return ActionResponse(http.StatusInternalServerError, ActionError, map[string]any{"code": "InternalError", "message": "That did not work; try again."}), nil
	}
	for _, a := range got {
		for _, att := range a.Attachments {
			if att.ContentType == oauthCardType {
				t.Outcome = "action-login-request"
				return ActionResponse(http.StatusUnauthorized, ActionLoginRequest, att.Content), nil
			}
		}
	}
	if !IsPersonal(t.Activity) {
		for _, a := range got {
			if err := t.Reply(ctx, a); err != nil {
				return ActionResponse(http.StatusInternalServerError, ActionError, map[string]any{"code": "InternalError", "message": "I could not answer here."}), nil
			}
		}
		return ActionResponse(http.StatusOK, ActionMessage, "Done."), nil
	}
	if len(got) == 1 && len(got[0].Attachments) == 1 && got[0].Attachments[0].ContentType == ActionCard {
		return ActionResponse(http.StatusOK, ActionCard, got[0].Attachments[0].Content), nil
	}
	var texts []string
	for _, a := range got {
		if len(a.Attachments) > 0 {
			// Cards among several answers go to the chat; the response says where they are.
			for _, a := range got {
				if err := t.Reply(ctx, a); err != nil {
					return ActionResponse(http.StatusInternalServerError, ActionError, map[string]any{"code": "InternalError", "message": "I could not answer here."}), nil
				}
			}
			return ActionResponse(http.StatusOK, ActionMessage, "Done: see my reply."), nil
		}
		if a.Text != "" {
			texts = append(texts, a.Text)
		}
	}
	if len(texts) == 0 {
		texts = []string{"Done."}
	}
	return ActionResponse(http.StatusOK, ActionMessage, strings.Join(texts, "\n\n")), nil
}
