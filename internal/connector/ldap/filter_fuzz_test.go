package ldap

import (
	"strings"
	"testing"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// FuzzFilterEscaping checks that user text can never become filter syntax. For any text:
//
//   - words either refuses it with ErrBadInput or returns exactly strings.Fields(text), every
//     word valid UTF-8 without control characters;
//   - the search filter built from those words compiles (go-ldap's RFC 4515 parser) to an AND of
//     ORs of substring filters, one OR per word, each with a single "any" part equal to the word,
//     on the configured attributes only — no extra clause, attribute or wildcard;
//   - an equality filter on any value, UTF-8 or not (values come from the directory as well as
//     from users), compiles to one equality match whose value is exactly that value.
func FuzzFilterEscaping(f *testing.F) {
	for _, s := range []string{
		"alice", "bob smith", "*)(uid=*", "*", "**", `\2a`, `\00`, "*)(|(objectClass=*)",
		"bob)(description=*", "(cn=*)", ")(", `\*`, "Zoë Ångström", "a\x00b", "x\xffy", "\ufffd",
		"a b c d e f g", "  padded  ", "cn=admin,dc=example", "#hash", "é*",
	} {
		f.Add(s)
	}
	attrs := []string{"cn", "mail", "uid"}
	f.Fuzz(func(t *testing.T, text string) {
		// Equality on an arbitrary value, even bytes that are not UTF-8 (directory-sourced values
		// are not filtered by words): every byte above 0x7f is escaped, so the value survives.
		checkEquality(t, "uid", text)

		ws, err := words(text)
		if err != nil {
			if !strings.Contains(err.Error(), ErrBadInput.Error()) {
				t.Fatalf("refusal %v does not wrap ErrBadInput", err)
			}
			return
		}
		if want := strings.Fields(text); strings.Join(ws, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("words(%q) = %q, want %q", text, ws, want)
		}
		for _, w := range ws {
			if !utf8.ValidString(w) || hasControl(w) || len(w) < minWordBytes {
				t.Fatalf("accepted word %q", w)
			}
		}
		filter := allWords("person", attrs, ws)
		p, err := goldap.CompileFilter(filter)
		if err != nil {
			// Refusing to compile would be safe (nothing is sent), but words let the text
			// through: the user would see an error for ordinary words.
			t.Fatalf("filter %q for %q does not compile: %v", filter, text, err)
		}
		if p.Tag != goldap.FilterAnd || len(p.Children) != 1+len(ws) {
			t.Fatalf("filter for %q is not an AND of class + %d words: %s", text, len(ws), describe(p))
		}
		checkEqualityPacket(t, p.Children[0], "objectClass", "person")
		for i, w := range ws {
			or := p.Children[i+1]
			if or.Tag != goldap.FilterOr || len(or.Children) != len(attrs) {
				t.Fatalf("word %q: not an OR over %d attributes: %s", w, len(attrs), describe(or))
			}
			for j, sub := range or.Children {
				if sub.Tag != goldap.FilterSubstrings || len(sub.Children) != 2 {
					t.Fatalf("word %q: not a substring filter: %s", w, describe(sub))
				}
				if got := sub.Children[0].Value; got != attrs[j] {
					t.Fatalf("word %q: attribute %v, want %s", w, got, attrs[j])
				}
				parts := sub.Children[1].Children
				if len(parts) != 1 || parts[0].Tag != goldap.FilterSubstringsAny {
					t.Fatalf("word %q: substring parts %s, want one 'any'", w, describe(sub.Children[1]))
				}
				if got := parts[0].Value; got != w {
					t.Fatalf("word %q: the directory would match %q", w, got)
				}
			}
		}
	})
}

func checkEquality(t *testing.T, attr, value string) {
	t.Helper()
	filter := equality(attr, value)
	p, err := goldap.CompileFilter(filter)
	if err != nil {
		t.Fatalf("equality filter %q does not compile: %v", filter, err)
	}
	checkEqualityPacket(t, p, attr, value)
}

func checkEqualityPacket(t *testing.T, p *ber.Packet, attr, value string) {
	t.Helper()
	if p.Tag != goldap.FilterEqualityMatch || len(p.Children) != 2 {
		t.Fatalf("(%s=%q) is not one equality match: %s", attr, value, describe(p))
	}
	if p.Children[0].Value != attr || p.Children[1].Value != value {
		t.Fatalf("(%s=%q) compiled to (%v=%q)", attr, value, p.Children[0].Value, p.Children[1].Value)
	}
}

func describe(p *ber.Packet) string {
	s, err := goldap.DecompileFilter(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return s
}
