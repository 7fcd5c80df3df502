package sso

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
)

// ActionSignIn completes the sign-in an Adaptive Card Action.Execute retry carries (msteams-docs
// Universal-actions-for-adaptive-cards/sso-adaptive-cards-universal-action.md and
// authentication-flow-in-universal-action-for-adaptive-cards.md):
//   - authentication {id, connectionName, token}: the SSO token is validated like a
//     signin/tokenExchange token and exchanged at the token service. A refused token answers
//     412 preconditionFailed; consent still needed answers a second login request without
//     tokenExchangeResource, so the user signs in (and consents) through the link. An
//     authentication for another connection is ignored, as the page allows.
//   - state: the code the sign-in page showed; a wrong one answers 401 invalidAuthCode.
//
// nil means the user is signed in and the action runs.
func (f *Flow) ActionSignIn(ctx context.Context, t *bot.Turn, v *bot.ActionValue) *botframework.InvokeResponse {
	act := t.Activity
	if a := v.Authentication; a != nil && a.Token != "" && a.ConnectionName == f.M.Connection {
		if _, err := f.Validator.Validate(ctx, a.Token, act.From.AADObjectID); err != nil {
			t.Outcome = "action-token-refused"
			f.Log.Warn("SSO token of a card action refused", slog.String("id", act.ID), slog.String("reason", err.Error()))
			return bot.ActionResponse(http.StatusPreconditionFailed, bot.ActionPreconditionFailed, map[string]any{"code": "412", "message": "The sign-in token was not accepted."})
		}
		if _, err := f.M.TokenService.Exchange(ctx, act.From.ID, f.M.Connection, act.ChannelID, a.Token); err != nil {
			if errors.Is(err, botframework.ErrConsentRequired) || errors.Is(err, botframework.ErrNoUserToken) {
				t.Outcome = "action-needs-consent"
				return f.linkOnlyLogin(ctx, t)
			}
			t.Outcome = "action-exchange-failed"
			f.Log.Warn("card action token exchange failed", slog.String("id", act.ID), slog.String("reason", err.Error()))
			return bot.ActionResponse(http.StatusPreconditionFailed, bot.ActionPreconditionFailed, map[string]any{"code": "412", "message": "The sign-in could not be completed."})
		}
		return nil
	}
	if v.State != "" {
		c, err := CallerOf(act, f.TenantID)
		if err != nil {
			return bot.ActionResponse(http.StatusUnauthorized, bot.ActionInvalidAuthCode, nil)
		}
		if _, err := f.M.Assertion(ctx, c, v.State); err != nil {
			t.Outcome = "action-bad-code"
			if !errors.Is(err, ErrSignInNeeded) {
				f.Log.Warn("card action sign-in code failed", slog.String("id", act.ID), slog.String("reason", err.Error()))
			}
			return bot.ActionResponse(http.StatusUnauthorized, bot.ActionInvalidAuthCode, nil)
		}
	}
	return nil
}

// linkOnlyLogin is a login request whose only way in is the sign-in link.
func (f *Flow) linkOnlyLogin(ctx context.Context, t *bot.Turn) *botframework.InvokeResponse {
	res, err := f.M.TokenService.GetSignInResource(ctx, f.M.Connection, t.Reference())
	if err != nil {
		f.Log.Warn("sign-in resource for a card action", slog.String("error", err.Error()))
		return bot.ActionResponse(http.StatusPreconditionFailed, bot.ActionPreconditionFailed, map[string]any{"code": "412", "message": "Consent is needed; try again."})
	}
	return bot.ActionResponse(http.StatusUnauthorized, bot.ActionLoginRequest, map[string]any{
		"text":           "Sign in and accept the consent prompt so I can act as you.",
		"connectionName": f.M.Connection,
		"buttons":        []map[string]any{{"type": "signin", "title": "Sign in", "text": "Sign in", "value": res.SignInLink}},
	})
}

// ExtensionSignIn completes the SSO sign-in a reissued message-extension query carries
// (msteams-docs messaging-extensions/how-to/authentication/msgex-sso-code.md): the token is
// validated like a signin/tokenExchange token and exchanged; when it cannot be exchanged
// because the user must consent the answer is HTTP 412, which makes Teams ask for consent.
// A token that is not the sender's is refused with a message and nothing is exchanged.
func (f *Flow) ExtensionSignIn(ctx context.Context, t *bot.Turn, a *bot.ActionAuthData) *botframework.InvokeResponse {
	act := t.Activity
	if _, err := f.Validator.Validate(ctx, a.Token, act.From.AADObjectID); err != nil {
		t.Outcome = "extension-token-refused"
		f.Log.Warn("SSO token of a message-extension query refused", slog.String("id", act.ID), slog.String("reason", err.Error()))
		return bot.ExtensionMessage("The sign-in token was not accepted.")
	}
	if _, err := f.M.TokenService.Exchange(ctx, act.From.ID, f.M.Connection, act.ChannelID, a.Token); err != nil {
		if errors.Is(err, botframework.ErrConsentRequired) || errors.Is(err, botframework.ErrNoUserToken) {
			t.Outcome = "extension-needs-consent"
			return &botframework.InvokeResponse{Status: http.StatusPreconditionFailed}
		}
		t.Outcome = "extension-exchange-failed"
		f.Log.Warn("message-extension token exchange failed", slog.String("id", act.ID), slog.String("reason", err.Error()))
		return bot.ExtensionMessage("The sign-in could not be completed.")
	}
	return nil
}
