// Package mdtext makes the bot's message text safe for the renderers that show it: Microsoft
// Teams (a subset of Markdown plus XML/HTML tags in message text; learn.microsoft.com
// microsoftteams/platform/bots/how-to/format-your-bot-messages) and the Microsoft 365 Agents
// Playground (CommonMark + GFM through remark, raw HTML allowed: the client bundle of
// @microsoft/m365agentsplayground 0.2.28 renders textFormat "markdown" with remark-rehype
// allowDangerousHtml).
//
// The bot's own words are [Markdown]; anything else — text a user typed, a name or title from
// a back end, a placeholder such as <KEY-123> — goes through [Escape], [Code] or [Sprintf],
// which turn every character either renderer would read as markup into a character reference.
// CommonMark decodes character references into literal text and never treats them as
// delimiters (spec 0.31 §2.5, §6.2), and HTML shows them as the character, so the reader sees
// exactly what was typed.
package mdtext

import (
	"fmt"
	"strings"
)

// Markdown is message text the bot wrote itself, in the Markdown subset Teams renders. An
// untyped string constant converts to it implicitly; a computed string has to come through
// [Escape], [Code] or [Sprintf], so user text cannot reach a reply unescaped by accident.
type Markdown string

// String returns the text.
func (m Markdown) String() string { return string(m) }

// refs maps each character that CommonMark, GFM or HTML can read as markup to a numeric
// character reference.
var refs = map[rune]string{
	'&': "&amp;", '<': "&lt;", '>': "&gt;",
	'\\': "&#92;", '`': "&#96;", '*': "&#42;", '_': "&#95;", '~': "&#126;",
	'[': "&#91;", ']': "&#93;", '|': "&#124;",
}

// lineStart holds characters that open a block (list item, heading underline, thematic
// break) only at the start of a line.
var lineStart = map[rune]string{'-': "&#45;", '+': "&#43;", '=': "&#61;", '#': "&#35;"}

// Escape returns s as literal inline text: markup characters become character references,
// line breaks become spaces (so a value cannot start a list or heading of its own), and an
// ordered-list marker at the start ("1.") loses its meaning.
func Escape(s string) Markdown {
	var b strings.Builder
	b.Grow(len(s) + 8)
	atStart := true
	digits := false
	for _, r := range s {
		switch r {
		case '\r', '\n', '\t', '\v', '\f':
			r = ' '
		}
		if e, ok := refs[r]; ok {
			b.WriteString(e)
		} else if e, ok := lineStart[r]; ok && atStart {
			b.WriteString(e)
		} else if digits && (r == '.' || r == ')') {
			fmt.Fprintf(&b, "&#%d;", r)
		} else {
			b.WriteRune(r)
		}
		switch {
		case atStart && r == ' ':
			// leading space: still at the start of the line
		case atStart && r >= '0' && r <= '9':
			atStart, digits = false, true
		case digits && r >= '0' && r <= '9':
		default:
			atStart, digits = false, false
		}
	}
	return Markdown(b.String())
}

// Code returns s as an inline code span, for command words and placeholders a user may copy:
// the fence is one backtick longer than any run of backticks in s, and line breaks become
// spaces. Inside a code span neither renderer reads markup, so nothing else is escaped.
func Code(s string) Markdown {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', '\t', '\v', '\f':
			return ' '
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		return Escape(s)
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || (strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ")) {
		s = " " + s + " "
	}
	return Markdown(fence + s + fence)
}

// Sprintf formats like fmt.Sprintf, with format being the bot's own Markdown: every argument
// of type [Markdown] is inserted as it is, every other argument is formatted with its verb
// (%s, %q, %d …) and then escaped.
func Sprintf(format Markdown, args ...any) Markdown {
	wrapped := make([]any, len(args))
	for i, a := range args {
		if m, ok := a.(Markdown); ok {
			wrapped[i] = string(m)
			continue
		}
		wrapped[i] = escaped{a}
	}
	return Markdown(fmt.Sprintf(string(format), wrapped...))
}

// Join joins Markdown values with a separator written by the bot.
func Join(items []Markdown, sep Markdown) Markdown {
	s := make([]string, len(items))
	for i, m := range items {
		s[i] = string(m)
	}
	return Markdown(strings.Join(s, string(sep)))
}

// escaped formats its value with the caller's verb and flags, then escapes the result.
type escaped struct{ v any }

func (e escaped) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(Escape(fmt.Sprintf(fmt.FormatString(f, verb), e.v))))
}

// CodeBlock returns s as a fenced code block (Teams: preformatted text) on lines of its own:
// the fence is longer than any run of backticks in s, so s cannot close it early.
func CodeBlock(s string) Markdown {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return Markdown(fence + "\n" + strings.TrimRight(s, "\n") + "\n" + fence)
}
