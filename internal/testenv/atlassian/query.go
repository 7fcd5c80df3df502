package atlassian

import (
	"errors"
	"fmt"
	"strings"
)

// A tiny parser for the JQL and CQL subset the bot sends. Both languages share the clause
// shape `field op value` joined by AND, with double- or single-quoted strings in which a
// backslash escapes the next character (JQL: support.atlassian.com "Use advanced search with
// JQL" — reserved characters and quoting; CQL: developer.atlassian.com/cloud/confluence/advanced-searching-using-cql).
// Anything outside the subset is a 400, as Jira and Confluence reject unknown syntax.

type token struct {
	text   string
	quoted bool
}

func lex(q string) ([]token, error) {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(q) {
				if q[j] == '\\' && j+1 < len(q) {
					b.WriteByte(q[j+1])
					j += 2
					continue
				}
				if q[j] == c {
					closed = true
					j++
					break
				}
				b.WriteByte(q[j])
				j++
			}
			if !closed {
				return nil, errors.New("unterminated string")
			}
			out = append(out, token{text: b.String(), quoted: true})
			i = j
		case c == '!' && i+1 < len(q) && q[i+1] == '=':
			out = append(out, token{text: "!="})
			i += 2
		case c == '!' && i+1 < len(q) && q[i+1] == '~':
			out = append(out, token{text: "!~"})
			i += 2
		case c == '=' || c == '~' || c == '(' || c == ')' || c == ',':
			out = append(out, token{text: string(c)})
			i++
		default:
			j := i
			for j < len(q) && !strings.ContainsRune(" \t\r\n=~!(),\"'", rune(q[j])) {
				j++
			}
			out = append(out, token{text: q[i:j]})
			i = j
		}
	}
	return out, nil
}

// clause is one `field op value` condition.
type clause struct {
	field, op, value string
	fn               bool // value was a function call, e.g. currentUser()
}

// parseQuery parses `clause (AND clause)* [ORDER BY field [ASC|DESC]]`.
func parseQuery(q string) ([]clause, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	var out []clause
	i := 0
	for i < len(toks) {
		if !toks[i].quoted && strings.EqualFold(toks[i].text, "ORDER") {
			if i+2 >= len(toks) || !strings.EqualFold(toks[i+1].text, "BY") {
				return nil, errors.New("expecting BY after ORDER")
			}
			i = len(toks) // ordering is fixed: updated descending
			break
		}
		if i+2 >= len(toks) {
			return nil, fmt.Errorf("incomplete clause at %q", toks[i].text)
		}
		c := clause{field: strings.ToLower(toks[i].text), op: toks[i+1].text, value: toks[i+2].text}
		switch c.op {
		case "=", "!=", "~":
		default:
			return nil, fmt.Errorf("unsupported operator %q", c.op)
		}
		i += 3
		if !toks[i-1].quoted && i+1 < len(toks) && toks[i].text == "(" && toks[i+1].text == ")" {
			c.fn = true
			i += 2
		}
		out = append(out, c)
		if i < len(toks) {
			switch {
			case !toks[i].quoted && strings.EqualFold(toks[i].text, "AND"):
				i++
				if i == len(toks) {
					return nil, errors.New("expecting a clause after AND")
				}
			case !toks[i].quoted && strings.EqualFold(toks[i].text, "ORDER"):
			default:
				return nil, fmt.Errorf("unexpected %q (only AND is supported)", toks[i].text)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty query")
	}
	return out, nil
}

// textMatch is the stand-in's text search: every word of the query occurs in the haystack,
// case-insensitively (Jira and Confluence use word-based full-text search).
func textMatch(haystack, query string) bool {
	h := strings.ToLower(haystack)
	words := strings.Fields(strings.ToLower(query))
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !strings.Contains(h, w) {
			return false
		}
	}
	return true
}
