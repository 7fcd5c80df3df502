package atlassian

import (
	"errors"
	"strings"
	"testing"
)

func TestSearchTextAndQuoting(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"payment timeout", `"payment timeout"`},
		{`a" OR project = X OR text ~ "b`, `"a OR project = X OR text b"`},
		{`back\slash`, `"back slash"`},
		{"tab\tand\nnewline", `"tab and newline"`},
		{"(unbalanced [brackets", `"unbalanced brackets"`},
		{"ünïcödé 日本", `"ünïcödé 日本"`},
	} {
		s, err := searchText(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := quoteString(s); got != tc.want {
			t.Errorf("%q → %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := quoteString(`say "hi" \ bye`); got != `"say \"hi\" \\ bye"` {
		t.Errorf("quoteString escapes: %s", got)
	}
	long, _ := searchText(strings.Repeat("x", 500))
	if len(long) != maxSearchRunes {
		t.Errorf("long search kept %d runes", len(long))
	}
	if _, err := searchText(` "*?" `); !errors.Is(err, ErrBadInput) {
		t.Errorf("operators only: %v", err)
	}
}

func TestPlainText(t *testing.T) {
	got := plainText("<p>Fish &amp; <b>chips</b></p>\n<p>@@@hl@@@today@@@endhl@@@</p>", 100)
	if got != "Fish & chips today" {
		t.Errorf("%q", got)
	}
	if got := plainText("one two three four five", 12); got != "one two…" {
		t.Errorf("cut: %q", got)
	}
}
