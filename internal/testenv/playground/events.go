package playground

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// Stream paths the Playground's web UI subscribes to (mod 29108).
const (
	conversationStreamPath = "/_ws_conversation/v1/conversations/stream"
	logStreamPath          = "/_ws/log/stream"
)

// Message actions pushed on the conversation stream (schema ActionType, mod 51358).
const (
	ActionCreate = "createMessage"
	ActionUpdate = "updateMessage"
	ActionTyping = "typing"
)

// Attachment is a card or file the bot sent, as the Playground shows it.
type Attachment struct {
	ContentType string          `json:"contentType"`
	Content     json.RawMessage `json:"content"`
}

// Message is something the bot made appear in the Playground's chat: a new
// message, an update of one, or a typing indicator — what the web UI renders.
type Message struct {
	// Action is ActionCreate, ActionUpdate or ActionTyping.
	Action string
	// ConversationID is the conversation it appeared in.
	ConversationID string
	// ID is the Playground's id for the message (the id the connector answered
	// the bot with); empty for typing.
	ID string
	// FromID is the sender's account id (the bot's).
	FromID string
	// Text and TextFormat are the message text and its format ("markdown" when
	// the bot gave none).
	Text       string
	TextFormat string
	// Attachments are cards and files, in order; AttachmentLayout is "list" or
	// "carousel".
	Attachments      []Attachment
	AttachmentLayout string
	// Timestamp is when the Playground stored it.
	Timestamp time.Time
}

// Direction says which way an [Exchange] went.
type Direction string

// Exchange directions, from the Playground's log labels (schema LabelType).
const (
	// ToBot is an activity the Playground POSTed to the bot's endpoint.
	ToBot Direction = "to-bot"
	// FromBot is a call the bot made to the Playground's mock connector.
	FromBot Direction = "from-bot"
)

// Exchange is one HTTP exchange between the Playground and the bot, as its
// inspector log records it (mod 41550).
type Exchange struct {
	Direction Direction
	// Type is the activity type ("message", "conversationUpdate", …).
	Type string
	// ConversationID is the activity's conversation.id, when it has one.
	ConversationID string
	// ActivityID is the activity id (ToBot) or the id the connector assigned
	// (FromBot).
	ActivityID string
	// Activity is the request body: the full activity as sent.
	Activity json.RawMessage
	// Status is the HTTP status of the answer (the bot's for ToBot, the mock
	// connector's for FromBot).
	Status int
	// Response is the answer's body, when there was one.
	Response json.RawMessage
	// Text is the activity text, if any.
	Text string
}

// Decode unmarshals the exchanged activity into v.
func (e Exchange) Decode(v any) error {
	if err := json.Unmarshal(e.Activity, v); err != nil {
		return fmt.Errorf("decode %s activity: %w", e.Type, err)
	}
	return nil
}

// Notice is a line the Playground shows in its log pane that is not an
// exchange, such as "the app is not connected" when the bot's endpoint refuses
// connections.
type Notice struct {
	ConversationID string
	Level          string
	Text           string
}

// eventLog collects what the two streams push and wakes waiters.
type eventLog struct {
	mu        sync.Mutex
	messages  []Message
	exchanges []Exchange
	notices   []Notice
	returned  map[int]bool // indexes of messages WaitForReply has returned
	streamErr error
	changed   chan struct{} // closed and replaced whenever something arrives
	conns     []*websocket.Conn
	closing   bool
}

func newEventLog() *eventLog {
	return &eventLog{changed: make(chan struct{}), returned: make(map[int]bool)}
}

// notifyLocked wakes all waiters; callers hold mu.
func (l *eventLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) connect(ctx context.Context, base string, procDone <-chan struct{}) error {
	for _, path := range []string{conversationStreamPath, logStreamPath} {
		wsURL := "ws" + strings.TrimPrefix(base, "http") + path
		cfg, err := websocket.NewConfig(wsURL, base)
		if err != nil {
			return fmt.Errorf("websocket config %s: %w", path, err)
		}
		conn, err := cfg.DialContext(ctx)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", wsURL, err)
		}
		l.mu.Lock()
		l.conns = append(l.conns, conn)
		l.mu.Unlock()
		go l.read(conn, path)
	}
	go func() {
		<-procDone
		l.fail(errors.New("playground process exited"))
	}()
	return nil
}

func (l *eventLog) close() {
	l.mu.Lock()
	l.closing = true
	conns := l.conns
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	l.fail(errors.New("playground stopped"))
}

func (l *eventLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streamErr == nil {
		l.streamErr = err
		l.notifyLocked()
	}
}

func (l *eventLog) read(conn *websocket.Conn, path string) {
	for {
		var raw []byte
		if err := websocket.Message.Receive(conn, &raw); err != nil {
			l.mu.Lock()
			closing := l.closing
			l.mu.Unlock()
			if !closing {
				l.fail(fmt.Errorf("playground stream %s ended: %w", path, err))
			}
			return
		}
		var err error
		if path == conversationStreamPath {
			err = l.addConversationEvent(raw)
		} else {
			err = l.addLogEvent(raw)
		}
		if err != nil {
			l.fail(err)
			return
		}
	}
}

// conversationEvent is the wire form of a conversation-stream push (mod 11041).
type conversationEvent struct {
	Action               string `json:"action"`
	ActionConversationID string `json:"actionConversationId"`
	Message              *struct {
		MessageID        string              `json:"messageId"`
		Timestamp        int64               `json:"timestamp"`
		From             struct{ ID string } `json:"from"`
		Text             string              `json:"text"`
		TextFormat       string              `json:"textFormat"`
		Attachments      []Attachment        `json:"attachments"`
		AttachmentLayout string              `json:"attachmentLayout"`
	} `json:"message"`
}

func (l *eventLog) addConversationEvent(raw []byte) error {
	var ev conversationEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return fmt.Errorf("decode conversation stream event: %w", err)
	}
	m := Message{Action: ev.Action, ConversationID: ev.ActionConversationID}
	if ev.Message != nil {
		m.ID = ev.Message.MessageID
		m.FromID = ev.Message.From.ID
		m.Text = ev.Message.Text
		m.TextFormat = ev.Message.TextFormat
		m.Attachments = ev.Message.Attachments
		m.AttachmentLayout = ev.Message.AttachmentLayout
		m.Timestamp = time.UnixMilli(ev.Message.Timestamp)
	}
	l.mu.Lock()
	l.messages = append(l.messages, m)
	l.notifyLocked()
	l.mu.Unlock()
	return nil
}

// logEvent is the wire form of a log-stream push (mods 95126, 41550).
type logEvent struct {
	LogAction string `json:"logAction"`
	Log       struct {
		Type           string `json:"type"` // "bot" for exchanges, "text" for notices
		ConversationID string `json:"conversationId"`
		ActivityName   string `json:"activityName"`
		MessageID      string `json:"messageId"`
		From           string `json:"from"`
		Level          string `json:"level"`
		DisplayText    string `json:"displayText"`
		Request        struct {
			Body json.RawMessage `json:"body"`
		} `json:"request"`
		Response struct {
			StatusCode int             `json:"statusCode"`
			Body       json.RawMessage `json:"body"`
		} `json:"response"`
	} `json:"log"`
}

// botAppLabel is how the Playground labels the bot in its log (schema LabelType.BotApp).
const botAppLabel = "User Application"

func (l *eventLog) addLogEvent(raw []byte) error {
	var ev logEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return fmt.Errorf("decode log stream event: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Log.Type {
	case "bot":
		x := Exchange{
			Direction:      ToBot,
			Type:           ev.Log.ActivityName,
			ConversationID: ev.Log.ConversationID,
			ActivityID:     ev.Log.MessageID,
			Activity:       ev.Log.Request.Body,
			Status:         ev.Log.Response.StatusCode,
			Response:       ev.Log.Response.Body,
			Text:           ev.Log.DisplayText,
		}
		if ev.Log.From == botAppLabel {
			x.Direction = FromBot
		}
		l.exchanges = append(l.exchanges, x)
	default:
		l.notices = append(l.notices, Notice{ConversationID: ev.Log.ConversationID, Level: ev.Log.Level, Text: ev.Log.DisplayText})
	}
	l.notifyLocked()
	return nil
}

// snapshot returns copies of what has arrived, the stream error if any, and a
// channel closed on the next change.
func (l *eventLog) snapshot() ([]Message, []Exchange, []Notice, error, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.messages...),
		append([]Exchange(nil), l.exchanges...),
		append([]Notice(nil), l.notices...),
		l.streamErr, l.changed
}

// claimMessage marks and returns the first message not returned before that
// accept takes; otherwise it reports what has arrived, the stream error and a
// channel closed on the next change.
func (l *eventLog) claimMessage(accept func(Message) bool) (Message, bool, []Message, error, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range l.messages {
		if !l.returned[i] && accept(m) {
			l.returned[i] = true
			return m, true, nil, nil, nil
		}
	}
	return Message{}, false, append([]Message(nil), l.messages...), l.streamErr, l.changed
}
