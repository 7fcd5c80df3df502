// Package cards builds Adaptive Cards (schema 1.5, the version Teams renders) as plain JSON
// values. Source: adaptivecards.io/explorer and learn.microsoft.com
// microsoftteams/platform/task-modules-and-cards/cards/cards-reference.
package cards

import (
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/internal/botframework"
)

// ContentType is the attachment content type of an Adaptive Card.
const ContentType = "application/vnd.microsoft.card.adaptive"

// Fact is one row of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// New returns a card with the given body elements.
func New(body ...map[string]any) map[string]any {
	return map[string]any{
		"type":    "AdaptiveCard",
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"version": "1.5",
		"body":    body,
	}
}

// WithActions adds actions to a card.
func WithActions(card map[string]any, actions ...map[string]any) map[string]any {
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return card
}

// Attachment wraps a card for an activity.
func Attachment(card map[string]any) botframework.Attachment {
	return botframework.Attachment{ContentType: ContentType, Content: card}
}

// Heading is a large bold text block.
func Heading(s string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": s, "size": "Large", "weight": "Bolder", "wrap": true}
}

// Bold is a bold text block.
func Bold(s string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": s, "weight": "Bolder", "wrap": true, "spacing": "Medium"}
}

// Text is a wrapping text block; subtle ones are de-emphasised.
func Text(s string, subtle bool) map[string]any {
	m := map[string]any{"type": "TextBlock", "text": s, "wrap": true}
	if subtle {
		m["isSubtle"] = true
		m["spacing"] = "None"
	}
	return m
}

// Untrusted text — a mail subject, a file name, words the user typed — goes into a
// RichTextBlock's TextRun, which Adaptive Cards never read as Markdown (adaptivecards.io
// schema explorer, TextRun.text: "Markdown is not supported"; Teams reads Markdown in
// TextBlock and FactSet only: msteams-docs cards-format.md), so it cannot turn into a link or
// formatting. TextBlock is for the bot's own words.

// PlainHeading is untrusted text as a large bold line.
func PlainHeading(s string) map[string]any {
	return plain(s, map[string]any{"size": "Large", "weight": "Bolder"}, nil)
}

// PlainBold is untrusted text as a bold line.
func PlainBold(s string) map[string]any {
	return plain(s, map[string]any{"weight": "Bolder"}, map[string]any{"spacing": "Medium"})
}

// PlainText is untrusted text as a line; subtle ones are de-emphasised.
func PlainText(s string, subtle bool) map[string]any {
	if subtle {
		return plain(s, map[string]any{"isSubtle": true}, map[string]any{"spacing": "None"})
	}
	return plain(s, nil, nil)
}

// PlainLink is untrusted text that opens url when selected, followed by the bot's own suffix;
// url must be https, otherwise the text is shown without a link.
func PlainLink(text, url, suffix string) map[string]any {
	run := map[string]any{"type": "TextRun", "text": text}
	if strings.HasPrefix(url, "https://") {
		run["selectAction"] = map[string]any{"type": "Action.OpenUrl", "url": url}
	}
	inlines := []any{run}
	if suffix != "" {
		inlines = append(inlines, map[string]any{"type": "TextRun", "text": suffix, "isSubtle": true})
	}
	return map[string]any{"type": "RichTextBlock", "inlines": inlines}
}

func plain(s string, runStyle, blockStyle map[string]any) map[string]any {
	run := map[string]any{"type": "TextRun", "text": s}
	for k, v := range runStyle {
		run[k] = v
	}
	block := map[string]any{"type": "RichTextBlock", "inlines": []any{run}}
	for k, v := range blockStyle {
		block[k] = v
	}
	return block
}

// Facts is a FactSet.
func Facts(f ...Fact) map[string]any {
	if f == nil {
		f = []Fact{}
	}
	return map[string]any{"type": "FactSet", "facts": f}
}

// OpenURL is an Action.OpenUrl.
func OpenURL(title, url string) map[string]any {
	return map[string]any{"type": "Action.OpenUrl", "title": title, "url": url}
}

// Truncate shortens s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
