package openai

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SandboxDeployment is the deployment name under which make dev serves SandboxModel: the name
// says, wherever it shows (settings, doctor, logs), that no real model answers.
const SandboxDeployment = "sandbox-model"

// SandboxPrefix starts every SandboxModel answer, so nobody mistakes it for a real model's.
const SandboxPrefix = "**Sandbox model:** "

// SandboxModel is a deterministic, rule-based responder for the local sandbox (make dev): it
// plays a model well enough that a newcomer sees the whole assistant loop — tool calls made as
// the user, results composed into a streamed answer — without any model service. It reads the
// request exactly as a model would (the last user message, the tools offered, the tool
// results) and never follows instructions found in tool results: it only quotes them.
//
// Rules, on the user's last message, when the matching tool is offered:
//
//	comment on PROJ-1: <text>      → jira_comment {key, text} (the user then confirms a card)
//	search confluence for <words>  → confluence_search {words}
//	my mail about <words>          → mail_search {words}
//	search jira for <words>        → jira_search {words}
//	… PROJ-1 …                     → jira_issue {key} (up to three keys)
//	anything else                  → a short note of what it understands
//
// Once the tools have answered, it composes the answer from their results: items with their
// links, "not found, or you have no permission" for refusals, a pointer to the card when the
// user was asked to connect or confirm.
type SandboxModel struct {
	// ChunkDelay spaces the streamed pieces of an answer, as a model producing tokens does.
	ChunkDelay time.Duration
}

var (
	commentRE    = regexp.MustCompile(`(?i)\bcomment\s+on\s+([A-Z][A-Z0-9_]{0,29}-[1-9][0-9]{0,9})\s*(?::|,|\bthat\b|\bsaying\b)\s*(.+)$`)
	confluenceRE = regexp.MustCompile(`(?i)\bconfluence\b.*?\b(?:for|about|on)\s+(.+)$`)
	mailRE       = regexp.MustCompile(`(?i)\b(?:e-?mails?|mails?|inbox)\b.*?\b(?:about|on|for|mentioning)\s+(.+)$`)
	jiraSearchRE = regexp.MustCompile(`(?i)\bjira\b.*?\b(?:for|about)\s+(.+)$`)
	issueKeyRE   = regexp.MustCompile(`\b([A-Z][A-Z0-9_]{0,29}-[1-9][0-9]{0,9})\b`)
)

// Respond answers one chat-completions request.
func (m SandboxModel) Respond(r Request) Turn {
	last := -1
	for i, msg := range r.Messages {
		if msg.Role == "user" {
			last = i
		}
	}
	if last < 0 {
		return Turn{Content: SandboxPrefix + "I need a question.", ChunkDelay: m.ChunkDelay}
	}
	calls := map[string]ToolCall{} // tool_call_id → the call, for naming what was not found
	var results []Message
	for _, msg := range r.Messages[last+1:] {
		for _, tc := range msg.ToolCalls {
			calls[tc.ID] = ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
		}
		if msg.Role == "tool" {
			results = append(results, msg)
		}
	}
	if len(results) > 0 {
		return Turn{Content: SandboxPrefix + compose(results, calls), ChunkDelay: m.ChunkDelay}
	}
	offered := map[string]bool{}
	for _, raw := range r.Tools {
		var t struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(raw, &t) == nil {
			offered[t.Function.Name] = true
		}
	}
	text := strings.TrimSpace(r.Messages[last].Text())
	name, args := decide(text)
	switch {
	case name == "":
		return Turn{Content: SandboxPrefix + help(len(offered) > 0), ChunkDelay: m.ChunkDelay}
	case !offered[name]:
		return Turn{Content: SandboxPrefix + fmt.Sprintf("I would use the %s tool for that, but it is not available here. %s", name, help(len(offered) > 0)), ChunkDelay: m.ChunkDelay}
	}
	var out []ToolCall
	for i, a := range args {
		b, _ := json.Marshal(a)
		out = append(out, ToolCall{ID: fmt.Sprintf("call_sandbox_%d", i+1), Name: name, Arguments: string(b)})
	}
	return Turn{ToolCalls: out}
}

// decide picks the tool and its arguments (one set per call) for the user's message.
func decide(text string) (string, []map[string]string) {
	if m := commentRE.FindStringSubmatch(text); m != nil {
		return "jira_comment", []map[string]string{{"key": strings.ToUpper(m[1]), "text": strings.TrimSpace(m[2])}}
	}
	if m := confluenceRE.FindStringSubmatch(text); m != nil {
		return "confluence_search", []map[string]string{{"words": words(m[1])}}
	}
	if m := mailRE.FindStringSubmatch(text); m != nil {
		return "mail_search", []map[string]string{{"words": words(m[1])}}
	}
	if m := jiraSearchRE.FindStringSubmatch(text); m != nil && !issueKeyRE.MatchString(m[1]) {
		return "jira_search", []map[string]string{{"words": words(m[1])}}
	}
	var args []map[string]string
	seen := map[string]bool{}
	for _, k := range issueKeyRE.FindAllString(text, -1) {
		if !seen[k] && len(args) < 3 {
			seen[k] = true
			args = append(args, map[string]string{"key": k})
		}
	}
	if len(args) > 0 {
		return "jira_issue", args
	}
	return "", nil
}

func words(s string) string { return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), "?.!")) }

func help(tools bool) string {
	if !tools {
		return "I have no tools in this conversation (group chats get none): ask me in a 1:1 chat. I am a rule-based stand-in for a real model."
	}
	return "I am a rule-based stand-in for a real model, so I understand only a few kinds of question. Try: " +
		"\"what's the status of PROJ-1?\", \"search jira for payment\", \"search confluence for payment\", " +
		"\"my mail about payment\" or \"comment on PROJ-1: deployed to staging\". Commands work too: type **help**."
}

// compose writes the answer from the tool results, quoting their data and following none of it.
func compose(results []Message, calls map[string]ToolCall) string {
	var parts []string
	for _, res := range results {
		var out struct {
			Tool   string `json:"tool"`
			Status string `json:"status"`
			Note   string `json:"note"`
			Data   any    `json:"untrusted_data"`
		}
		if err := json.Unmarshal([]byte(res.Text()), &out); err != nil {
			parts = append(parts, "One result was too long for me to read.")
			continue
		}
		what := "That item"
		var a map[string]string
		if c, ok := calls[res.ToolCallID]; ok && json.Unmarshal([]byte(c.Arguments), &a) == nil && a["key"] != "" {
			what = a["key"]
		}
		switch out.Status {
		case "ok":
			parts = append(parts, render(out.Data))
		case "not_found_or_no_permission":
			parts = append(parts, what+" was not found, or you have no permission to see it.")
		case "user_prompted":
			parts = append(parts, "Use the card above to connect, then ask me again.")
		case "awaiting_user_confirmation":
			parts = append(parts, "Nothing is posted until you confirm the card above.")
		default:
			parts = append(parts, "The "+out.Tool+" tool could not answer: "+out.Note)
		}
	}
	return strings.Join(parts, "\n\n")
}

// render shows one item, or a list of items, with the fields a person looks for first.
func render(data any) string {
	switch d := data.(type) {
	case map[string]any:
		return item(d)
	case []any:
		if len(d) == 0 {
			return "I found nothing for that."
		}
		lines := []string{fmt.Sprintf("I found %d:", len(d))}
		for _, x := range d {
			if m, ok := x.(map[string]any); ok {
				lines = append(lines, "- "+item(m))
			}
		}
		return strings.Join(lines, "\n")
	}
	return "I found nothing for that."
}

func item(m map[string]any) string {
	s := func(k string) string { v, _ := m[k].(string); return strings.TrimSpace(v) }
	name := s("key")
	title := firstOf(s("summary"), s("title"), s("subject"), s("name"))
	if name == "" {
		name, title = title, ""
	}
	if u := s("url"); u != "" && name != "" {
		name = "[" + name + "](" + u + ")"
	}
	var b strings.Builder
	b.WriteString(name)
	if title != "" {
		b.WriteString(" — " + title)
	}
	var facts []string
	for _, k := range []string{"status", "assignee", "priority", "space", "from", "received", "modified"} {
		if v := s(k); v != "" {
			facts = append(facts, k+": "+v)
		}
	}
	if len(facts) > 0 {
		b.WriteString(" (" + strings.Join(facts, "; ") + ")")
	}
	return b.String()
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
