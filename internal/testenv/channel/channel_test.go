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
