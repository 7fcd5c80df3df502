package channel_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// The connector answers sends and replies as Teams does: 201 Created with the new message's
// id, or 202 Accepted with no body when the activity becomes several messages; updates name
// the updated activity and deletes answer 200.
func TestConnectorAnswersAsTheService(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	card := map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": map[string]any{"type": "AdaptiveCard"}}
	base := ch.ServiceURL + "v3/conversations/a:conv-1/activities"
	cases := []struct {
		name, method, url string
		activity          map[string]any
		status            int
		wantID            string // "" = no body; "*" = any non-empty id
	}{
		{"reply with text", http.MethodPost, base + "/act-1", map[string]any{"type": "message", "text": "hi"}, http.StatusCreated, "*"},
		{"send with text", http.MethodPost, base, map[string]any{"type": "message", "text": "hi"}, http.StatusCreated, "*"},
		{"reply with one card", http.MethodPost, base + "/act-1", map[string]any{"type": "message", "attachments": []any{card}}, http.StatusCreated, "*"},
		{"typing", http.MethodPost, base, map[string]any{"type": "typing"}, http.StatusCreated, "*"},
		{"reply with text and a card", http.MethodPost, base + "/act-1", map[string]any{"type": "message", "text": "hi", "attachments": []any{card}}, http.StatusAccepted, ""},
		{"send with two cards", http.MethodPost, base, map[string]any{"type": "message", "attachments": []any{card, card}}, http.StatusAccepted, ""},
		{"update", http.MethodPut, base + "/act-7", map[string]any{"type": "message", "text": "edited"}, http.StatusOK, "act-7"},
		{"delete", http.MethodDelete, base + "/act-7", nil, http.StatusOK, ""},
	}
	client := testenv.SharedCA().Client()
	ids := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.activity != nil {
				b, _ := json.Marshal(tc.activity)
				body = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(tc.method, tc.url, body)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.wantID == "" {
				if len(bytes.TrimSpace(data)) != 0 {
					t.Fatalf("body %q, want none", data)
				}
				return
			}
			var rr struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(data, &rr); err != nil || rr.ID == "" {
				t.Fatalf("body %q is not a ResourceResponse with an id", data)
			}
			if tc.wantID != "*" && rr.ID != tc.wantID {
				t.Fatalf("id %q, want %q", rr.ID, tc.wantID)
			}
			if tc.wantID == "*" && ids[rr.ID] {
				t.Fatalf("id %q was handed out twice", rr.ID)
			}
			ids[rr.ID] = true
		})
	}
}

// Targeted sends name their recipient, who must be in the group chat or channel; personal chats
// have none. A targeted message is seen by its recipient alone, an ordinary one by every member.
func TestTargetedMessagesReachOnlyTheirRecipient(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	ch.SetMembers("19:group", "29:alice", "29:bob")
	client := testenv.SharedCA().Client()
	post := func(conv, convType, recipient string, targeted bool) int {
		act := map[string]any{"type": "message", "text": "for " + recipient,
			"conversation": map[string]any{"id": conv, "conversationType": convType}}
		if recipient != "" {
			act["recipient"] = map[string]any{"id": recipient}
		}
		u := ch.ServiceURL + "v3/conversations/" + conv + "/activities"
		if targeted {
			u += "?isTargetedActivity=true"
		}
		b, _ := json.Marshal(act)
		resp, err := client.Post(u, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for name, tc := range map[string]struct {
		conv, convType, recipient string
		status                    int
	}{
		"no recipient":  {"19:group", "groupChat", "", http.StatusBadRequest},
		"personal chat": {"a:personal", "personal", "29:alice", http.StatusBadRequest},
		"not a member":  {"19:group", "groupChat", "29:mallory", http.StatusBadRequest},
		"to Alice":      {"19:group", "groupChat", "29:alice", http.StatusCreated},
	} {
		if got := post(tc.conv, tc.convType, tc.recipient, true); got != tc.status {
			t.Errorf("%s: status %d, want %d", name, got, tc.status)
		}
	}
	if got := post("19:group", "groupChat", "29:bob", false); got != http.StatusCreated {
		t.Fatalf("ordinary send: %d", got)
	}
	if a, b := ch.SeenBy("19:group", "29:alice"), ch.SeenBy("19:group", "29:bob"); len(a) != 2 || len(b) != 1 || b[0].Targeted {
		t.Fatalf("Alice sees %d, Bob sees %d (want 2 and the ordinary 1)", len(a), len(b))
	}
	if len(ch.SeenBy("19:group", "29:mallory")) != 0 {
		t.Fatal("someone outside the chat sees its messages")
	}
}
