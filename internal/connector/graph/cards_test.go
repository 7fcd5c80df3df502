package graph

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const hostile = "[Reset your password](https://phish.example) **now** <b>x</b> _y_ `z`"

// walk calls f for every element of a card (body items, RichTextBlock inlines, selectActions).
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	case []map[string]any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

// A mail's subject, sender and preview, a file's name and what the user searched for are
// written by someone else: they appear as typed, never as a link or formatting.
func TestCardsShowOthersTextAsTyped(t *testing.T) {
	var m Message
	m.Subject, m.BodyPreview, m.WebLink = hostile, hostile, "https://outlook.example/m1"
	m.From.EmailAddress.Name = hostile
	m.ReceivedDateTime = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	cards := map[string]map[string]any{
		"mail":  MailCard(hostile, []Message{m}),
		"files": FilesCard(hostile, []DriveItem{{Name: hostile, WebURL: "javascript:alert(1)"}, {Name: hostile, WebURL: "https://files.example/f", Shared: true}}),
		"me":    ProfileCard(&Profile{DisplayName: hostile}),
	}
	for name, card := range cards {
		// Through JSON, as the channel sees it.
		raw, _ := json.Marshal(card)
		var v any
		_ = json.Unmarshal(raw, &v)
		runs := 0
		walk(v, func(el map[string]any) {
			text, _ := el["text"].(string)
			switch el["type"] {
			case "TextBlock":
				if strings.Contains(text, "phish.example") || strings.Contains(text, "<b>") {
					t.Errorf("%s: untrusted text in a Markdown TextBlock: %q", name, text)
				}
			case "TextRun":
				if strings.Contains(text, hostile) {
					runs++
				}
			case "Action.OpenUrl":
				if u, _ := el["url"].(string); !strings.HasPrefix(u, "https://") {
					t.Errorf("%s: link to %q", name, u)
				}
			}
		})
		if runs == 0 {
			t.Errorf("%s: the text is not shown as typed:\n%s", name, raw)
		}
	}
}
