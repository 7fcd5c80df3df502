package ldap

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// Limits on what a user may type; longer input is refused before anything is sent.
const (
	maxInput     = 200
	maxWords     = 6
	minWordBytes = 2
)

// ErrBadInput is user text the commands refuse (too long, too many words, not UTF-8, empty).
var ErrBadInput = errors.New("ldap: input refused")

// words splits user text into search words. Every word is later escaped (RFC 4515 section 3)
// as an assertion value; no user text ever becomes filter syntax.
func words(text string) ([]string, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrBadInput)
	}
	if hasControl(text) {
		return nil, fmt.Errorf("%w: control characters", ErrBadInput)
	}
	if len(text) > maxInput {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrBadInput, maxInput)
	}
	ws := strings.Fields(text)
	if len(ws) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadInput)
	}
	if len(ws) > maxWords {
		return nil, fmt.Errorf("%w: more than %d words", ErrBadInput, maxWords)
	}
	for _, w := range ws {
		if len(w) < minWordBytes {
			return nil, fmt.Errorf("%w: words need at least %d characters", ErrBadInput, minWordBytes)
		}
	}
	return ws, nil
}

// equality is (attr=value) with value escaped. attr comes from settings, never from users.
func equality(attr, value string) string {
	return "(" + attr + "=" + goldap.EscapeFilter(value) + ")"
}

// anyContains is (|(a1=*w*)(a2=*w*)…) for one escaped word.
func anyContains(attrs []string, w string) string {
	var b strings.Builder
	b.WriteString("(|")
	v := goldap.EscapeFilter(w)
	for _, a := range attrs {
		b.WriteString("(" + a + "=*" + v + "*)")
	}
	b.WriteString(")")
	return b.String()
}

// allWords is (&(objectClass=class)(|…w1…)(|…w2…)): every word must match one attribute.
func allWords(class string, attrs, ws []string) string {
	var b strings.Builder
	b.WriteString("(&")
	if class != "" {
		b.WriteString(equality("objectClass", class))
	}
	for _, w := range ws {
		b.WriteString(anyContains(attrs, w))
	}
	b.WriteString(")")
	return b.String()
}

// hasControl reports C0 controls and DEL. A NUL inside an assertion value is legal BER but
// servers written in C may cut the value there (slapd matched "bo\x00b" as "bo"), so such
// text is refused rather than escaped.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
