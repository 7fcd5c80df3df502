package bot_test

import (
	"context"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext/mdtexttest"
)

type recorder struct{ sent []*botframework.Activity }

func (r *recorder) Reply(_ context.Context, _ botframework.ConversationReference, _ string, act *botframework.Activity) (string, error) {
	r.sent = append(r.sent, act)
	return "1", nil
}

func (r *recorder) Send(_ context.Context, _ botframework.ConversationReference, act *botframework.Activity) (string, error) {
	r.sent = append(r.sent, act)
	return "1", nil
}

func say(t *testing.T, b *bot.Bot, rec *recorder, text string) string {
	t.Helper()
	rec.sent = nil
	act := &botframework.Activity{Type: botframework.TypeMessage, ID: "a1", Text: text, ChannelID: "msteams",
		Conversation: botframework.ConversationAccount{ID: "c1", ConversationType: "personal"}}
	if _, _, err := b.OnActivity(context.Background(), act); err != nil {
		t.Fatal(err)
	}
	if len(rec.sent) != 1 {
		t.Fatalf("%q: %d replies", text, len(rec.sent))
	}
	return rec.sent[0].Text
}

func noop(context.Context, *bot.Turn, string) error { return nil }

// help shows every usage exactly as written — placeholders such as <KEY-123> stay visible
// and nothing turns the rest of the list into code — and leaves out hidden commands.
func TestHelpRendersUsageAsWritten(t *testing.T) {
	rec := &recorder{}
	b := bot.New(rec, nil)
	b.Handle(bot.Command{Name: "jira", Usage: "jira <KEY-123>", Help: "Show a Jira issue, as you see it.", Run: noop})
	b.Handle(bot.Command{Name: "confluence page", Usage: "confluence page <id or link>", Help: "Show a page <b>now</b>.", Run: noop})
	b.Handle(bot.Command{Name: "signout", Usage: "signout [name|all]", Help: "Forget *all* your sign-ins.", Run: noop})
	b.Handle(bot.Command{Name: "code", Usage: "code <code>", Help: "Use `this`.", Run: noop})
	b.Handle(bot.Command{Name: "confluence", Help: "Confluence: search, or page <id or link>.", Run: noop, Hidden: true})

	text, elems := mdtexttest.Render(t, say(t, b, rec, "help"))
	for _, want := range []string{
		"code <code> — Use `this`.",
		"confluence page <id or link> — Show a page <b>now</b>.",
		"help — Show what I can do.",
		"jira <KEY-123> — Show a Jira issue, as you see it.",
		"signout [name|all] — Forget *all* your sign-ins.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("help lacks %q; shows:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Confluence: search") {
		t.Errorf("help lists the hidden command:\n%s", text)
	}
	// One list of five items, each usage one code span, and nothing else.
	if got := strings.Join(elems, ","); got != "p,ul,li,code,li,code,li,code,li,code,li,code" {
		t.Errorf("help produced elements %s", got)
	}
}

// An unknown command is quoted back as typed, whatever markup it holds.
func TestUnknownCommandQuotedAsTyped(t *testing.T) {
	rec := &recorder{}
	b := bot.New(rec, nil)
	for _, in := range []string{"<img src=x onerror=alert(1)>", "**bold** _it_", "`x` [a](http://e)"} {
		text, elems := mdtexttest.Render(t, say(t, b, rec, in))
		if !strings.Contains(text, "I don't know "+in+". Type help") {
			t.Errorf("%q answered %q", in, text)
		}
		if got := strings.Join(elems, ","); got != "p,code,strong" {
			t.Errorf("%q produced elements %s", in, got)
		}
	}
}
