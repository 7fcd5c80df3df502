// Package teamsclient is a stand-in for a user's Teams clients talking to the bot through the
// Bot Framework channel: it sends the user's messages as signed channel activities, and when
// the bot answers with an OAuthCard carrying a tokenExchangeResource it obtains the user's SSO
// token and sends signin/tokenExchange invokes as Teams does — one per open client, all with the
// same exchange id, concurrently (msteams-docs bot-sso-code.md; the duplicates are the known
// failure mode of Agents-for-js#584).
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package teamsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// Client is one user's Teams, in one personal conversation with the bot.
type Client struct {
	// Endpoint is the bot's messaging endpoint.
	Endpoint string
	// Channel signs the activities and records the bot's replies.
	Channel *channel.Server
	// Entra issues the user's SSO tokens.
	Entra *entra.Server
	// User is the signed-in user.
	User entra.User
	// AppID is the bot's app id.
	AppID string
	// Tenant is the user's tenant.
	Tenant string
	// ConversationID is the personal chat's id.
	ConversationID string
	// ConversationType is "personal" (New's default), "groupChat" or "channel"; InGroup sets it.
	ConversationType string
	// ChannelID is the activities' channel id: "msteams" (New's default), or the composite
	// "msteams:COPILOT" Microsoft 365 Copilot sends (Agents-for-net#827).
	ChannelID string
	// HTTP sends the activities.
	HTTP *http.Client
}

// New returns a client for user in a fresh personal conversation.
func New(endpoint string, ch *channel.Server, e *entra.Server, user entra.User, appID string) *Client {
	return &Client{Endpoint: endpoint, Channel: ch, Entra: e, User: user, AppID: appID, Tenant: e.Tenant,
		ConversationID: "a:" + uuid.NewString(), ConversationType: "personal", ChannelID: "msteams", HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Result is the bot's HTTP answer to one activity.
type Result struct {
	Status int
	Body   map[string]any
}

// Activity builds an activity from the user in this conversation.
func (c *Client) Activity(typ string) map[string]any {
	return map[string]any{
		"type": typ, "id": uuid.NewString(), "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"serviceUrl": c.Channel.ServiceURL, "channelId": c.ChannelID,
		"from":         map[string]any{"id": c.UserID(), "name": c.User.Name, "aadObjectId": c.User.ObjectID},
		"recipient":    map[string]any{"id": "28:" + c.AppID, "name": "onbehalf"},
		"conversation": c.conversation(),
		"channelData":  map[string]any{"tenant": map[string]any{"id": c.Tenant}},
		"locale":       "en-US",
	}
}

func (c *Client) conversation() map[string]any {
	conv := map[string]any{"id": c.ConversationID, "conversationType": c.ConversationType, "tenantId": c.Tenant}
	if c.ConversationType != "personal" {
		conv["isGroup"] = true
	}
	return conv
}

// InGroup moves the client into a shared conversation (conversationType "groupChat" or
// "channel") with the given id, as one member among others.
func (c *Client) InGroup(conversationID, conversationType string) *Client {
	c.ConversationID, c.ConversationType = conversationID, conversationType
	return c
}

// UserID is the user's channel id, "29:{object id}".
func (c *Client) UserID() string { return "29:" + c.User.ObjectID }

// Seen is what this user sees of the bot's messages in the conversation: ordinary messages,
// and targeted messages addressed to this user (channel.Server.SeenBy).
func (c *Client) Seen() []channel.Recorded { return c.Channel.SeenBy(c.ConversationID, c.UserID()) }

// Post sends an activity with a fresh channel token.
func (c *Client) Post(ctx context.Context, act map[string]any) (Result, error) {
	body, _ := json.Marshal(act)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Channel.Mint(channel.TokenOptions{Audience: c.AppID}))
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := Result{Status: resp.StatusCode}
	_ = json.Unmarshal(data, &r.Body)
	return r, nil
}

// Say sends a text message.
func (c *Client) Say(ctx context.Context, text string) (Result, error) {
	act := c.Activity("message")
	act["text"] = text
	return c.Post(ctx, act)
}

// Invoke sends an invoke activity.
func (c *Client) Invoke(ctx context.Context, name string, value any) (Result, error) {
	act := c.Activity("invoke")
	act["name"] = name
	act["value"] = value
	return c.Post(ctx, act)
}

// Replies returns what the bot sent to this conversation.
func (c *Client) Replies() []channel.Recorded {
	var out []channel.Recorded
	for _, r := range c.Channel.Recorded() {
		if r.ConversationID == c.ConversationID {
			out = append(out, r)
		}
	}
	return out
}

// WaitReplies waits until the bot has sent at least n activities to this conversation.
func (c *Client) WaitReplies(ctx context.Context, n int) ([]channel.Recorded, error) {
	_, err := c.Channel.WaitFor(ctx, func([]channel.Recorded) bool { return len(c.Replies()) >= n })
	return c.Replies(), err
}

// OAuthCard is the part of the bot's sign-in card a Teams client acts on.
type OAuthCard struct {
	Text                  string
	ConnectionName        string
	ExchangeID            string
	ExchangeURI           string
	SignInLink            string
	HasExchangeResource   bool
	FromReplyToActivityID string
}

// ErrNoCard means the bot sent no OAuthCard to this conversation.
var ErrNoCard = errors.New("no OAuthCard from the bot")

// LastOAuthCard returns the newest OAuthCard the bot sent to this conversation that this user
// sees.
func (c *Client) LastOAuthCard() (OAuthCard, error) {
	rep := c.Seen()
	for i := len(rep) - 1; i >= 0; i-- {
		atts, _ := rep[i].Activity["attachments"].([]any)
		for _, a := range atts {
			m, _ := a.(map[string]any)
			if m["contentType"] != "application/vnd.microsoft.card.oauth" {
				continue
			}
			content, _ := m["content"].(map[string]any)
			card := OAuthCard{FromReplyToActivityID: rep[i].ActivityID}
			card.Text, _ = content["text"].(string)
			card.ConnectionName, _ = content["connectionName"].(string)
			if ter, ok := content["tokenExchangeResource"].(map[string]any); ok {
				card.HasExchangeResource = true
				card.ExchangeID, _ = ter["id"].(string)
				card.ExchangeURI, _ = ter["uri"].(string)
			}
			if btns, ok := content["buttons"].([]any); ok && len(btns) > 0 {
				b, _ := btns[0].(map[string]any)
				card.SignInLink, _ = b["value"].(string)
			}
			return card, nil
		}
	}
	return OAuthCard{}, ErrNoCard
}

// ExchangeSSOWithConsent answers the newest OAuthCard as ExchangeSSO does and, when the bot
// answers 412 (consent or interaction needed), lets the user act — consent is called with the
// card, for example to open its sign-in link — and then retries the exchange once, from one
// client, with the same exchange id and a fresh SSO token, as Teams does (Agents-for-net
// OAuthFlow.cs: a 412 "will cause Teams to get Consent and send another signin/tokenExchange";
// a 400 makes Teams stop, so nothing is retried then). retry is nil when no 412 came.
func (c *Client) ExchangeSSOWithConsent(ctx context.Context, clients int, opts entra.SSOOptions, consent func(OAuthCard) error) (first []Result, retry *Result, err error) {
	card, err := c.LastOAuthCard()
	if err != nil {
		return nil, nil, err
	}
	first, err = c.ExchangeSSO(ctx, clients, opts)
	if err != nil {
		return first, nil, err
	}
	if !slices.ContainsFunc(first, func(r Result) bool { return r.Status == http.StatusPreconditionFailed }) {
		return first, nil, nil
	}
	if err := consent(card); err != nil {
		return first, nil, fmt.Errorf("the user's consent: %w", err)
	}
	if opts.AppID == "" {
		opts.AppID = c.AppID
	}
	r, err := c.Invoke(ctx, "signin/tokenExchange", map[string]any{
		"id": card.ExchangeID, "connectionName": card.ConnectionName, "token": c.Entra.MintSSOToken(c.User, opts),
	})
	return first, &r, err
}

// ExchangeSSO answers the newest OAuthCard as Teams does: `clients` concurrent
// signin/tokenExchange invokes with the same exchange id and a fresh SSO token per client.
// opts shapes the SSO token (wrong audience, expired, another user …).
func (c *Client) ExchangeSSO(ctx context.Context, clients int, opts entra.SSOOptions) ([]Result, error) {
	card, err := c.LastOAuthCard()
	if err != nil {
		return nil, err
	}
	if !card.HasExchangeResource {
		return nil, fmt.Errorf("the OAuthCard has no tokenExchangeResource: Teams would not attempt SSO")
	}
	if opts.AppID == "" {
		opts.AppID = c.AppID
	}
	results := make([]Result, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := c.Entra.MintSSOToken(c.User, opts)
			results[i], errs[i] = c.Invoke(ctx, "signin/tokenExchange", map[string]any{
				"id": card.ExchangeID, "connectionName": card.ConnectionName, "token": tok,
			})
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// ActionResult is the bot's answer to an adaptiveCard/action invoke: HTTP 200 whose body is
// {statusCode, type, value} (msteams-docs Universal-actions-for-adaptive-cards).
type ActionResult struct {
	HTTPStatus int
	StatusCode int
	Type       string
	Value      any
}

// Text is the value of a message answer, or the JSON of any other value.
func (r ActionResult) Text() string {
	if s, ok := r.Value.(string); ok {
		return s
	}
	b, _ := json.Marshal(r.Value)
	return string(b)
}

// Login is the OAuthCard of a login request (statusCode 401, type loginRequest).
func (r ActionResult) Login() (OAuthCard, bool) {
	if r.StatusCode != http.StatusUnauthorized || r.Type != "application/vnd.microsoft.activity.loginRequest" {
		return OAuthCard{}, false
	}
	content, _ := r.Value.(map[string]any)
	var card OAuthCard
	card.Text, _ = content["text"].(string)
	card.ConnectionName, _ = content["connectionName"].(string)
	if ter, ok := content["tokenExchangeResource"].(map[string]any); ok {
		card.HasExchangeResource = true
		card.ExchangeID, _ = ter["id"].(string)
		card.ExchangeURI, _ = ter["uri"].(string)
	}
	if btns, ok := content["buttons"].([]any); ok && len(btns) > 0 {
		b, _ := btns[0].(map[string]any)
		card.SignInLink, _ = b["value"].(string)
	}
	return card, card.ConnectionName != "" && card.SignInLink != ""
}

// Execute sends the adaptiveCard/action invoke a click on an Action.Execute button sends:
// value {action {type, id, verb, data}, trigger}, plus extra fields of a retry (authentication,
// state).
func (c *Client) Execute(ctx context.Context, verb string, data map[string]any, extra map[string]any) (ActionResult, error) {
	value := map[string]any{
		"action":  map[string]any{"type": "Action.Execute", "id": uuid.NewString(), "verb": verb, "data": data},
		"trigger": "manual",
	}
	for k, v := range extra {
		value[k] = v
	}
	r, err := c.Invoke(ctx, "adaptiveCard/action", value)
	if err != nil {
		return ActionResult{}, err
	}
	out := ActionResult{HTTPStatus: r.Status, Type: fmt.Sprint(r.Body["type"]), Value: r.Body["value"]}
	if n, ok := r.Body["statusCode"].(float64); ok {
		out.StatusCode = int(n)
	}
	return out, nil
}

// ExecuteSignedIn clicks the button as Teams does across a sign-in: when the bot answers with a
// login request that carries a tokenExchangeResource, Teams obtains the user's SSO token and
// sends the same action again with authentication {id, connectionName, token}
// (sso-adaptive-cards-universal-action.md). opts shapes that token. It returns every answer
// in order.
func (c *Client) ExecuteSignedIn(ctx context.Context, verb string, data map[string]any, opts entra.SSOOptions) ([]ActionResult, error) {
	first, err := c.Execute(ctx, verb, data, nil)
	if err != nil {
		return nil, err
	}
	out := []ActionResult{first}
	card, ok := first.Login()
	if !ok || !card.HasExchangeResource {
		return out, nil
	}
	if opts.AppID == "" {
		opts.AppID = c.AppID
	}
	second, err := c.Execute(ctx, verb, data, map[string]any{"authentication": map[string]any{
		"id": card.ExchangeID, "connectionName": card.ConnectionName, "token": c.Entra.MintSSOToken(c.User, opts),
	}})
	return append(out, second), err
}

// Search sends the composeExtension/query a search in the compose box sends: value {commandId,
// parameters [{name "query", value}], queryOptions}, plus extra fields of a reissued query
// (authentication, state). It returns the HTTP status and the answer's composeExtension.
func (c *Client) Search(ctx context.Context, commandID, words string, extra map[string]any) (int, map[string]any, error) {
	value := map[string]any{"commandId": commandID,
		"parameters":   []any{map[string]any{"name": "query", "value": words}},
		"queryOptions": map[string]any{"skip": 0, "count": 25}}
	for k, v := range extra {
		value[k] = v
	}
	r, err := c.Invoke(ctx, "composeExtension/query", value)
	if err != nil {
		return 0, nil, err
	}
	ce, _ := r.Body["composeExtension"].(map[string]any)
	return r.Status, ce, nil
}

// SearchSignedIn searches as Teams does across SSO: when the bot answers silentAuth, Teams
// obtains the user's SSO token for the app (webApplicationInfo) and reissues the query with
// authentication {token} (msgex-sso-code.md). It returns the last answer.
func (c *Client) SearchSignedIn(ctx context.Context, commandID, words string, opts entra.SSOOptions) (int, map[string]any, error) {
	status, ce, err := c.Search(ctx, commandID, words, nil)
	if err != nil || ce["type"] != "silentAuth" {
		return status, ce, err
	}
	if opts.AppID == "" {
		opts.AppID = c.AppID
	}
	return c.Search(ctx, commandID, words, map[string]any{"authentication": map[string]any{"token": c.Entra.MintSSOToken(c.User, opts)}})
}
