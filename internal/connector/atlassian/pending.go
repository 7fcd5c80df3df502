package atlassian

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/cards"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/policy"
)

// A write is never done on the model's say-so: ProposeComment only stores the exact comment,
// bound to the user and conversation, and shows it on a card; the user's own "jira comment
// confirm <id>" (the card's button) posts it once, as that user, within confirmTTL.

const (
	prefPending = "pending.comment"
	confirmTTL  = 10 * time.Minute
)

type pendingComment struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"`
	Text    string    `json:"text"`
	Conv    string    `json:"conv"`
	Expires time.Time `json:"exp"`
}

// ProposeComment checks that the user can see issue key, keeps the comment for their
// confirmation and shows it on a card. Nothing is sent to Jira until they confirm.
func (x *Reader) ProposeComment(ctx context.Context, t *bot.Turn, key, text string) error {
	text, err := CheckComment(text)
	if err != nil {
		return err
	}
	i, err := x.Issue(ctx, t, key)
	if err != nil {
		return err
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	p := pendingComment{ID: base64.RawURLEncoding.EncodeToString(id), Key: i.Key, Text: text, Conv: t.Activity.Conversation.ID, Expires: x.r.now().Add(confirmTTL)}
	b, _ := json.Marshal(p)
	if _, err := x.r.l.Prefs(ctx, t, Name, map[string]string{prefPending: string(b)}); err != nil {
		return err
	}
	t.Outcome = "jira-comment-proposed"
	return t.ReplyCard(ctx, "", attachment(ConfirmCommentCard(i, text, p.ID)))
}

// ConfirmCommentCard shows exactly what will be posted, where, and as whom.
func ConfirmCommentCard(i Issue, text, id string) map[string]any {
	return cards.WithActions(cards.New(
		cards.PlainHeading("Post this comment on "+i.Key+"?"),
		cards.PlainText(i.Summary, true),
		cards.Text("It will be posted as you, exactly as shown:", true),
		cards.PlainText(text, false),
	),
		bot.ExecuteCommand("Post comment", "jira comment confirm "+id),
		bot.ExecuteCommand("Cancel", "jira comment cancel "+id),
	)
}

// confirm posts the pending comment named by args, once: taking it from the user's facts is
// conditional on the row's ETag (Linker.TakePref), so two clicks on two instances post once.
func (r *runner) confirm(ctx context.Context, t *bot.Turn, args string) error {
	fields := strings.Fields(args)
	if len(fields) >= 2 && ValidIssueKey(strings.ToUpper(fields[0])) {
		// "jira comment PROJ-1 text": shown on a card to confirm, like the assistant's.
		key := strings.ToUpper(fields[0])
		text := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(args), fields[0]))
		return r.with(ctx, t, func(*http.Client, Site) error {
			return (&Reader{r: r}).ProposeComment(ctx, t, key, text)
		})
	}
	if len(fields) != 2 || (fields[0] != "confirm" && fields[0] != "cancel") {
		return t.ReplyText(ctx, "Say \"jira comment <KEY-123> <text>\", or ask me in plain words; I will show you the comment to confirm before I post it.")
	}
	var p pendingComment
	var posted string
	ran := false
	err := r.with(ctx, t, func(hc *http.Client, site Site) error {
		ran = true
		// Used up before the call, so a second click (here or on another instance) cannot
		// post it again.
		raw, err := r.l.TakePref(ctx, t, Name, prefPending, func(v string) bool {
			var c pendingComment
			return json.Unmarshal([]byte(v), &c) == nil && c.ID != "" && c.ID == fields[1] &&
				c.Conv == t.Activity.Conversation.ID && r.now().Before(c.Expires)
		})
		if err != nil {
			return err
		}
		if raw == "" || json.Unmarshal([]byte(raw), &p) != nil {
			p = pendingComment{}
			return nil
		}
		if fields[0] == "cancel" {
			return nil
		}
		// The user's click on the card that showed this exact comment is the confirmation
		// the policy may require.
		posted, err = r.c.Jira(hc, site).AddComment(policy.Confirmed(ctx), p.Key, p.Text)
		return err
	})
	switch {
	case err != nil:
		return err
	case !ran:
		return nil // the user was asked to connect or choose a site
	case p.ID == "":
		t.Outcome = "jira-comment-stale"
		return t.ReplyText(ctx, "That confirmation is no longer valid (already used, cancelled or expired). Nothing was posted.")
	case fields[0] == "cancel":
		t.Outcome = "jira-comment-cancelled"
		return t.ReplyText(ctx, "Cancelled. Nothing was posted.")
	case posted == "":
		return nil // with() already told the user what failed
	default:
		t.Outcome = "jira-comment-posted"
		// The key is a validated issue key and the link the user's own site URL (checked when
		// the site was chosen): nothing here is free text.
		return t.ReplyText(ctx, mdtext.Markdown(fmt.Sprintf("Posted your comment on [%s](%s).", p.Key, posted)))
	}
}

func (r *runner) now() time.Time {
	if r.clock != nil {
		return r.clock()
	}
	return time.Now()
}
