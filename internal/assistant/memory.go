package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Memory keeps the recent exchanges of one user in one conversation, so a follow-up ("and who
// is assigned?") has its context. Only the user's questions and the answers they were shown
// are kept — never tool output — and they expire.
type Memory interface {
	Load(ctx context.Context, t *bot.Turn) ([]Message, error)
	Save(ctx context.Context, t *bot.Turn, msgs []Message) error
	Forget(ctx context.Context, t *bot.Turn) error
}

// Defaults of StoreMemory.
const (
	DefaultMemoryTTL   = 2 * time.Hour
	DefaultMemoryTurns = 3
	memoryEntryMax     = 1000 // bytes kept of each question or answer
)

// StoreMemory keeps memory in the token store: sealed with the store's key, bound to the user's
// partition and to a row derived from the conversation id, so neither another user nor another
// conversation can read it.
type StoreMemory struct {
	Store *tokenstore.Store
	// User keys the turn's user from authenticated input (never from text).
	User func(act *botframework.Activity) (tokenstore.UserKey, error)
	// TTL is how long memory lasts after the last exchange (default DefaultMemoryTTL).
	TTL time.Duration
	// Turns is how many exchanges are kept (default DefaultMemoryTurns).
	Turns int
	Now   func() time.Time
}

var _ Memory = (*StoreMemory)(nil)

const memoryConnector = "assistant-memory"

func (m *StoreMemory) key(t *bot.Turn) (tokenstore.UserKey, tokenstore.TokenKey, error) {
	u, err := m.User(t.Activity)
	if err != nil {
		return tokenstore.UserKey{}, tokenstore.TokenKey{}, fmt.Errorf("assistant memory: %w", err)
	}
	return u, tokenstore.TokenKey{Connector: memoryConnector, Resource: t.Activity.Conversation.ID}, nil
}

func (m *StoreMemory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Load returns the kept exchanges, or none when there are none or they expired.
func (m *StoreMemory) Load(ctx context.Context, t *bot.Turn) ([]Message, error) {
	u, k, err := m.key(t)
	if err != nil {
		return nil, err
	}
	tok, err := m.Store.GetToken(ctx, u, k)
	if errors.Is(err, tokenstore.ErrNotFound) || errors.Is(err, tokenstore.ErrSignInNeeded) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("assistant memory: %w", err)
	}
	exp, err := time.Parse(time.RFC3339, tok.Extra["exp"])
	if err != nil || !m.now().Before(exp) {
		return nil, nil
	}
	var msgs []Message
	if json.Unmarshal([]byte(tok.Extra["m"]), &msgs) != nil {
		return nil, nil
	}
	return msgs, nil
}

// Save keeps the last Turns exchanges of msgs (user and assistant texts only).
func (m *StoreMemory) Save(ctx context.Context, t *bot.Turn, msgs []Message) error {
	u, k, err := m.key(t)
	if err != nil {
		return err
	}
	turns, ttl := m.Turns, m.TTL
	if turns <= 0 {
		turns = DefaultMemoryTurns
	}
	if ttl <= 0 {
		ttl = DefaultMemoryTTL
	}
	var kept []Message
	for _, msg := range msgs {
		if (msg.Role == "user" || msg.Role == "assistant") && msg.Content != "" && len(msg.ToolCalls) == 0 {
			c := msg.Content
			if len(c) > memoryEntryMax {
				c = c[:memoryEntryMax]
			}
			kept = append(kept, Message{Role: msg.Role, Content: c})
		}
	}
	if len(kept) > 2*turns {
		kept = kept[len(kept)-2*turns:]
	}
	b, _ := json.Marshal(kept)
	err = m.Store.PutToken(ctx, u, k, tokenstore.Token{Extra: map[string]string{"m": string(b), "exp": m.now().Add(ttl).UTC().Format(time.RFC3339)}})
	if err != nil {
		return fmt.Errorf("assistant memory: %w", err)
	}
	return nil
}

// Forget deletes the memory of this user in this conversation.
func (m *StoreMemory) Forget(ctx context.Context, t *bot.Turn) error {
	u, k, err := m.key(t)
	if err != nil {
		return err
	}
	if err := m.Store.DeleteToken(ctx, u, k); err != nil {
		return fmt.Errorf("assistant memory: %w", err)
	}
	return nil
}
