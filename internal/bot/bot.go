// Package bot is the conversation: it routes messages to commands, welcomes users when the
// bot is added, and dispatches invoke activities (sign-in and others) to their handlers.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// Sender delivers the bot's activities to the channel.
type Sender interface {
	Reply(ctx context.Context, ref botframework.ConversationReference, replyToID string, act *botframework.Activity) (string, error)
	Send(ctx context.Context, ref botframework.ConversationReference, act *botframework.Activity) (string, error)
}

var _ Sender = (*botframework.Connector)(nil)

// CommandFunc answers a command; args is the text after the command words.
type CommandFunc func(ctx context.Context, t *Turn, args string) error

// InvokeFunc answers an invoke activity synchronously.
type InvokeFunc func(ctx context.Context, t *Turn) (*botframework.InvokeResponse, error)

// Command is one thing a user can type.
type Command struct {
	// Name is the command's words, lower case ("help", "my jira issues").
	Name string
	// Usage is shown by help as code ("jira <KEY-123>"), exactly as written.
	Usage string
	// Help is one sentence shown by help, as plain text (it is escaped).
	Help string
	// Hidden commands answer but help does not list them (a bare word such as "confluence"
	// that only explains its sub-commands, which help lists themselves).
	Hidden bool
	// Run answers the command.
	Run CommandFunc
	// Shared commands also run in group chats and channels. All others answer with the user's
	// own data (or act on their sign-ins), so they run only in a personal chat, where nobody
	// else can read the answer.
	Shared bool
}

// Bot routes activities. Register commands and invokes before serving; it is then safe for
// concurrent use.
type Bot struct {
	sender   Sender
	log      *slog.Logger
	commands map[string]Command
	invokes  map[string]InvokeFunc
	// Fallback answers messages that match no command; nil uses the built-in answer.
	Fallback CommandFunc
	// Identify names the authenticated user of an activity (false: none), for the audit
	// records of the calls the turn makes on their behalf. Nil: calls are recorded without a user.
	Identify func(act *botframework.Activity) (audit.User, bool)
}

// New returns a bot with the help command registered.
func New(sender Sender, log *slog.Logger) *Bot {
	if log == nil {
		log = slog.Default()
	}
	b := &Bot{sender: sender, log: log, commands: map[string]Command{}, invokes: map[string]InvokeFunc{}}
	b.Handle(Command{Name: "help", Usage: "help", Help: "Show what I can do.", Run: b.help, Shared: true})
	return b
}

// Handle registers a command. Names are matched on whole words, longest first.
func (b *Bot) Handle(c Command) {
	c.Name = strings.Join(strings.Fields(strings.ToLower(c.Name)), " ")
	b.commands[c.Name] = c
}

// HandleInvoke registers the handler of an invoke name (such as "signin/tokenExchange").
func (b *Bot) HandleInvoke(name string, f InvokeFunc) { b.invokes[name] = f }

// Turn is one inbound activity being answered.
type Turn struct {
	Activity *botframework.Activity
	bot      *Bot
	// Outcome is a short word for the activity log ("help", "unknown-command", "welcome").
	Outcome string
}

// Reference is the conversation reference of the turn's activity.
func (t *Turn) Reference() botframework.ConversationReference { return t.Activity.Reference() }

// Reply sends act as a reply in the turn's conversation.
func (t *Turn) Reply(ctx context.Context, act *botframework.Activity) error {
	_, err := t.bot.sender.Reply(ctx, t.Reference(), t.Activity.ID, act)
	return err
}

// ReplyText sends a text reply. Text is Markdown the bot wrote; anything a user typed or a
// back end returned must reach it through mdtext (Escape, Code, Sprintf).
func (t *Turn) ReplyText(ctx context.Context, text mdtext.Markdown) error {
	return t.Reply(ctx, &botframework.Activity{Type: botframework.TypeMessage, Text: string(text)})
}

// ReplyCard sends a reply carrying one attachment (an Adaptive Card, an OAuthCard …) and
// optional text, as for ReplyText.
func (t *Turn) ReplyCard(ctx context.Context, text mdtext.Markdown, att botframework.Attachment) error {
	return t.Reply(ctx, &botframework.Activity{Type: botframework.TypeMessage, Text: string(text), Attachments: []botframework.Attachment{att}})
}

// Sender returns the channel sender, for proactive messages.
func (t *Turn) Sender() Sender { return t.bot.sender }

// ErrUnhandledInvoke marks an invoke name nobody registered.
var ErrUnhandledInvoke = errors.New("unhandled invoke")

// OnActivity answers one authenticated activity. For invokes it returns the synchronous
// response; for everything else the response is nil.
func (b *Bot) OnActivity(ctx context.Context, act *botframework.Activity) (*botframework.InvokeResponse, *Turn, error) {
	t := &Turn{Activity: act, bot: b}
	if b.Identify != nil {
		if u, ok := b.Identify(act); ok {
			ctx = audit.WithUser(ctx, u)
		}
	}
	switch act.Type {
	case botframework.TypeMessage:
		return nil, t, b.onMessage(ctx, t)
	case botframework.TypeConversationUpdate:
		return nil, t, b.onConversationUpdate(ctx, t)
	case botframework.TypeInvoke:
		f, ok := b.invokes[act.Name]
		if !ok {
			// The protocol's answer to an invoke the bot does not implement
			// (botbuilder-js ActivityHandler.onInvokeActivity → 501).
			t.Outcome = "invoke-not-implemented"
			return &botframework.InvokeResponse{Status: http.StatusNotImplemented}, t, nil
		}
		resp, err := f(audit.WithAsker(ctx, "invoke:"+act.Name), t)
		if err != nil {
			return &botframework.InvokeResponse{Status: http.StatusInternalServerError}, t, err
		}
		if resp == nil {
			resp = &botframework.InvokeResponse{Status: http.StatusOK}
		}
		return resp, t, nil
	default:
		t.Outcome = "ignored"
		return nil, t, nil
	}
}

var mentionRE = regexp.MustCompile(`(?is)<at[^>]*>.*?</at>`)

// CommandText is a message's text without @-mentions and surrounding space.
func CommandText(act *botframework.Activity) string {
	return strings.TrimSpace(mentionRE.ReplaceAllString(act.Text, " "))
}

// match finds the longest command whose words begin text.
func (b *Bot) match(text string) (Command, string, bool) {
	words := strings.Fields(text)
	for n := min(len(words), 4); n > 0; n-- {
		name := strings.ToLower(strings.Join(words[:n], " "))
		if c, ok := b.commands[name]; ok {
			return c, strings.Join(words[n:], " "), true
		}
	}
	return Command{}, "", false
}

// SubmittedCommand is the command an Adaptive Card's Action.Submit carries in its data as
// {"command": "connect jira"}: a button does exactly what typing those words would, with the
// same authenticated sender. Empty when the activity carries no such value.
func SubmittedCommand(act *botframework.Activity) string {
	if len(act.Value) == 0 {
		return ""
	}
	var v struct {
		Command string `json:"command"`
	}
	if json.Unmarshal(act.Value, &v) != nil {
		return ""
	}
	return strings.TrimSpace(v.Command)
}

func (b *Bot) onMessage(ctx context.Context, t *Turn) error {
	text, asker := CommandText(t.Activity), "command:"
	if text == "" {
		text, asker = SubmittedCommand(t.Activity), "card:"
	}
	if text == "" {
		t.Outcome = "empty"
		return nil // attachments without text, or a submit that names no command
	}
	c, args, ok := b.match(text)
	if !ok {
		if b.Fallback != nil {
			t.Outcome = "fallback"
			return b.Fallback(audit.WithAsker(ctx, "message"), t, text)
		}
		t.Outcome = "unknown-command"
		return t.ReplyText(ctx, mdtext.Sprintf("I don't know %s. Type **help** to see what I can do.", mdtext.Code(firstWords(text, 3))))
	}
	t.Outcome = strings.ReplaceAll(c.Name, " ", "-")
	if !c.Shared && !IsPersonal(t.Activity) {
		t.Outcome = "personal-only"
		return t.ReplyText(ctx, mdtext.Sprintf("I answer %s only in a 1:1 chat with me, so nobody else here sees your data. "+
			"Open a chat with me and ask there.", mdtext.Code(c.Name)))
	}
	return c.Run(audit.WithAsker(ctx, asker+c.Name), t, args)
}

// IsPersonal reports whether the activity comes from a one-to-one conversation. Teams names
// shared ones "groupChat" and "channel"; channels that say nothing (Web Chat, Direct Line)
// hold one user's conversation.
func IsPersonal(act *botframework.Activity) bool {
	switch act.Conversation.ConversationType {
	case "", "personal":
		return !act.Conversation.IsGroup
	default:
		return false
	}
}

func firstWords(s string, n int) string {
	w := strings.Fields(s)
	if len(w) > n {
		w = w[:n]
	}
	return strings.Join(w, " ")
}

func (b *Bot) onConversationUpdate(ctx context.Context, t *Turn) error {
	for _, m := range t.Activity.MembersAdded {
		if m.ID == t.Activity.Recipient.ID {
			t.Outcome = "welcome"
			return t.ReplyText(ctx, "Hi! I answer questions about your tickets, pages, mail and files — as you, "+
				"so you only ever see what you could open yourself. Type **help** to see what I can do.")
		}
	}
	t.Outcome = "ignored"
	return nil
}

func (b *Bot) help(ctx context.Context, t *Turn, _ string) error {
	names := make([]string, 0, len(b.commands))
	for n := range b.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := []mdtext.Markdown{"Here is what I can do:\n"}
	for _, n := range names {
		c := b.commands[n]
		if c.Hidden {
			continue
		}
		usage := c.Usage
		if usage == "" {
			usage = c.Name
		}
		lines = append(lines, mdtext.Sprintf("- %s — %s", mdtext.Code(usage), c.Help))
	}
	return t.ReplyText(ctx, mdtext.Join(lines, "\n"))
}
