package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// activity is the part of a Bot Framework activity the echo bot reads.
type activity struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Text         string          `json:"text"`
	ChannelID    string          `json:"channelId"`
	ServiceURL   string          `json:"serviceUrl"`
	From         account         `json:"from"`
	Recipient    account         `json:"recipient"`
	Conversation conversation    `json:"conversation"`
	MembersAdded []account       `json:"membersAdded"`
	ChannelData  json.RawMessage `json:"channelData"`
}

type account struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	AADObjectID string `json:"aadObjectId,omitempty"`
}

type conversation struct {
	ID               string `json:"id"`
	ConversationType string `json:"conversationType"`
	TenantID         string `json:"tenantId"`
}

// received is one request the echo bot got.
type received struct {
	Header   http.Header
	Activity activity
}

// echoBot is a minimal bot: it echoes messages through the connector at the
// activity's serviceUrl, sends a card for "card", welcomes on install, and
// answers "reject" with 401 the way a bot refusing an unauthenticated caller would.
type echoBot struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	errors []error
}

func startEchoBot(t testing.TB) *echoBot {
	b := &echoBot{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/messages", b.serve)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		b.srv.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, err := range b.errors {
			t.Errorf("echo bot: %v", err)
		}
	})
	return b
}

func (b *echoBot) endpoint() string { return b.srv.URL + "/api/messages" }

func (b *echoBot) serve(w http.ResponseWriter, r *http.Request) {
	var a activity
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		http.Error(w, "bad activity", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.got = append(b.got, received{Header: r.Header.Clone(), Activity: a})
	b.mu.Unlock()

	var reply map[string]any
	path := "/v3/conversations/" + url.PathEscape(a.Conversation.ID) + "/activities"
	switch {
	case a.Type == "message" && a.Text == "reject":
		w.WriteHeader(http.StatusUnauthorized)
		return
	case a.Type == "message" && a.Text == "card":
		reply = map[string]any{"type": "message", "attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{"type": "AdaptiveCard", "version": "1.4",
				"body": []any{map[string]any{"type": "TextBlock", "text": "card body"}}},
		}}}
		path += "/" + url.PathEscape(a.ID)
	case a.Type == "message":
		reply = map[string]any{"type": "message", "text": "echo: " + a.Text}
		path += "/" + url.PathEscape(a.ID)
	case a.Type == "conversationUpdate" && addsMe(a):
		// A proactive message (not a reply), like a welcome.
		reply = map[string]any{"type": "message", "text": "welcome"}
	}
	if reply != nil {
		reply["from"], reply["recipient"], reply["conversation"] = a.Recipient, a.From, a.Conversation
		reply["replyToId"] = a.ID
		if err := b.post(r.Context(), a.ServiceURL+path, reply); err != nil {
			b.mu.Lock()
			b.errors = append(b.errors, err)
			b.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

func addsMe(a activity) bool {
	for _, m := range a.MembersAdded {
		if m.ID == a.Recipient.ID {
			return true
		}
	}
	return false
}

func (b *echoBot) post(ctx context.Context, u string, body any) error {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to connector: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("connector answered %d to %s", resp.StatusCode, u)
	}
	return nil
}

// lastOfType returns the last request of that activity type the bot got.
func (b *echoBot) lastOfType(typ string) (received, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.got) - 1; i >= 0; i-- {
		if b.got[i].Activity.Type == typ {
			return b.got[i], true
		}
	}
	return received{}, false
}

func TestPlaygroundDrivesBot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Agents Playground (Node.js); skipped with -short")
	}
	bot := startEchoBot(t)
	p := Start(t, bot.endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("install welcomes the user", func(t *testing.T) {
		x, err := p.Install(ctx)
		if err != nil {
			t.Fatalf("Install: %v", err)
		}
		var a activity
		if err := x.Decode(&a); err != nil {
			t.Fatal(err)
		}
		if !addsMe(a) {
			t.Errorf("conversationUpdate membersAdded %+v lacks the bot %q", a.MembersAdded, a.Recipient.ID)
		}
		if _, ok := bot.lastOfType("installationUpdate"); !ok {
			t.Error("bot got no installationUpdate")
		}
		m, err := p.WaitForReply(ctx, func(m Message) bool { return m.Text == "welcome" })
		if err != nil {
			t.Fatal(err)
		}
		if m.ConversationID != p.ConversationID || m.FromID != p.Bot.ID {
			t.Errorf("welcome shown in %q from %q, want %q from %q", m.ConversationID, m.FromID, p.ConversationID, p.Bot.ID)
		}
	})

	t.Run("message is echoed into the chat", func(t *testing.T) {
		sent, err := p.Send(ctx, "hello playground")
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		m, err := p.WaitForReplyTo(ctx, sent.ActivityID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != "echo: hello playground" || m.Action != ActionCreate {
			t.Errorf("reply = %s %q, want %s %q", m.Action, m.Text, ActionCreate, "echo: hello playground")
		}
	})

	t.Run("delivered activity looks like Teams", func(t *testing.T) {
		r, ok := bot.lastOfType("message")
		if !ok {
			t.Fatal("bot got no message")
		}
		a := r.Activity
		for _, c := range []struct{ field, got, want string }{
			{"channelId", a.ChannelID, "msteams"},
			{"serviceUrl", a.ServiceURL, p.ServiceURL},
			{"conversation.id", a.Conversation.ID, p.ConversationID},
			{"conversation.conversationType", a.Conversation.ConversationType, "personal"},
			{"conversation.tenantId", a.Conversation.TenantID, p.TenantID},
			{"from.id", a.From.ID, p.User.ID},
			{"from.aadObjectId", a.From.AADObjectID, p.User.AADObjectID},
			{"recipient.id", a.Recipient.ID, p.Bot.ID},
			{"Authorization header", r.Header.Get("Authorization"), ""},
			{"x-ms-agents-playground header", r.Header.Get("X-Ms-Agents-Playground"), "true"},
		} {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
			}
		}
	})

	t.Run("card attachment reaches the chat", func(t *testing.T) {
		if _, err := p.Send(ctx, "card"); err != nil {
			t.Fatalf("Send: %v", err)
		}
		m, err := p.WaitForReply(ctx, func(m Message) bool { return len(m.Attachments) > 0 })
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Attachments[0].ContentType; got != "application/vnd.microsoft.card.adaptive" {
			t.Errorf("attachment content type = %q", got)
		}
		if !bytes.Contains(m.Attachments[0].Content, []byte("card body")) {
			t.Errorf("attachment content = %s, want the card body", m.Attachments[0].Content)
		}
		x, err := p.WaitForExchange(ctx, func(x Exchange) bool { return x.Direction == FromBot && x.ActivityID == m.ID })
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != http.StatusCreated {
			t.Errorf("connector answered the reply with %d, want 201", x.Status)
		}
	})

	t.Run("attached client sends and both clients see the reply", func(t *testing.T) {
		c, err := Connect(ctx, p.URL)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer c.Close()
		if c.ConversationID != p.ConversationID || c.ServiceURL != p.ServiceURL {
			t.Errorf("attached client sees chat %q at %q, want %q at %q", c.ConversationID, c.ServiceURL, p.ConversationID, p.ServiceURL)
		}
		if _, err := c.Send(ctx, "from a second window"); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want := func(m Message) bool { return m.Text == "echo: from a second window" }
		if _, err := c.WaitForReply(ctx, want); err != nil {
			t.Errorf("attached client: %v", err)
		}
		if _, err := p.WaitForReply(ctx, want); err != nil {
			t.Errorf("first client: %v", err)
		}
	})

	t.Run("bot refusal is reported", func(t *testing.T) {
		_, err := p.Send(ctx, "reject")
		var de *DeliveryError
		if !errors.As(err, &de) || de.Exchange.Status != http.StatusUnauthorized {
			t.Fatalf("Send(reject) error = %v, want a DeliveryError with 401", err)
		}
	})
}

func TestSendToUnreachableBot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Agents Playground (Node.js); skipped with -short")
	}
	// A port that was free a moment ago and now refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/api/messages"
	ln.Close()

	p := StartWithOptions(t, endpoint, Options{ConversationID: "fixed-chat-id"})
	if p.ConversationID != "fixed-chat-id" {
		t.Errorf("ConversationID = %q, want the one asked for", p.ConversationID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = p.Send(ctx, "anyone there?")
	if !errors.Is(err, ErrBotUnreachable) {
		t.Fatalf("Send error = %v, want ErrBotUnreachable", err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	p, err := launch(t.TempDir(), "http://127.0.0.1:1/api/messages", Options{Bin: "/bin/false", StartTimeout: 5 * time.Second})
	if p != nil {
		p.stop()
	}
	if err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Fatalf("launch(/bin/false) error = %v, want one saying it exited before listening", err)
	}
}

func TestStartRejectsEmptyEndpoint(t *testing.T) {
	if _, err := launch(t.TempDir(), "", Options{Bin: "/bin/false"}); err == nil {
		t.Fatal("launch with no endpoint succeeded")
	}
}
