package mdtext_test

import (
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/mdtext/mdtexttest"
)

func render(t *testing.T, m mdtext.Markdown) (string, []string) {
	t.Helper()
	return mdtexttest.Render(t, string(m))
}

var typed = []string{
	"<b>bold</b>",
	"<script>alert(1)</script>",
	"<img src=x onerror=alert(1)>",
	"<KEY-123>",
	"<code>",
	"*star* and **strong**",
	"_under_ and __dunder__",
	"`tick` and ``double``",
	"~~strike~~",
	"[link](https://evil.example)",
	"![img](https://evil.example/x.png)",
	"<https://evil.example>",
	"a & b &amp; c &lt;",
	`back\slash \* \_`,
	"| a | b |",
	"1. first",
	"12) twelve",
	"- item",
	"+ item",
	"# heading",
	"> quote",
	"line one\n- line two\n===",
	"<at>Megan</at>",
	"PROJ-1 is fine",
}

// User text inside the bot's own sentence renders as typed: no element besides the paragraph,
// and the visible text is the input (line breaks shown as spaces).
func TestSprintfRendersUserTextAsTyped(t *testing.T) {
	for _, in := range typed {
		m := mdtext.Sprintf("You said %s, and **that** is all.", in)
		text, tags := render(t, m)
		want := "You said " + strings.ReplaceAll(in, "\n", " ") + ", and that is all."
		if text != want {
			t.Errorf("%q rendered as %q, want %q (markdown %q)", in, text, want, m)
		}
		if strings.Join(tags, ",") != "p,strong" {
			t.Errorf("%q produced elements %v, want only p,strong (markdown %q)", in, tags, m)
		}
	}
}

// A value at the very start of a message cannot open a list, heading or quote.
func TestEscapeAtLineStart(t *testing.T) {
	for _, in := range typed {
		text, tags := render(t, mdtext.Escape(in))
		if want := strings.ReplaceAll(in, "\n", " "); text != want {
			t.Errorf("%q rendered as %q", in, text)
		}
		if strings.Join(tags, ",") != "p" {
			t.Errorf("%q produced elements %v, want only p", in, tags)
		}
	}
}

// Code spans show their content literally, whatever backticks it holds.
func TestCodeSpan(t *testing.T) {
	for _, in := range append(typed, "`", "a``b", "` x `") {
		text, tags := render(t, mdtext.Code(in))
		if want := strings.ReplaceAll(in, "\n", " "); text != want {
			t.Errorf("Code(%q) rendered as %q (markdown %q)", in, text, mdtext.Code(in))
		}
		if strings.Join(tags, ",") != "p,code" {
			t.Errorf("Code(%q) produced %v", in, tags)
		}
	}
}

// The bot's own Markdown passes through; verbs still apply before escaping.
func TestSprintfVerbs(t *testing.T) {
	got := mdtext.Sprintf("%s: %q %d %s", mdtext.Markdown("**bold**"), "a*b", 42, mdtext.Code("<id>"))
	if want := mdtext.Markdown("**bold**: \"a&#42;b\" 42 `<id>`"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	text, tags := render(t, got)
	if text != `bold: "a*b" 42 <id>` || strings.Join(tags, ",") != "p,strong,code" {
		t.Errorf("rendered %q %v", text, tags)
	}
}
