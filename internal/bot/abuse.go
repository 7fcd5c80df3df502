package bot

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// Input limits. Teams refuses a chat post larger than about 28 KB (Learn "Limits and
// specifications for Microsoft Teams", Teams and channels: channel conversation post size
// "approximately 28 KB per post", measured on the message encoded as UTF-16), and a card the
// bot sends is bounded the same way, so a larger text or card value did not come from a
// Teams user typing or pressing a button: it is refused before anything runs.
const (
	// MaxTextBytes bounds a message's text, counted as UTF-16 bytes as Teams counts it.
	MaxTextBytes = 28 << 10
	// MaxValueBytes bounds a message's or invoke's value (card submissions, Action.Execute
	// data, sign-in invoke values), counted as JSON bytes.
	MaxValueBytes = 28 << 10
)

// utf16Bytes is the size of s encoded as UTF-16.
func utf16Bytes(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 4
		} else {
			n += 2
		}
	}
	return n
}

// refuseOversized answers an activity whose text or value is over the limits, without
// running anything: a message gets a short reply, an invoke its protocol's refusal.
func (b *Bot) refuseOversized(ctx context.Context, t *Turn) (*botframework.InvokeResponse, bool) {
	act := t.Activity
	if len(act.Value) <= MaxValueBytes && (act.Type != botframework.TypeMessage || utf16Bytes(act.Text) <= MaxTextBytes) {
		return nil, false
	}
	t.Outcome = "oversized"
	b.log.Warn("oversized input refused", slog.String("id", act.ID), slog.String("type", act.Type), slog.String("name", act.Name),
		slog.Int("text_bytes", len(act.Text)), slog.Int("value_bytes", len(act.Value)))
	switch act.Type {
	case botframework.TypeMessage:
		// Nobody's data is in it (the input is not echoed), so it may go to the whole chat.
		_ = t.replyPublic(ctx, "That message is too long for me to handle. Please send a shorter one (at most about 28 KB).")
		return nil, true
	case botframework.TypeInvoke:
		switch act.Name {
		case "adaptiveCard/action":
			// Universal actions answer with HTTP 200 and the error in the body.
			return ActionResponse(http.StatusRequestEntityTooLarge, ActionError,
				map[string]any{"code": "BadRequest", "message": "That is too much data for me to handle. Please enter less and try again."}), true
		case "signin/tokenExchange":
			// PROTOCOL.md: a malformed exchange value is answered 400 with a failureDetail.
			return &botframework.InvokeResponse{Status: http.StatusBadRequest, Body: map[string]any{"failureDetail": "The token exchange request is too large."}}, true
		default:
			return &botframework.InvokeResponse{Status: http.StatusRequestEntityTooLarge}, true
		}
	default:
		return nil, true
	}
}

// allow asks the rate limit for one more request of the turn's user. A refused user is told,
// calmly, when to try again; the request does nothing else.
func (b *Bot) allow(ctx context.Context, t *Turn) bool {
	wait, limited := b.limited(ctx, t)
	if !limited {
		return true
	}
	_ = t.ReplyText(ctx, LimitedText(wait))
	return false
}

// LimitedText is what a rate-limited user is told.
func LimitedText(wait time.Duration) mdtext.Markdown {
	return mdtext.Sprintf("You have asked me a lot in a short time, so I am pausing for a moment to keep things fair for everyone. "+
		"Please try again in %s.", mdtext.Escape(humanWait(wait)))
}

// limited spends one request of the turn's user and reports whether the limit refused it,
// with how long until one more is allowed. Queue workers and requests resumed after a sign-in
// were counted when they first arrived.
func (b *Bot) limited(ctx context.Context, t *Turn) (time.Duration, bool) {
	return b.spend(ctx, t, t.Activity.ID)
}

// Limited spends one request of the turn's user for something that reaches a back end outside
// a command (a sign-in invoke calling the token service), counted once per once-key (an
// exchange id that several Teams clients send alike; "" counts every call). It reports whether the limit refused
// it, and how long until one more is allowed; the caller answers as its protocol says.
func (t *Turn) Limited(ctx context.Context, once string) (time.Duration, bool) {
	if once != "" {
		once = "once|" + once
	}
	return t.bot.spend(ctx, t, once)
}

func (b *Bot) spend(ctx context.Context, t *Turn, once string) (time.Duration, bool) {
	if b.Limit == nil || inJob(ctx) {
		return 0, false
	}
	act := t.Activity
	if once != "" && b.charged.Has(once) {
		return 0, false
	}
	ok, wait := b.Limit.Allow(limitKey(act))
	if ok {
		if once != "" {
			b.charged.Add(once)
		}
		return 0, false
	}
	t.Outcome = "rate-limited"
	b.log.Info("user rate limited", slog.String("id", act.ID), slog.String("name", act.Name), slog.Duration("retry_after", wait))
	return wait, true
}

// limitKey is the user a request counts against: the Entra user when the activity names one,
// else the channel's user id.
func limitKey(act *botframework.Activity) string {
	if act.From.AADObjectID != "" {
		return strings.ToLower(act.Conversation.TenantID + "/" + act.From.AADObjectID)
	}
	return act.BaseChannelID() + "|" + act.From.ID
}

func humanWait(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	switch {
	case s <= 1:
		return "a second"
	case s < 60:
		return strconv.Itoa(s) + " seconds"
	case s < 120:
		return "a minute"
	default:
		return strconv.Itoa((s+59)/60) + " minutes"
	}
}
