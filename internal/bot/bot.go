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
	"sync"
	"sync/atomic"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/recent"
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
	// Slow commands may take longer than the channel waits for its request (several back-end
	// calls, a slow search): with a Defer hook they are answered from the work queue.
	Slow bool
	// Local commands reach no back end (help): the per-user rate limit never applies to them.
	Local bool
}

// Limiter decides whether a user may make one more request that reaches a back end, and if
// not, how long until they may (ratelimit.Limiter).
type Limiter interface {
	Allow(key string) (bool, time.Duration)
}

// Bot routes activities. Register commands and invokes before serving; it is then safe for
// concurrent use.
type Bot struct {
	sender   Sender
	private  Sender
	log      *slog.Logger
	commands map[string]Command
	invokes  map[string]InvokeFunc
	searches map[string]InvokeFunc
	// Fallback answers messages that match no command; nil uses the built-in answer.
	Fallback CommandFunc
	// Targeted lets every command run in Teams group chats and channels, each answer going to
	// the requester alone as a Teams targeted message (msteams-docs
	// agents-in-teams/targeted-messages.md, public developer preview). Off, commands that
	// are not Shared refuse there and point to a 1:1 chat.
	Targeted bool
	// ActionSignIn completes the sign-in an Action.Execute retry carries; nil ignores it.
	ActionSignIn ActionSignIn
	// ExtensionSignIn completes the SSO sign-in a reissued message-extension query carries.
	ExtensionSignIn ExtensionSignIn
	// Defer hands a Slow command's turn to the work queue (it is answered again, by a worker,
	// under InJob). An error answers the command in the turn after all; nil Defer always does.
	Defer func(ctx context.Context, t *Turn) error
	// Identify names the authenticated user of an activity (false: none), for the audit
	// records of the calls the turn makes on their behalf. Nil: calls are recorded without a user.
	Identify func(act *botframework.Activity) (audit.User, bool)
	// Active is told of every activity once it has been answered (keep-alive of the user's
	// connections); it must not block. Nil: nothing is told.
	Active func(ctx context.Context, act *botframework.Activity)
	// Limit bounds how often one user runs commands, assistant turns and card actions that
	// reach back ends; nil does not limit. A request resumed after a sign-in is counted once.
	Limit Limiter
	// Removed runs when the bot is removed from a conversation or uninstalled by the activity's
	// user (for example to drop requests that waited there for a sign-in). Nothing is sent to
	// that conversation: the bot is no longer in it. Nil does nothing.
	Removed func(ctx context.Context, act *botframework.Activity) error

	charged recent.Set // ids of activities already counted, so a resumed one is not counted twice
}

type inJobKey struct{}

// InJob marks ctx as a queue worker's: Slow commands run there instead of being deferred.
func InJob(ctx context.Context) context.Context { return context.WithValue(ctx, inJobKey{}, true) }

func inJob(ctx context.Context) bool { v, _ := ctx.Value(inJobKey{}).(bool); return v }

// New returns a bot with the help command registered.
func New(sender Sender, log *slog.Logger) *Bot {
	if log == nil {
		log = slog.Default()
	}
	b := &Bot{sender: sender, log: log, commands: map[string]Command{}, invokes: map[string]InvokeFunc{}, searches: map[string]InvokeFunc{}}
	b.private = privateSender{b}
	b.HandleInvoke("adaptiveCard/action", b.actionExecute)
	b.HandleInvoke("composeExtension/query", b.extensionQuery)
	b.Handle(Command{Name: "help", Usage: "help", Help: "Show what I can do.", Run: b.help, Shared: true, Local: true})
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
	// handedOff is set once a refused targeted reply was replaced by the public hand-off.
	handedOff atomic.Bool
	// captured collects the replies of a turn answered in its invoke response (Capture).
	capturing bool
	capMu     sync.Mutex
	captured  []*botframework.Activity
	// Outcome is a short word for the activity log ("help", "unknown-command", "welcome").
	Outcome string
}

// Reference is the conversation reference of the turn's activity.
func (t *Turn) Reference() botframework.ConversationReference { return t.Activity.Reference() }

// Reply sends act as a reply in the turn's conversation. In a Teams group chat or channel with
// targeted messages on, it goes to the requester alone; when Teams refuses that, nothing of it
// is posted and the conversation gets, once, the public hand-off to a 1:1 chat instead.
func (t *Turn) Reply(ctx context.Context, act *botframework.Activity) error {
	t.capMu.Lock()
	if t.capturing {
		t.captured = append(t.captured, act)
		t.capMu.Unlock()
		return nil
	}
	t.capMu.Unlock()
	if !t.Private() {
		_, err := t.bot.sender.Reply(ctx, t.Reference(), t.Activity.ID, act)
		return err
	}
	act.Targeted = true
	_, err := t.bot.sender.Reply(ctx, t.Reference(), t.Activity.ID, act)
	if err != nil && t.handedOff.CompareAndSwap(false, true) {
		t.bot.log.Warn("targeted reply refused; handing off to a 1:1 chat", slog.String("error", err.Error()))
		_ = t.replyPublic(ctx, "I could not answer you privately here, so I posted nothing. Open a 1:1 chat with me and ask there.")
	}
	return err
}

// Capture makes the turn's replies collect instead of being sent, for an invoke whose
// response carries the answer (an Adaptive Card Action.Execute). Call it before any reply.
func (t *Turn) Capture() { t.capMu.Lock(); t.capturing = true; t.capMu.Unlock() }

// Capturing reports whether the turn's replies are collected rather than sent: such a turn
// cannot be resumed later, so nothing should be parked for it.
func (t *Turn) Capturing() bool {
	t.capMu.Lock()
	defer t.capMu.Unlock()
	return t.capturing
}

// Captured returns the replies collected since Capture and stops collecting: later replies
// are sent.
func (t *Turn) Captured() []*botframework.Activity {
	t.capMu.Lock()
	defer t.capMu.Unlock()
	t.capturing = false
	out := t.captured
	t.captured = nil
	return out
}

// Private reports whether the turn's replies go to the requester alone: a Teams group chat or
// channel with targeted messages on.
func (t *Turn) Private() bool { return t.bot.Targeted && privateTo(t.Reference()) }

// privateTo reports whether messages to ref can be targeted at its user: a shared Teams
// conversation (targeted messages do not exist in personal chats).
func privateTo(ref botframework.ConversationReference) bool {
	return botframework.BaseChannel(ref.ChannelID) == "msteams" && !isPersonal(ref.Conversation) && ref.User.ID != ""
}

// replyPublic sends text to the whole conversation: only for what carries nobody's data (help,
// the welcome, refusals).
func (t *Turn) replyPublic(ctx context.Context, text mdtext.Markdown) error {
	_, err := t.bot.sender.Reply(ctx, t.Reference(), t.Activity.ID, &botframework.Activity{Type: botframework.TypeMessage, Text: string(text)})
	return err
}

// privateSender targets every message to a shared Teams conversation at the reference's user
// when targeted messages are on (proactive messages about a user's sign-ins).
type privateSender struct{ b *Bot }

func (p privateSender) Reply(ctx context.Context, ref botframework.ConversationReference, replyToID string, act *botframework.Activity) (string, error) {
	act.Targeted = act.Targeted || p.b.Targeted && privateTo(ref)
	return p.b.sender.Reply(ctx, ref, replyToID, act)
}

func (p privateSender) Send(ctx context.Context, ref botframework.ConversationReference, act *botframework.Activity) (string, error) {
	act.Targeted = act.Targeted || p.b.Targeted && privateTo(ref)
	return p.b.sender.Send(ctx, ref, act)
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

// Sender returns the channel sender, for proactive messages. Messages to a shared Teams
// conversation go to the reference's user alone when targeted messages are on.
func (t *Turn) Sender() Sender { return t.bot.private }

// ErrUnhandledInvoke marks an invoke name nobody registered.
var ErrUnhandledInvoke = errors.New("unhandled invoke")

// OnActivity answers one authenticated activity. For invokes it returns the synchronous
// response; for everything else the response is nil.
func (b *Bot) OnActivity(ctx context.Context, act *botframework.Activity) (*botframework.InvokeResponse, *Turn, error) {
	t := &Turn{Activity: act, bot: b}
	if b.Active != nil {
		defer b.Active(ctx, act)
	}
	if b.Identify != nil {
		if u, ok := b.Identify(act); ok {
			ctx = audit.WithUser(ctx, u)
		}
	}
	if resp, refused := b.refuseOversized(ctx, t); refused {
		return resp, t, nil
	}
	switch act.Type {
	case botframework.TypeMessage:
		return nil, t, b.onMessage(ctx, t)
	case botframework.TypeConversationUpdate:
		return nil, t, b.onConversationUpdate(ctx, t)
	case botframework.TypeInstallation:
		if strings.HasPrefix(act.Action, "remove") {
			return nil, t, b.onRemoved(ctx, t)
		}
		t.Outcome = "installed"
		return nil, t, nil
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
	text := CommandText(t.Activity)
	if text == "" {
		text = SubmittedCommand(t.Activity)
	}
	if text == "" {
		t.Outcome = "empty"
		return nil // attachments without text, or a submit that names no command
	}
	return b.RunText(ctx, t, text)
}

// RunText answers text in turn t exactly as a message with that text would be answered: the
// same command, the same sender, the same rule for shared conversations. Card buttons
// (Action.Execute) run their command through it.
func (b *Bot) RunText(ctx context.Context, t *Turn, text string) error {
	c, args, ok := b.match(text)
	if !ok {
		if b.Fallback != nil {
			t.Outcome = "fallback"
			if !b.allow(ctx, t) {
				return nil
			}
			return b.Fallback(audit.WithAsker(ctx, "message"), t, text)
		}
		t.Outcome = "unknown-command"
		return t.replyPublic(ctx, mdtext.Sprintf("I don't know %s. Type **help** to see what I can do.", mdtext.Code(firstWords(text, 3))))
	}
	t.Outcome = strings.ReplaceAll(c.Name, " ", "-")
	if !c.Shared && !IsPersonal(t.Activity) && !t.Private() {
		t.Outcome = "personal-only"
		return t.replyPublic(ctx, mdtext.Sprintf("I answer %s only in a 1:1 chat with me, so nobody else here sees your data. "+
			"Open a chat with me and ask there.", mdtext.Code(c.Name)))
	}
	if !c.Local && !b.allow(ctx, t) {
		return nil
	}
	// Who asked, for the audit: typed words, or a card's button (a submit or Action.Execute).
	asker := "command:"
	if CommandText(t.Activity) == "" {
		asker = "card:"
	}
	ctx = audit.WithAsker(ctx, asker+c.Name)
	if c.Slow && b.Defer != nil && !inJob(ctx) {
		err := b.Defer(ctx, t)
		if err == nil {
			t.Outcome += "-queued"
			return nil
		}
		b.log.Warn("queueing a slow command failed; answering it now", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
	}
	return c.Run(ctx, t, args)
}

// IsPersonal reports whether the activity comes from a one-to-one conversation. Teams names
// shared ones "groupChat" and "channel"; channels that say nothing (Web Chat, Direct Line)
// hold one user's conversation.
func IsPersonal(act *botframework.Activity) bool { return isPersonal(act.Conversation) }

func isPersonal(c botframework.ConversationAccount) bool {
	switch c.ConversationType {
	case "", "personal":
		return !c.IsGroup
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
	for _, m := range t.Activity.MembersRemoved {
		if m.ID == t.Activity.Recipient.ID {
			return b.onRemoved(ctx, t)
		}
	}
	for _, m := range t.Activity.MembersAdded {
		if m.ID == t.Activity.Recipient.ID {
			t.Outcome = "welcome"
			return t.replyPublic(ctx, "Hi! I answer questions about your tickets, pages, mail and files — as you, "+
				"so you only ever see what you could open yourself. Type **help** to see what I can do.")
		}
	}
	t.Outcome = "ignored"
	return nil
}

// onRemoved handles the bot leaving a conversation: no reply (it would be refused), only the
// Removed hook.
func (b *Bot) onRemoved(ctx context.Context, t *Turn) error {
	t.Outcome = "removed"
	if b.Removed == nil {
		return nil
	}
	if err := b.Removed(ctx, t.Activity); err != nil {
		// The channel need not deliver this again: what was left behind expires by itself.
		b.log.Warn("cleaning up after removal failed", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
	}
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
	return t.replyPublic(ctx, mdtext.Join(lines, "\n"))
}
