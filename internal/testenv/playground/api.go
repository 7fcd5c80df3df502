package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DeliveryError reports that the bot answered an activity the Playground
// delivered with a non-2xx status (for example 401 when it rejects the
// Playground's unauthenticated requests).
type DeliveryError struct {
	Exchange Exchange
}

func (e *DeliveryError) Error() string {
	body := strings.TrimSpace(string(e.Exchange.Response))
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return fmt.Sprintf("bot answered the %s activity with HTTP %d %s", e.Exchange.Type, e.Exchange.Status, body)
}

// ErrBotUnreachable is returned (wrapped) when the Playground reports it could
// not connect to the bot's endpoint.
var ErrBotUnreachable = errors.New("playground cannot connect to the bot")

// testConfig is the part of GET /_internal/v1/testConfig we use (mods 14583, 8206).
type testConfig struct {
	Config struct {
		TenantID string `json:"tenantId"`
		Bot      struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"bot"`
		CurrentUser struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			AADObjectID string `json:"aadObjectId"`
		} `json:"currentUser"`
		PersonalChat struct {
			ID string `json:"id"`
		} `json:"personalChat"`
	} `json:"config"`
}

func (p *Playground) loadConfig(ctx context.Context) error {
	// testConfig, unlike the UI's /_internal/v1/config, does not first wait up
	// to 15 s for the bot endpoint to answer.
	body, err := p.do(ctx, http.MethodGet, "/_internal/v1/testConfig", nil)
	if err != nil {
		return err
	}
	var c testConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("decode playground config: %w", err)
	}
	cfg := c.Config
	if cfg.PersonalChat.ID == "" || cfg.CurrentUser.ID == "" || cfg.Bot.ID == "" {
		return fmt.Errorf("playground config lacks chat, user or bot id: %s", body)
	}
	p.ConversationID = cfg.PersonalChat.ID
	p.TenantID = cfg.TenantID
	p.User = Account{ID: cfg.CurrentUser.ID, Name: cfg.CurrentUser.Name, AADObjectID: cfg.CurrentUser.AADObjectID}
	p.Bot = Account{ID: cfg.Bot.ID, Name: cfg.Bot.Name}
	p.ServiceURL = "http://localhost" + p.URL[strings.LastIndex(p.URL, ":"):] + "/_connector"
	return nil
}

// do sends a JSON request to the Playground's own API and returns the body of a
// 2xx answer.
func (p *Playground) do(ctx context.Context, method, path string, payload any) ([]byte, error) {
	var body io.Reader
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: playground answered %d: %s", method, path, resp.StatusCode, data)
	}
	return data, nil
}

// Install does what the Playground's UI does when the personal chat is first
// shown: it asks the Playground to tell the bot it was installed, which sends
// an installationUpdate (action "add"; msteams channel only) and a
// conversationUpdate whose membersAdded holds the user and the bot. It waits
// until the bot has answered the conversationUpdate and returns that exchange;
// a non-2xx answer to either activity is a *[DeliveryError].
func (p *Playground) Install(ctx context.Context) (Exchange, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	_, ex0, no0, _, _ := p.events.snapshot()
	if _, err := p.do(ctx, http.MethodPost, "/_debug/conversation/"+url.PathEscape(p.ConversationID)+"/installation", map[string]any{}); err != nil {
		return Exchange{}, fmt.Errorf("install bot: %w", err)
	}
	var install *Exchange
	x, err := p.awaitDelivery(ctx, len(ex0), len(no0), func(x Exchange) bool {
		if x.Type == "installationUpdate" {
			xc := x
			install = &xc
		}
		return x.Type == "conversationUpdate"
	})
	if err != nil {
		return x, fmt.Errorf("install bot: %w", err)
	}
	if install != nil && install.Status/100 != 2 {
		return *install, fmt.Errorf("install bot: %w", &DeliveryError{Exchange: *install})
	}
	return x, nil
}

// Send types text into the personal chat and presses send, as a user of the
// Playground's UI would. It returns once the Playground has delivered the
// resulting message activity to the bot and the bot has answered, with that
// exchange (whose Activity is exactly what the bot received). A non-2xx answer
// is a *[DeliveryError]; an unreachable bot wraps [ErrBotUnreachable]. Replies
// are read with [Playground.WaitForReply].
func (p *Playground) Send(ctx context.Context, text string) (Exchange, error) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	_, ex0, no0, _, _ := p.events.snapshot()
	msg := map[string]any{
		"from":       map[string]string{"id": p.User.ID},
		"text":       text,
		"textFormat": "plain",
	}
	if _, err := p.do(ctx, http.MethodPost, "/_conversation/v1/conversations/"+url.PathEscape(p.ConversationID)+"/messages", msg); err != nil {
		return Exchange{}, fmt.Errorf("send %q: %w", text, err)
	}
	x, err := p.awaitDelivery(ctx, len(ex0), len(no0), func(x Exchange) bool {
		return x.Type == "message" && x.Text == text
	})
	if err != nil {
		return x, fmt.Errorf("send %q: %w", text, err)
	}
	return x, nil
}

// awaitDelivery waits for the first ToBot exchange after index fromEx that
// match accepts (looking at every ToBot exchange in order), or for a warning
// notice after index fromNotice saying the bot is unreachable.
func (p *Playground) awaitDelivery(ctx context.Context, fromEx, fromNotice int, match func(Exchange) bool) (Exchange, error) {
	seen := fromEx
	for {
		_, exs, notices, streamErr, changed := p.events.snapshot()
		for ; seen < len(exs); seen++ {
			x := exs[seen]
			if x.Direction != ToBot || !match(x) {
				continue
			}
			if x.Status/100 != 2 {
				return x, &DeliveryError{Exchange: x}
			}
			return x, nil
		}
		for _, n := range notices[min(fromNotice, len(notices)):] {
			if n.Level == "warning" && (n.ConversationID == "" || n.ConversationID == p.ConversationID) {
				return Exchange{}, fmt.Errorf("%w: %s", ErrBotUnreachable, n.Text)
			}
		}
		if streamErr != nil {
			return Exchange{}, streamErr
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Exchange{}, fmt.Errorf("no delivery to the bot seen: %w", ctx.Err())
		}
	}
}

// WaitForReply waits for the first message from the bot, in arrival order,
// that match accepts and that no earlier WaitForReply call returned; messages
// that arrived before the call count. A nil match accepts any new or updated
// message (not typing indicators). It fails when ctx ends or the Playground
// stops.
func (p *Playground) WaitForReply(ctx context.Context, match func(Message) bool) (Message, error) {
	if match == nil {
		match = func(m Message) bool { return m.Action != ActionTyping }
	}
	for {
		m, ok, msgs, streamErr, changed := p.events.claimMessage(func(m Message) bool {
			return (m.FromID == p.Bot.ID || m.Action == ActionTyping) && match(m)
		})
		if ok {
			return m, nil
		}
		if streamErr != nil {
			return Message{}, fmt.Errorf("wait for reply: %w", streamErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("wait for reply (saw %d bot messages: %s): %w", len(msgs), summarize(msgs), ctx.Err())
		}
	}
}

func summarize(msgs []Message) string {
	var parts []string
	for _, m := range msgs {
		s := m.Action + " " + fmt.Sprintf("%q", m.Text)
		if len(m.Attachments) > 0 {
			s += fmt.Sprintf(" +%d attachments", len(m.Attachments))
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// WaitForReplyTo waits for the bot's reply to the activity activityID (the
// ActivityID of the [Exchange] that [Playground.Send] returned): the first
// message the bot sent with that replyToId, as the chat shows it. Like
// WaitForReply it does not return the same message twice.
func (p *Playground) WaitForReplyTo(ctx context.Context, activityID string) (Message, error) {
	x, err := p.WaitForExchange(ctx, func(x Exchange) bool {
		if x.Direction != FromBot || x.Type != "message" {
			return false
		}
		var a struct {
			ReplyToID string `json:"replyToId"`
		}
		return x.Decode(&a) == nil && a.ReplyToID == activityID
	})
	if err != nil {
		return Message{}, fmt.Errorf("wait for the reply to %s: %w", activityID, err)
	}
	if x.Status/100 != 2 {
		return Message{}, fmt.Errorf("wait for the reply to %s: the connector answered %d: %s", activityID, x.Status, x.Response)
	}
	return p.WaitForReply(ctx, func(m Message) bool { return m.ID == x.ActivityID })
}

// WaitForExchange waits for the first exchange between the Playground and the
// bot, in arrival order since start, that match accepts. Use it to inspect what
// the bot sent the connector (Direction FromBot) or received (ToBot).
func (p *Playground) WaitForExchange(ctx context.Context, match func(Exchange) bool) (Exchange, error) {
	for {
		_, exs, _, streamErr, changed := p.events.snapshot()
		for _, x := range exs {
			if match(x) {
				return x, nil
			}
		}
		if streamErr != nil {
			return Exchange{}, fmt.Errorf("wait for exchange: %w", streamErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Exchange{}, fmt.Errorf("wait for exchange (saw %d): %w", len(exs), ctx.Err())
		}
	}
}

// Messages returns every message event the bot caused so far, in order.
func (p *Playground) Messages() []Message {
	m, _, _, _, _ := p.events.snapshot()
	return m
}

// Exchanges returns every exchange between the Playground and the bot so far,
// in order.
func (p *Playground) Exchanges() []Exchange {
	_, x, _, _, _ := p.events.snapshot()
	return x
}

// Notices returns the Playground's non-exchange log lines so far, in order.
func (p *Playground) Notices() []Notice {
	_, _, n, _, _ := p.events.snapshot()
	return n
}
