package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/onbehalf/onbehalf/internal/background"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// ErrPrompted means the user was asked to sign in (or told why not) and the request was
// parked; the command has nothing more to do.
var ErrPrompted = errors.New("sign-in requested; request parked")

// OAuthCardContentType is the attachment type of an OAuthCard.
const OAuthCardContentType = "application/vnd.microsoft.card.oauth"

// StateVerifier gets the first look at a signin/verifyState value (for example an OAuth
// connector confirming an account link). handled=false passes it on.
type StateVerifier func(ctx context.Context, t *bot.Turn, state string) (resp *botframework.InvokeResponse, handled bool, err error)

// Flow connects sign-in to the conversation: it prompts, parks, answers the sign-in invokes
// and resumes parked requests.
type Flow struct {
	M         *Manager
	Validator *entra.SSOValidator
	// TenantID is the bot's tenant, used when an activity does not name one.
	TenantID string
	// Resume re-runs a parked activity once its user is signed in.
	Resume func(ctx context.Context, act *botframework.Activity) error
	// Verifiers see signin/verifyState values before the Bot Service magic code does.
	Verifiers []StateVerifier
	// ParkTTL bounds how long a request waits for sign-in (default 15 minutes).
	ParkTTL time.Duration
	// Background tracks parked requests being answered after a sign-in (when Queue is nil
	// or refuses one).
	Background *background.Group
	// Queue, when set, answers parked requests through the work queue, so they survive the
	// instance stopping; nil answers them in Background.
	Queue ResumeQueue
	Log   *slog.Logger
}

// ResumeQueue queues a parked activity of user u to be answered by a queue worker.
type ResumeQueue interface {
	EnqueueResume(ctx context.Context, u tokenstore.UserKey, act *botframework.Activity) error
}

// Register installs the sign-in invokes on b.
func (f *Flow) Register(b *bot.Bot) {
	b.HandleInvoke("signin/tokenExchange", f.TokenExchange)
	b.HandleInvoke("signin/verifyState", f.VerifyState)
	b.HandleInvoke("signin/failure", f.Failure)
	b.ActionSignIn = f.ActionSignIn
	b.ExtensionSignIn = f.ExtensionSignIn
	if f.Resume == nil {
		f.Resume = func(ctx context.Context, act *botframework.Activity) error {
			_, _, err := b.OnActivity(ctx, act)
			return err
		}
	}
}

// Need returns the caller's token for resource. When the user must sign in it parks the
// request, sends the sign-in card and returns ErrPrompted.
func (f *Flow) Need(ctx context.Context, t *bot.Turn, resource string) (string, error) {
	c, err := CallerOf(t.Activity, f.TenantID)
	if err != nil {
		_ = t.ReplyText(ctx, "I can only do that for a signed-in Microsoft Teams user.")
		return "", ErrPrompted
	}
	tok, err := f.M.Token(ctx, c, resource)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, ErrSignInNeeded) {
		return "", err
	}
	r, _ := f.M.Resource(resource)
	sentence := fmt.Sprintf("Sign in so I can use %s as you. In Teams this normally happens by itself.", displayName(r))
	var nu *NeedsUserError
	if errors.As(err, &nu) {
		sentence = nu.Sentence
		t.Outcome = "needs-user"
		f.Log.Info("user action needed for a resource", slog.String("resource", r.Name), slog.String("user", c.User.String()), slog.String("cause", nu.Cause.Error()))
	} else {
		t.Outcome = "sign-in"
	}
	// A card action's turn is answered in its invoke response (a login request): Teams sends
	// the action again after sign-in, so there is nothing to resume.
	if !t.Capturing() {
		if err := f.park(ctx, c, r.Name, t.Activity); err != nil {
			return "", err
		}
	}
	if err := f.SendCard(ctx, t, sentence); err != nil {
		return "", err
	}
	return "", ErrPrompted
}

func displayName(r Resource) string {
	if r.Display != "" {
		return r.Display
	}
	return r.Name
}

func (f *Flow) park(ctx context.Context, c Caller, resource string, act *botframework.Activity) error {
	payload, err := json.Marshal(act)
	if err != nil {
		return err
	}
	ttl := f.ParkTTL
	if ttl == 0 {
		ttl = 15 * time.Minute
	}
	_, err = f.M.Store.Park(ctx, c.User, tokenstore.Parked{ID: act.ID, Connector: connectorPrefix + resource, Payload: payload}, ttl)
	if errors.Is(err, tokenstore.ErrConflict) {
		// The same activity (same id, same user) is parked already: the channel sent it again
		// after an earlier attempt failed past the parking. It waits once; carry on to the card.
		return nil
	}
	if err != nil {
		return fmt.Errorf("park request: %w", err)
	}
	return nil
}

// SendCard sends the OAuthCard: Teams attempts silent SSO because of its
// tokenExchangeResource; the button is the fallback.
func (f *Flow) SendCard(ctx context.Context, t *bot.Turn, text string) error {
	res, err := f.M.TokenService.GetSignInResource(ctx, f.M.Connection, t.Reference())
	if err != nil {
		return fmt.Errorf("sign-in resource: %w", err)
	}
	content := map[string]any{
		"text":           text,
		"connectionName": f.M.Connection,
		"buttons":        []map[string]any{{"type": "signin", "title": "Sign in", "value": res.SignInLink}},
	}
	if res.TokenExchangeResource != nil {
		content["tokenExchangeResource"] = res.TokenExchangeResource
	}
	if res.TokenPostResource != nil {
		content["tokenPostResource"] = res.TokenPostResource
	}
	return t.ReplyCard(ctx, "", botframework.Attachment{ContentType: OAuthCardContentType, Content: content})
}

type exchangeValue struct {
	ID             string `json:"id"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
}

// exchangeResponse is a TokenExchangeInvokeResponse {id, connectionName, failureDetail}; the
// connection named is the bot's own, as the Agents SDKs answer (Agents-for-net OAuthFlow.cs,
// Agents-for-js azureBotAuthorization.ts).
func (f *Flow) exchangeResponse(status int, v exchangeValue, detail string) *botframework.InvokeResponse {
	body := map[string]any{"id": v.ID, "connectionName": f.M.Connection}
	if detail != "" {
		body["failureDetail"] = detail
	}
	return &botframework.InvokeResponse{Status: status, Body: body}
}

// TokenExchange answers signin/tokenExchange (Agents-for-net UserAuth/TokenService/OAuthFlow.cs;
// PROTOCOL.md "Teams SSO"):
//   - 200 when the user is signed in and the parked requests' tokens were obtained;
//   - 412 only when the user must act — consent (the token service's "Consent Required", or
//     OBO's AADSTS65001) or an interaction such as MFA: Teams then asks the user and retries
//     with the same id, and that retry is exchanged afresh;
//   - 400 with failureDetail for everything else: a malformed value, another connection, a
//     refused SSO token, a misconfigured OAuth connection (the token service answers 500), a
//     token store outage. Teams stops and the card's Sign in button remains.
//
// Every duplicate in flight (one per open Teams client, same id) gets the first one's answer;
// no chat message is sent on 412 or 400.
func (f *Flow) TokenExchange(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	act := t.Activity
	var v exchangeValue
	if err := json.Unmarshal(act.Value, &v); err != nil || v.ID == "" || v.Token == "" {
		t.Outcome = "exchange-malformed"
		return f.exchangeResponse(http.StatusBadRequest, v, "The token exchange request is malformed."), nil
	}
	if v.ConnectionName != f.M.Connection {
		t.Outcome = "exchange-wrong-connection"
		return f.exchangeResponse(http.StatusBadRequest, v, "Unknown connection."), nil
	}
	ident, err := f.Validator.Validate(ctx, v.Token, act.From.AADObjectID)
	if err != nil {
		t.Outcome = "exchange-refused"
		f.Log.Warn("SSO token refused", slog.String("id", act.ID), slog.String("reason", err.Error()))
		return f.exchangeResponse(http.StatusBadRequest, v, "The sign-in token was not accepted."), nil
	}
	c := Caller{User: tokenstore.UserKey{TenantID: ident.TenantID, ObjectID: ident.ObjectID}, ChannelUserID: act.From.ID, ChannelID: act.BaseChannelID()}
	// Each new exchange id costs a token-service exchange and on-behalf-of requests: a client
	// replaying its token under fresh ids is paced by the user's rate limit (the duplicates
	// of one id, one per open Teams client, count once).
	if wait, limited := t.Limited(ctx, "exchange|"+c.User.Partition()+"|"+v.ID); limited {
		return f.exchangeResponse(http.StatusBadRequest, v, fmt.Sprintf("Too many sign-in attempts; try again in %d seconds.", int(wait.Seconds()))), nil
	}

	// Bounded, so that a store outage is answered (400) well within Teams' invoke time limit.
	cctx, ccancel := context.WithTimeout(ctx, claimTimeout)
	err = f.M.Store.ClaimExchange(cctx, c.User, v.ID, 2*time.Minute)
	ccancel()
	if err != nil {
		if !errors.Is(err, tokenstore.ErrDuplicate) {
			t.Outcome = "exchange-store-unavailable"
			f.Log.Warn("token exchange could not be recorded", slog.String("id", act.ID), slog.String("reason", err.Error()))
			return f.exchangeResponse(http.StatusBadRequest, v, "The sign-in could not be completed right now."), nil
		}
		// Another Teams client (or instance) is handling this exchange: give its answer.
		t.Outcome = "exchange-duplicate"
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := f.awaitExchange(wctx, c.User, v.ID)
		switch {
		case err == nil && out.State == tokenstore.ExchangeSucceeded:
			return f.exchangeResponse(http.StatusOK, v, ""), nil
		case err == nil && out.State == tokenstore.ExchangeFailed:
			status := out.Status
			if status == 0 {
				status = http.StatusBadRequest
			}
			return f.exchangeResponse(status, v, out.FailureDetail), nil
		default:
			return f.exchangeResponse(http.StatusBadRequest, v, "The sign-in is being completed by another Teams client."), nil
		}
	}

	fail := func(status int, outcome, detail string, cause error) (*botframework.InvokeResponse, error) {
		t.Outcome = outcome
		f.Log.Warn("token exchange failed", slog.String("id", act.ID), slog.String("user", c.User.String()),
			slog.Int("status", status), slog.String("reason", cause.Error()))
		// Recorded so that duplicates in flight answer alike; the next claim of the id takes
		// the record over, so Teams' retry after consent is exchanged afresh.
		out := tokenstore.ExchangeOutcome{State: tokenstore.ExchangeFailed, FailureDetail: detail, Status: status}
		if err := f.M.Store.CompleteExchange(ctx, c.User, v.ID, out); err != nil {
			f.Log.Warn("recording a failed exchange", slog.String("error", err.Error()))
		}
		return f.exchangeResponse(status, v, detail), nil
	}
	if _, err := f.M.TokenService.Exchange(ctx, act.From.ID, f.M.Connection, act.ChannelID, v.Token); err != nil {
		if errors.Is(err, botframework.ErrConsentRequired) || errors.Is(err, botframework.ErrNoUserToken) {
			return fail(http.StatusPreconditionFailed, "exchange-needs-consent", consentDetail, err)
		}
		return fail(http.StatusBadRequest, "exchange-failed", "The sign-in service could not complete the sign-in.", err)
	}
	parked, err := f.obtainForParked(ctx, c, v.Token)
	// Requests whose tokens were obtained are answered whatever happened to the others (those
	// were parked again); answering them after the 200 keeps the invoke within Teams' limit.
	f.resumeLater(ctx, c, parked)
	if err != nil {
		if errors.Is(err, entra.ErrConsentRequired) || errors.Is(err, entra.ErrInteractionRequired) {
			return fail(http.StatusPreconditionFailed, "exchange-needs-consent", consentDetail, err)
		}
		return fail(http.StatusBadRequest, "exchange-failed", "The sign-in could not be completed.", err)
	}
	if err := f.M.Store.CompleteExchange(ctx, c.User, v.ID, tokenstore.ExchangeOutcome{State: tokenstore.ExchangeSucceeded, Status: http.StatusOK}); err != nil {
		f.Log.Warn("recording a completed exchange", slog.String("error", err.Error()))
	}
	t.Outcome = "signed-in"
	return f.exchangeResponse(http.StatusOK, v, ""), nil
}

// claimTimeout bounds recording an exchange claim in the token store.
const claimTimeout = 5 * time.Second

// awaitExchange waits for the outcome of an exchange another handler claimed. A failed
// exchange's record is briefly absent while a retry takes it over; that gap is waited out.
func (f *Flow) awaitExchange(ctx context.Context, u tokenstore.UserKey, id string) (tokenstore.ExchangeOutcome, error) {
	for {
		out, err := f.M.Store.AwaitExchange(ctx, u, id, 50*time.Millisecond)
		if !errors.Is(err, tokenstore.ErrNotFound) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// consentDetail is the failureDetail of a 412: the user must consent or sign in interactively.
const consentDetail = "The user must consent or sign in interactively; proceed with the sign-in card."

// obtainForParked takes the caller's parked requests and obtains each one's resource token
// with assertion. If the user must act (consent), the requests are parked again.
func (f *Flow) obtainForParked(ctx context.Context, c Caller, assertion string) ([]tokenstore.Parked, error) {
	var all []tokenstore.Parked
	var firstErr error
	for name, r := range f.M.Resources {
		ps, err := f.M.Store.TakeParked(ctx, c.User, connectorPrefix+name)
		if err != nil {
			return all, fmt.Errorf("take parked requests: %w", err)
		}
		if len(ps) == 0 {
			continue
		}
		if _, err := f.M.obtain(ctx, c, r, assertion); err != nil {
			var nu *NeedsUserError
			if r.Exchange != nil && !errors.As(err, &nu) {
				// The user is signed in; what failed is the resource itself (an application
				// refusing or down). The resumed request meets the failure and explains it.
				all = append(all, ps...)
				continue
			}
			for _, p := range ps {
				if _, perr := f.M.Store.Park(ctx, c.User, p, f.parkTTL()); perr != nil {
					f.Log.Warn("re-parking a request failed", slog.String("error", perr.Error()))
				}
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		all = append(all, ps...)
	}
	return all, firstErr
}

func (f *Flow) parkTTL() time.Duration {
	if f.ParkTTL == 0 {
		return 15 * time.Minute
	}
	return f.ParkTTL
}

// ResumeTimeout bounds the answering of requests resumed after a sign-in.
const ResumeTimeout = 30 * time.Second

// resumeLater answers the parked requests after the sign-in invoke is answered: through the
// work queue when there is one (a job per request, keyed by its activity id, so it survives
// the instance stopping and is answered once), otherwise in the background, bounded by
// ResumeTimeout, where a request lost to an instance stopping is one the user asks again.
func (f *Flow) resumeLater(ctx context.Context, c Caller, parked []tokenstore.Parked) {
	if len(parked) == 0 {
		return
	}
	if f.Queue != nil {
		var rest []tokenstore.Parked
		for _, p := range parked {
			var act botframework.Activity
			if err := json.Unmarshal(p.Payload, &act); err != nil {
				f.Log.Warn("a parked request could not be read", slog.String("user", c.User.String()))
				continue
			}
			if err := f.Queue.EnqueueResume(ctx, c.User, &act); err != nil {
				f.Log.Warn("queueing a parked request failed; answering it here", slog.String("id", act.ID), slog.String("error", err.Error()))
				rest = append(rest, p)
			}
		}
		parked = rest
		if len(parked) == 0 {
			return
		}
	}
	f.Background.Go(ctx, ResumeTimeout, func(ctx context.Context) { f.resume(ctx, c, parked) })
}

// resume re-runs parked requests, oldest first.
func (f *Flow) resume(ctx context.Context, c Caller, parked []tokenstore.Parked) {
	for _, p := range parked {
		var act botframework.Activity
		if err := json.Unmarshal(p.Payload, &act); err != nil {
			f.Log.Warn("a parked request could not be read", slog.String("user", c.User.String()))
			continue
		}
		if err := f.Resume(ctx, &act); err != nil {
			f.Log.Warn("resuming a parked request failed", slog.String("id", act.ID), slog.String("error", err.Error()))
		}
	}
}

// VerifyState answers signin/verifyState: a connector's link confirmation, a Bot Service
// magic code (mobile and consent fallbacks), or a cancelled sign-in.
func (f *Flow) VerifyState(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(t.Activity.Value, &v); err != nil || v.State == "" {
		t.Outcome = "verify-malformed"
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	// A code costs a store lookup (an account-link code) or a token-service request (a magic
	// code) and a chat message when wrong: guessed codes are paced by the user's rate limit,
	// answered 429 without a chat message.
	if _, limited := t.Limited(ctx, ""); limited {
		return &botframework.InvokeResponse{Status: http.StatusTooManyRequests}, nil
	}
	for _, verify := range f.Verifiers {
		if resp, handled, err := verify(ctx, t, v.State); handled || err != nil {
			return resp, err
		}
	}
	if v.State == "CancelledByUser" {
		t.Outcome = "sign-in-cancelled"
		f.Log.Info("sign-in cancelled by the user", slog.String("id", t.Activity.ID))
		_ = t.ReplyText(ctx, "Sign-in was cancelled. Ask again whenever you are ready.")
		return &botframework.InvokeResponse{Status: http.StatusOK}, nil
	}
	c, err := CallerOf(t.Activity, f.TenantID)
	if err != nil {
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	assertion, err := f.M.Assertion(ctx, c, v.State)
	if errors.Is(err, ErrSignInNeeded) {
		t.Outcome = "verify-not-found"
		f.Log.Warn("magic code did not complete sign-in", slog.String("id", t.Activity.ID), slog.String("user", c.User.String()))
		_ = t.ReplyText(ctx, "That did not complete the sign-in. Select **Sign in** on the card to try again.")
		return &botframework.InvokeResponse{Status: http.StatusNotFound}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify state: %w", err)
	}
	parked, err := f.obtainForParked(ctx, c, assertion)
	f.resumeLater(ctx, c, parked)
	if err != nil {
		var nu *NeedsUserError
		if errors.As(err, &nu) {
			t.Outcome = "verify-needs-user"
			_ = f.SendCard(ctx, t, nu.Sentence)
			return &botframework.InvokeResponse{Status: http.StatusOK}, nil
		}
		return nil, err
	}
	t.Outcome = "signed-in"
	return &botframework.InvokeResponse{Status: http.StatusOK}, nil
}

// Failure answers signin/failure: the user is told what to do, the operator finds the
// cause in the log.
func (f *Flow) Failure(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	var v struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(t.Activity.Value, &v)
	t.Outcome = "sign-in-failure"
	f.Log.Warn("Teams reported a sign-in failure", slog.String("id", t.Activity.ID), slog.String("code", v.Code), slog.String("message", v.Message))
	var sentence mdtext.Markdown
	switch v.Code {
	case "resourcematchfailed":
		sentence = "I could not sign you in silently: single sign-on is not set up correctly for this app (the Teams app's SSO resource does not match the bot's OAuth connection). " +
			"An administrator can find the exact cause with `onbehalf doctor`. Meanwhile, select **Sign in** on the card to sign in manually."
	case "userconsentrequired", "consentrequired":
		sentence = "You need to give consent first: select **Sign in** on the card and accept the prompt."
	default:
		sentence = mdtext.Sprintf("Silent sign-in did not work (%s). Select **Sign in** on the card to sign in manually.", orUnknown(v.Code))
	}
	if err := t.ReplyText(ctx, sentence); err != nil {
		return nil, err
	}
	return &botframework.InvokeResponse{Status: http.StatusOK}, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown reason"
	}
	return s
}

// DropParked forgets the requests the caller left waiting for a sign-in in one conversation,
// and reports how many there were: when the user removes the bot, the conversation they were
// asked in no longer has it, so a sign-in completed later (from an old card, after adding the
// bot again) signs the user in and answers nothing from before. Requests waiting in the
// user's other conversations are kept, with the time they had left.
func (f *Flow) DropParked(ctx context.Context, c Caller, conversationID string) (int, error) {
	now := f.M.now()
	n := 0
	for name := range f.M.Resources {
		ps, err := f.M.Store.TakeParked(ctx, c.User, connectorPrefix+name)
		for _, p := range ps {
			var act botframework.Activity
			if json.Unmarshal(p.Payload, &act) == nil && act.Conversation.ID != conversationID {
				if left := f.parkTTL() - now.Sub(p.Created); left > 0 {
					if _, perr := f.M.Store.Park(ctx, c.User, p, left); perr != nil {
						f.Log.Warn("keeping a parked request failed", slog.String("error", perr.Error()))
					}
				}
				continue
			}
			n++
		}
		if err != nil {
			return n, fmt.Errorf("drop parked requests: %w", err)
		}
	}
	return n, nil
}
