package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/cards"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// ResourceName is the SSO resource name of Microsoft Graph.
const ResourceName = "graph"

// TokenNeeder obtains the turn user's token for a resource, prompting for sign-in when
// needed (sso.Flow.Need).
type TokenNeeder interface {
	Need(ctx context.Context, t *bot.Turn, resource string) (string, error)
}

var _ TokenNeeder = (*sso.Flow)(nil)

// Register adds whoami, mail and files to b.
func Register(b *bot.Bot, c *Client, tokens TokenNeeder) {
	b.Handle(bot.Command{Name: "whoami", Usage: "whoami", Help: "Show who I act as when I call Microsoft 365 for you.",
		Run: func(ctx context.Context, t *bot.Turn, _ string) error {
			return withToken(ctx, t, tokens, func(tok string) error {
				p, err := c.Me(ctx, tok)
				if err != nil {
					return explain(ctx, t, err)
				}
				return t.ReplyCard(ctx, "", cards.Attachment(ProfileCard(p)))
			})
		}})
	b.Handle(bot.Command{Name: "mail", Usage: "mail <words>", Help: "Search your mailbox.",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			if strings.TrimSpace(args) == "" {
				return t.ReplyText(ctx, "What should I look for? For example: **mail quarterly report**")
			}
			return withToken(ctx, t, tokens, func(tok string) error {
				msgs, err := c.SearchMail(ctx, tok, args, 5)
				if err != nil {
					return explain(ctx, t, err)
				}
				return t.ReplyCard(ctx, "", cards.Attachment(MailCard(args, msgs)))
			})
		}})
	b.Handle(bot.Command{Name: "files", Usage: "files [words]",
		Help: "List the newest files in your OneDrive, or find files (yours and shared with you) by name.",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			words := strings.TrimSpace(args)
			return withToken(ctx, t, tokens, func(tok string) error {
				var items []DriveItem
				var err error
				if words == "" {
					items, err = c.Files(ctx, tok, 8)
				} else {
					items, err = c.SearchFiles(ctx, tok, words, 8)
				}
				if err != nil {
					return explain(ctx, t, err)
				}
				return t.ReplyCard(ctx, "", cards.Attachment(FilesCard(words, items)))
			})
		}})
}

func withToken(ctx context.Context, t *bot.Turn, tokens TokenNeeder, f func(tok string) error) error {
	tok, err := tokens.Need(ctx, t, ResourceName)
	if errors.Is(err, sso.ErrPrompted) {
		return nil
	}
	if errors.Is(err, sso.ErrNotConfigured) {
		return t.ReplyText(ctx, "Microsoft 365 sign-in is not configured for this bot.")
	}
	if err != nil {
		return err
	}
	return f(tok)
}

// explain tells the user plainly what Graph refused, without guessing at what it hid.
func explain(ctx context.Context, t *bot.Turn, err error) error {
	switch {
	case errors.Is(err, ErrForbidden):
		return t.ReplyText(ctx, "Microsoft 365 says you do not have access to that (or the bot has not been granted that permission).")
	case errors.Is(err, ErrThrottled):
		return t.ReplyText(ctx, "Microsoft 365 is busy right now; please try again in a minute.")
	case errors.Is(err, ErrUnauthorized):
		return t.ReplyText(ctx, "Microsoft 365 did not accept your sign-in. Type **signout** and ask again to sign in afresh.")
	default:
		return err
	}
}

// ProfileCard renders the user's profile.
func ProfileCard(p *Profile) map[string]any {
	facts := []cards.Fact{}
	add := func(k, v string) {
		if v != "" {
			facts = append(facts, cards.Fact{Title: k, Value: v})
		}
	}
	add("Email", p.Mail)
	add("Sign-in name", p.UserPrincipalName)
	add("Job title", p.JobTitle)
	add("Department", p.Department)
	add("Office", p.OfficeLocation)
	return cards.New(
		cards.PlainHeading(p.DisplayName),
		cards.Text("This is who I act as when I read Microsoft 365 for you.", true),
		cards.Facts(facts...),
	)
}

// MailCard renders mail search results.
func MailCard(query string, msgs []Message) map[string]any {
	body := []map[string]any{cards.PlainHeading(fmt.Sprintf("Mail matching “%s”", query))}
	if len(msgs) == 0 {
		body = append(body, cards.Text("Nothing in your mailbox matches.", true))
	}
	var actions []map[string]any
	for _, m := range msgs {
		from := m.From.EmailAddress.Name
		if from == "" {
			from = m.From.EmailAddress.Address
		}
		body = append(body,
			cards.PlainBold(m.Subject),
			cards.PlainText(fmt.Sprintf("%s · %s", from, m.ReceivedDateTime.Format("2 Jan 2006 15:04")), true),
			cards.PlainText(m.BodyPreview, false))
		if m.WebLink != "" && len(actions) < 5 {
			actions = append(actions, cards.OpenURL("Open: "+cards.Truncate(m.Subject, 30), m.WebLink))
		}
	}
	return cards.WithActions(cards.New(body...), actions...)
}

// FilesCard renders files: the newest in the user's OneDrive when query is empty, else
// those matching query.
func FilesCard(query string, items []DriveItem) map[string]any {
	heading, none := "Newest files in your OneDrive", "No files at the top of your OneDrive."
	if query != "" {
		heading, none = fmt.Sprintf("Files matching “%s”", query), "No file you can open matches."
	}
	body := []map[string]any{cards.PlainHeading(heading)}
	if len(items) == 0 {
		body = append(body, cards.PlainText(none, true))
	}
	for _, it := range items {
		// A RichTextBlock of TextRuns: names chosen by others (shared files) render as typed and
		// cannot form links of their own; only https links open.
		suffix := " · modified " + it.LastModifiedDateTime.Format("2 Jan 2006")
		if it.Shared {
			suffix += " · shared with you"
		}
		body = append(body, cards.PlainLink(it.Name, it.WebURL, suffix))
	}
	return cards.New(body...)
}
