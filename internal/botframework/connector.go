package botframework

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Connector errors callers act on.
var (
	// ErrUntrustedServiceURL means the bot was asked to send to a serviceUrl that never arrived
	// in an authenticated activity; nothing is sent (and no token leaves the process).
	ErrUntrustedServiceURL = errors.New("serviceUrl did not arrive in an authenticated activity")
	// ErrBotNotInConversationRoster means the app is not installed for that user or
	// conversation (HTTP 403 BotNotInConversationRoster): install the app, then retry.
	ErrBotNotInConversationRoster = errors.New("the bot is not in the conversation roster: the Teams app is not installed for this user or conversation")
)

// TokenSource supplies the bot's own bearer token for the connector.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// APIError is a non-success answer from the connector.
type APIError struct {
	Op     string
	Status int
	Code   string
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("connector %s: HTTP %d %s", e.Op, e.Status, e.Code)
	}
	return fmt.Sprintf("connector %s: HTTP %d", e.Op, e.Status)
}

// Connector sends activities to a channel's connector service (bot-docs
// rest-api/bot-framework-rest-connector-api-reference.md):
//
//	reply   POST   {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}
//	send    POST   {serviceUrl}/v3/conversations/{conversationId}/activities
//	update  PUT    {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}
//	delete  DELETE {serviceUrl}/v3/conversations/{conversationId}/activities/{activityId}
//
// It only sends to serviceUrls registered with Trust (those that arrived in authenticated
// activities), retries 429 and 5xx with backoff honouring Retry-After, and is safe for
// concurrent use.
type Connector struct {
	// HTTPClient performs the requests.
	HTTPClient *http.Client
	// Tokens supplies the bot's bearer token; nil sends none (local anonymous mode).
	Tokens TokenSource
	// MaxRetries bounds retries of 429/5xx answers (default 3).
	MaxRetries int
	// MaxBackoff caps a single wait, including a server's Retry-After (default 10 s).
	MaxBackoff time.Duration
	// Sleep waits between retries; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error

	trusted sync.Map // normalized serviceUrl → struct{}
}

// Trust records a serviceUrl that arrived in an authenticated activity. One that is not a
// plain origin and path (CheckServiceURL) is never trusted.
func (c *Connector) Trust(serviceURL string) {
	if n := NormalizeServiceURL(serviceURL); n != "" {
		c.trusted.Store(n, struct{}{})
	}
}

// Trusted reports whether serviceURL may receive the bot's messages.
func (c *Connector) Trusted(serviceURL string) bool {
	n := NormalizeServiceURL(serviceURL)
	if n == "" {
		return false
	}
	_, ok := c.trusted.Load(n)
	return ok
}

// ResourceResponse is the connector's answer to a send: the new activity's id, empty when the
// channel accepted the activity without naming one (202 Accepted, e.g. Teams splitting text and
// cards into several messages).
type ResourceResponse struct {
	ID string `json:"id"`
}

// Reply sends act as a reply to the activity replyToID in the conversation of ref.
func (c *Connector) Reply(ctx context.Context, ref ConversationReference, replyToID string, act *Activity) (string, error) {
	c.address(ref, act)
	act.ReplyToID = replyToID
	p := "/v3/conversations/" + url.PathEscape(ref.Conversation.ID) + "/activities/" + url.PathEscape(replyToID)
	if err := targeted(act, &p); err != nil {
		return "", fmt.Errorf("connector reply: %w", err)
	}
	var rr ResourceResponse
	err := c.do(ctx, "reply", http.MethodPost, ref.ServiceURL, p, act, &rr)
	delivered(ctx, act, err)
	return rr.ID, err
}

// Send posts act as a new message to the conversation of ref (also used for proactive messages).
func (c *Connector) Send(ctx context.Context, ref ConversationReference, act *Activity) (string, error) {
	c.address(ref, act)
	p := "/v3/conversations/" + url.PathEscape(ref.Conversation.ID) + "/activities"
	if err := targeted(act, &p); err != nil {
		return "", fmt.Errorf("connector send: %w", err)
	}
	var rr ResourceResponse
	err := c.do(ctx, "send", http.MethodPost, ref.ServiceURL, p, act, &rr)
	delivered(ctx, act, err)
	return rr.ID, err
}

// Update replaces the activity activityID with act.
func (c *Connector) Update(ctx context.Context, ref ConversationReference, activityID string, act *Activity) error {
	c.address(ref, act)
	act.ID = activityID
	p := "/v3/conversations/" + url.PathEscape(ref.Conversation.ID) + "/activities/" + url.PathEscape(activityID)
	err := c.do(ctx, "update", http.MethodPut, ref.ServiceURL, p, act, nil)
	delivered(ctx, act, err)
	return err
}

type deliveriesKey struct{}

// CountDeliveries returns a context under which the Connector counts the messages (new,
// replies and updates; not typing indicators) the channel accepted, and the counter. A queue
// worker uses it to know whether a failed job had already answered its user.
func CountDeliveries(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, deliveriesKey{}, n), n
}

func delivered(ctx context.Context, act *Activity, err error) {
	if err == nil && act.Type == TypeMessage {
		NoteDelivered(ctx)
	}
}

// NoteDelivered counts one delivered message in ctx's counter (CountDeliveries), if any; a
// sender other than Connector calls it for each message the channel accepted.
func NoteDelivered(ctx context.Context) {
	if n, ok := ctx.Value(deliveriesKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}

// Delete removes the activity activityID.
func (c *Connector) Delete(ctx context.Context, ref ConversationReference, activityID string) error {
	p := "/v3/conversations/" + url.PathEscape(ref.Conversation.ID) + "/activities/" + url.PathEscape(activityID)
	return c.do(ctx, "delete", http.MethodDelete, ref.ServiceURL, p, nil, nil)
}

// Typing shows the typing indicator in the conversation of ref.
func (c *Connector) Typing(ctx context.Context, ref ConversationReference) error {
	_, err := c.Send(ctx, ref, &Activity{Type: TypeTyping})
	return err
}

// ErrNoTargetRecipient means a targeted activity names nobody to show it to.
var ErrNoTargetRecipient = errors.New("a targeted message needs a recipient")

// targeted marks the request of a targeted activity (msteams-docs targeted-messages.md: POST
// …/activities[/{id}]?isTargetedActivity=true, the recipient mandatory).
func targeted(act *Activity, path *string) error {
	if !act.Targeted {
		return nil
	}
	if act.Recipient.ID == "" {
		return ErrNoTargetRecipient
	}
	*path += "?isTargetedActivity=true"
	return nil
}

// address fills the routing fields of an outbound activity from the conversation reference.
func (c *Connector) address(ref ConversationReference, act *Activity) {
	if act.Type == "" {
		act.Type = TypeMessage
	}
	act.ChannelID = ref.ChannelID
	act.ServiceURL = ref.ServiceURL
	act.Conversation = ref.Conversation
	act.From = ref.Bot
	act.Recipient = ref.User
}

func (c *Connector) do(ctx context.Context, op, method, serviceURL, path string, body any, out any) error {
	if !c.Trusted(serviceURL) {
		return fmt.Errorf("connector %s: %w", op, ErrUntrustedServiceURL)
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("connector %s: encode activity: %w", op, err)
		}
	}
	target := strings.TrimRight(serviceURL, "/") + path
	maxRetries := c.MaxRetries
	if maxRetries == 0 {
		maxRetries = 3
	}
	for attempt := 0; ; attempt++ {
		status, code, retryAfter, err := c.once(ctx, op, method, target, payload, out)
		if err == nil {
			return nil
		}
		retryable := status == http.StatusTooManyRequests || status >= 500 || status == 0 && ctx.Err() == nil && !isPermanent(err)
		if !retryable || attempt >= maxRetries {
			if status == http.StatusForbidden && code == "BotNotInConversationRoster" {
				return fmt.Errorf("connector %s: %w", op, ErrBotNotInConversationRoster)
			}
			return err
		}
		if err := c.sleep(ctx, c.backoff(attempt, retryAfter)); err != nil {
			return fmt.Errorf("connector %s: %w", op, err)
		}
	}
}

// permanentError marks failures that retrying cannot fix (e.g. the bot's own token).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

func (c *Connector) once(ctx context.Context, op, method, target string, payload []byte, out any) (status int, code string, retryAfter time.Duration, err error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, "", 0, permanentError{fmt.Errorf("connector %s: %w", op, err)}
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if c.Tokens != nil {
		tok, err := c.Tokens.Token(ctx)
		if err != nil {
			return 0, "", 0, permanentError{fmt.Errorf("connector %s: bot token: %w", op, err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", 0, fmt.Errorf("connector %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if succeeded(method, resp.StatusCode) {
		if out != nil && len(bytes.TrimSpace(data)) > 0 {
			_ = json.Unmarshal(data, out) // the id is informative; an odd body is not a failure
		}
		return resp.StatusCode, "", 0, nil
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error.Code, parseRetryAfter(resp.Header.Get("Retry-After")),
		&APIError{Op: op, Status: resp.StatusCode, Code: e.Error.Code}
}

// succeeded reports whether status is a success answer to method. Sends, replies and updates
// answer 200, 201 or 202 with a ResourceResponse {"id"} — Teams answers 201 with the new
// message's id, or 202 with no body when it splits an activity (text and cards) into several
// messages; deletes answer 200 or 202 (botframework-sdk specs/botframework-protocol/
// botframework-channel.json; Agents-for-net ConversationsRestClient.cs). Any other status,
// 2xx included, is not a success.
func succeeded(method string, status int) bool {
	switch status {
	case http.StatusOK, http.StatusAccepted:
		return true
	case http.StatusCreated:
		return method != http.MethodDelete
	}
	return false
}

func (c *Connector) backoff(attempt int, retryAfter time.Duration) time.Duration {
	maxWait := c.MaxBackoff
	if maxWait == 0 {
		maxWait = 10 * time.Second
	}
	d := retryAfter
	if d <= 0 {
		d = time.Duration(200<<attempt) * time.Millisecond
	}
	return min(d, maxWait)
}

func (c *Connector) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads a Retry-After header in seconds or HTTP-date form.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}
