package atlassian

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSearchRunes bounds the user's search text; longer text is cut, not refused.
const maxSearchRunes = 200

// searchText prepares free text typed by a user for a JQL or CQL text clause. Characters
// that are full-text operators in both languages (the reserved list of "Search syntax for
// text fields", support.atlassian.com, and CQL's text operator) are replaced by spaces: the
// user means words, not operators, and an unbalanced one makes the server answer 400.
// Control characters go too. The result is then quoted by quoteString.
func searchText(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			b.WriteByte(' ')
		case strings.ContainsRune(`+-&|!(){}[]^~*?\:"'`, r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	t := strings.Join(strings.Fields(b.String()), " ")
	if utf8.RuneCountInString(t) > maxSearchRunes {
		t = string([]rune(t)[:maxSearchRunes])
	}
	if t == "" {
		return "", badInput("Tell me what to search for, for example \"jira search payment timeout\".")
	}
	return t, nil
}

// quoteString returns s as a double-quoted JQL/CQL string literal: backslash and double
// quote are backslash-escaped (JQL and CQL string escaping), so nothing the user typed can end
// the literal and add clauses.
func quoteString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var (
	tagRE       = regexp.MustCompile(`(?s)<[^>]*>`)
	highlightRE = regexp.MustCompile(`@@@(end)?hl@@@`)
)

// plainText turns Confluence HTML (or a search excerpt with highlight markers) into plain
// text of at most n runes, cut at a word boundary.
func plainText(s string, n int) string {
	s = highlightRE.ReplaceAllString(s, "")
	s = tagRE.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return cut + "…"
}
