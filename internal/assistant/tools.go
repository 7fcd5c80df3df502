package assistant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/internal/bot"
)

// Spec describes a tool to the model: a name and string parameters, each with a bound.
type Spec struct {
	// Name matches ^[a-z][a-z0-9_]{0,63}$.
	Name        string
	Description string
	Params      []Param
}

// Param is one string parameter.
type Param struct {
	Name        string
	Description string
	Required    bool
	// MaxLen bounds the value in characters (default 200).
	MaxLen int
	// Pattern, when set, must match the whole value.
	Pattern *regexp.Regexp
}

// Schema is the JSON Schema of the parameters: an object of strings, no other properties.
func (s Spec) Schema() map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, p := range s.Params {
		prop := map[string]any{"type": "string", "description": p.Description, "maxLength": p.maxLen()}
		if p.Pattern != nil {
			prop["pattern"] = p.Pattern.String()
		}
		props[p.Name] = prop
		if p.Required {
			required = append(required, p.Name)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

func (p Param) maxLen() int {
	if p.MaxLen <= 0 {
		return 200
	}
	return p.MaxLen
}

// Validate checks the model's JSON arguments against the spec and returns them. The error
// text is safe to show the model.
func (s Spec) Validate(arguments string) (map[string]string, error) {
	raw, err := rawJSON(arguments)
	if err != nil {
		return nil, errors.New("arguments are not a JSON object")
	}
	known := map[string]Param{}
	for _, p := range s.Params {
		known[p.Name] = p
	}
	out := map[string]string{}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p, ok := known[k]
		if !ok {
			return nil, fmt.Errorf("unknown argument %q", k)
		}
		v, ok := raw[k].(string)
		if !ok {
			return nil, fmt.Errorf("argument %q must be a string", k)
		}
		v = strings.TrimSpace(v)
		if utf8.RuneCountInString(v) > p.maxLen() {
			return nil, fmt.Errorf("argument %q is longer than %d characters", k, p.maxLen())
		}
		if p.Pattern != nil && v != "" && !p.Pattern.MatchString(v) {
			return nil, fmt.Errorf("argument %q does not match %s", k, p.Pattern)
		}
		out[k] = v
	}
	for _, p := range s.Params {
		if p.Required && out[p.Name] == "" {
			return nil, fmt.Errorf("argument %q is required", p.Name)
		}
	}
	return out, nil
}

// Result is what a tool found, for the model.
type Result struct {
	// Data is what the model reads: back-end content, treated as untrusted data.
	Data any
	// Hosts are the hosts the answer may link to because of this result (the site the user's
	// items live on), added to the allow-list for this turn only.
	Hosts []string
	// Citations are sources found (knowledge-base documents). The model reads them numbered
	// (ref, title, url, excerpt) in place of Data; the final answer lists those whose link is
	// to a host on the assistant's configured allow-list (LinkHosts), as Teams citations.
	Citations []Citation
}

// Citation is one source a tool found.
type Citation struct {
	Title, URL string
	// Excerpt is what the model reads of it: untrusted data.
	Excerpt string
}

// Tool is one capability the model may call. Run acts as the turn's user, through the same
// code path as the matching command; it must never put a token, code or secret in Result.
type Tool interface {
	Spec() Spec
	Run(ctx context.Context, t *bot.Turn, args map[string]string) (Result, error)
}

// ErrUserPrompted means the tool could not run yet: the user was shown a card (connect an
// account, choose a site) and can ask again after acting on it.
var ErrUserPrompted = errors.New("assistant: the user was asked to connect first")

// ErrConfirmationShown means a write tool did not act: it showed the user a card with exactly
// what would be sent, and only the user's own confirmation sends it.
var ErrConfirmationShown = errors.New("assistant: the user was asked to confirm")

// ErrNotFound means the item does not exist or the user may not see it; the back end does
// not say which, and neither does the tool.
var ErrNotFound = errors.New("assistant: not found or no permission")

// BadInputError is input the back end refused; its text is safe to show the model.
type BadInputError struct{ Msg string }

func (e *BadInputError) Error() string { return e.Msg }
