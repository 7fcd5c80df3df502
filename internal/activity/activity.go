// Package activity answers the "activity" command: what the bot did as the asking user, from
// the audit records kept in that user's own partition of the token store. A user reads only
// their own records: the partition comes from the authenticated activity, never from text.
package activity

import (
	"context"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Window is how far back the command looks, and Shown how many records it lists at most.
const (
	Window = 7 * 24 * time.Hour
	Shown  = 25
)

// Register adds the activity command.
func Register(b *bot.Bot, store audit.ActivityStore, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	b.Handle(bot.Command{Name: "activity", Usage: "activity", Help: "Show what I did as you in the last 7 days.",
		Run: func(ctx context.Context, t *bot.Turn, _ string) error {
			u, ok := audit.UserFrom(ctx)
			if !ok {
				return t.ReplyText(ctx, "I can only show this to a signed-in Microsoft 365 user.")
			}
			recs, err := audit.Recent(ctx, store, tokenstore.UserKey{TenantID: u.TenantID, ObjectID: u.ObjectID}, now().Add(-Window), Shown+1)
			if err != nil {
				return t.ReplyText(ctx, "I could not read your activity just now. Please try again in a minute.")
			}
			return t.ReplyText(ctx, Render(recs))
		}})
}

// Render lists records, newest first, one line each.
func Render(recs []audit.Record) mdtext.Markdown {
	if len(recs) == 0 {
		return "I made no calls as you in the last 7 days."
	}
	more := len(recs) > Shown
	if more {
		recs = recs[:Shown]
	}
	lines := []mdtext.Markdown{"What I did as you in the last 7 days (newest first):\n"}
	for _, r := range recs {
		status := mdtext.Escape(r.Outcome)
		if r.Status != 0 {
			status = mdtext.Sprintf("%s, HTTP %d", r.Outcome, r.Status)
		}
		lines = append(lines, mdtext.Sprintf("- %s — **%s** %s, asked by %s: %s",
			r.Time.UTC().Format("Jan 2 15:04 UTC"), r.Connector, mdtext.Code(r.Operation), asker(r.Asker), status))
	}
	if more {
		lines = append(lines, mdtext.Sprintf("\n…and more; I list the latest %d.", Shown))
	}
	return mdtext.Join(lines, "\n")
}

// asker turns "command:my jira issues" into readable words.
func asker(a string) mdtext.Markdown {
	kind, name, _ := strings.Cut(a, ":")
	switch kind {
	case "command":
		return mdtext.Sprintf("your command %s", mdtext.Code(name))
	case "card":
		return mdtext.Sprintf("a button (%s)", mdtext.Code(name))
	case "assistant":
		return mdtext.Sprintf("the assistant (tool %s)", mdtext.Code(name))
	case "invoke":
		return mdtext.Sprintf("Teams (%s)", mdtext.Code(name))
	default:
		return mdtext.Escape(a)
	}
}
