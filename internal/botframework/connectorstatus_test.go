package botframework_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// A reply or send answered 201 Created yields the new message's id; one answered 202 Accepted
// with no body (Teams splitting text and a card) succeeds with no id.
func TestConnectorReadsTheIDOfCreatedMessages(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	c := &botframework.Connector{HTTPClient: testenv.SharedCA().Client()}
	c.Trust(ch.ServiceURL)
	ref := botframework.ConversationReference{ServiceURL: ch.ServiceURL, ChannelID: "msteams",
		Conversation: botframework.ConversationAccount{ID: "a:conv-1"}, Bot: botframework.ChannelAccount{ID: "28:bot"}, User: botframework.ChannelAccount{ID: "29:u"}}
	ctx := context.Background()

	id, err := c.Reply(ctx, ref, "act-1", &botframework.Activity{Text: "hello"})
	if err != nil || id == "" {
		t.Fatalf("reply: id %q, err %v; want the id from 201 Created", id, err)
	}
	sent, err := c.Send(ctx, ref, &botframework.Activity{Text: "again"})
	if err != nil || sent == "" || sent == id {
		t.Fatalf("send: id %q (reply had %q), err %v; want a new id", sent, id, err)
	}
	card := botframework.Attachment{ContentType: "application/vnd.microsoft.card.adaptive", Content: map[string]any{"type": "AdaptiveCard"}}
	split, err := c.Reply(ctx, ref, "act-1", &botframework.Activity{Text: "sign in", Attachments: []botframework.Attachment{card}})
	if err != nil || split != "" {
		t.Fatalf("text and card: id %q, err %v; want success with no id (202 Accepted)", split, err)
	}
	if n := len(ch.Recorded()); n != 3 {
		t.Fatalf("recorded %d requests, want 3", n)
	}
}

// Only the statuses the Connector API defines count as success: 200, 201 or 202 for sends,
// replies and updates, 200 or 202 for deletes. Anything else, 2xx included, is an error the
// connector does not retry.
func TestConnectorSuccessStatuses(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		if r.Method != http.MethodDelete && status.Load() != http.StatusNoContent {
			_, _ = w.Write([]byte(`{"id":"1733000000000"}`))
		}
	}))
	defer srv.Close()
	c := &botframework.Connector{HTTPClient: srv.Client()}
	c.Trust(srv.URL) // loopback http: the local Playground's shape
	ref := botframework.ConversationReference{ServiceURL: srv.URL, Conversation: botframework.ConversationAccount{ID: "a:1"}}
	ctx := context.Background()
	ops := map[string]func() error{
		"reply":  func() error { _, err := c.Reply(ctx, ref, "act-1", &botframework.Activity{Text: "x"}); return err },
		"send":   func() error { _, err := c.Send(ctx, ref, &botframework.Activity{Text: "x"}); return err },
		"update": func() error { return c.Update(ctx, ref, "act-1", &botframework.Activity{Text: "x"}) },
		"delete": func() error { return c.Delete(ctx, ref, "act-1") },
	}
	for _, tc := range []struct {
		op     string
		status int
		ok     bool
	}{
		{"reply", 200, true}, {"reply", 201, true}, {"reply", 202, true}, {"reply", 204, false}, {"reply", 203, false},
		{"send", 200, true}, {"send", 201, true}, {"send", 202, true}, {"send", 204, false},
		{"update", 200, true}, {"update", 201, true}, {"update", 202, true}, {"update", 206, false},
		{"delete", 200, true}, {"delete", 202, true}, {"delete", 201, false}, {"delete", 204, false},
	} {
		status.Store(int32(tc.status))
		err := ops[tc.op]()
		if tc.ok && err != nil {
			t.Errorf("%s answered %d: %v, want success", tc.op, tc.status, err)
		}
		var apiErr *botframework.APIError
		if !tc.ok && (!errors.As(err, &apiErr) || apiErr.Status != tc.status) {
			t.Errorf("%s answered %d: %v, want an APIError with that status", tc.op, tc.status, err)
		}
	}
}

// A targeted activity goes out with ?isTargetedActivity=true to its recipient alone; one that
// names no recipient is refused before anything is sent, and a targeted message to a personal
// chat is refused by the channel and not shown.
func TestConnectorSendsTargetedMessages(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	ch.SetMembers("19:group", "29:alice", "29:bob")
	c := &botframework.Connector{HTTPClient: testenv.SharedCA().Client()}
	c.Trust(ch.ServiceURL)
	ref := botframework.ConversationReference{ServiceURL: ch.ServiceURL, ChannelID: "msteams",
		Conversation: botframework.ConversationAccount{ID: "19:group", ConversationType: "groupChat", IsGroup: true},
		Bot:          botframework.ChannelAccount{ID: "28:bot"}, User: botframework.ChannelAccount{ID: "29:alice"}}
	ctx := context.Background()
	if _, err := c.Reply(ctx, ref, "act-1", &botframework.Activity{Text: "only Alice", Targeted: true}); err != nil {
		t.Fatal(err)
	}
	if a, b := ch.SeenBy("19:group", "29:alice"), ch.SeenBy("19:group", "29:bob"); len(a) != 1 || len(b) != 0 || !a[0].Targeted {
		t.Fatalf("Alice sees %d, Bob sees %d; want 1 and 0", len(a), len(b))
	}
	noOne := ref
	noOne.User = botframework.ChannelAccount{}
	if _, err := c.Send(ctx, noOne, &botframework.Activity{Text: "to whom?", Targeted: true}); !errors.Is(err, botframework.ErrNoTargetRecipient) {
		t.Fatalf("targeted send without a recipient: %v", err)
	}
	personal := ref
	personal.Conversation = botframework.ConversationAccount{ID: "a:personal", ConversationType: "personal"}
	if _, err := c.Send(ctx, personal, &botframework.Activity{Text: "private", Targeted: true}); err == nil {
		t.Fatal("a targeted message to a personal chat was accepted")
	}
	if n := len(ch.Recorded()); n != 1 {
		t.Fatalf("recorded %d messages, want only the one to Alice", n)
	}
}

// Under CountDeliveries the Connector counts the messages the channel accepted (sends,
// replies, updates), not typing indicators nor refused messages: a queue worker reads it to
// know whether a failed job had already answered its user.
func TestConnectorCountsDeliveredMessages(t *testing.T) {
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if fail.Load() {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"BotNotInConversationRoster"}}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"1"}`))
	}))
	defer srv.Close()
	c := &botframework.Connector{HTTPClient: srv.Client()}
	c.Trust(srv.URL)
	ref := botframework.ConversationReference{ServiceURL: srv.URL, Conversation: botframework.ConversationAccount{ID: "a:1"}}
	ctx, n := botframework.CountDeliveries(context.Background())
	if err := c.Typing(ctx, ref); err != nil || n.Load() != 0 {
		t.Fatalf("typing: %v, counted %d", err, n.Load())
	}
	if _, err := c.Reply(ctx, ref, "act-1", &botframework.Activity{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, ref, &botframework.Activity{Text: "y"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, ref, "1", &botframework.Activity{Text: "z"}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 {
		t.Fatalf("counted %d, want 3", n.Load())
	}
	fail.Store(true)
	if _, err := c.Send(ctx, ref, &botframework.Activity{Text: "refused"}); err == nil || n.Load() != 3 {
		t.Fatalf("refused send: %v, counted %d", err, n.Load())
	}
	if _, err := c.Send(context.Background(), ref, &botframework.Activity{Text: "uncounted"}); err == nil {
		t.Fatal("want the refusal")
	}
}
