package assistant

import (
	"context"
	"errors"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/connector/graph"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// GraphReader is the part of graph.Client the mail and files tools use.
type GraphReader interface {
	SearchMail(ctx context.Context, token, text string, top int) ([]graph.Message, error)
	Files(ctx context.Context, token string, top int) ([]graph.DriveItem, error)
	SearchFiles(ctx context.Context, token, text string, top int) ([]graph.DriveItem, error)
}

var _ GraphReader = (*graph.Client)(nil)

// GraphTools returns the mail and files tools. Each gets the turn user's Graph token exactly
// as the mail and files commands do (tokens.Need, which starts Teams SSO when needed); the
// token stays inside the tool.
func GraphTools(c GraphReader, tokens graph.TokenNeeder) []Tool {
	with := func(ctx context.Context, t *bot.Turn, f func(tok string) (Result, error)) (Result, error) {
		tok, err := tokens.Need(ctx, t, graph.ResourceName)
		switch {
		case errors.Is(err, sso.ErrPrompted):
			return Result{}, ErrUserPrompted
		case errors.Is(err, sso.ErrNotConfigured):
			return Result{}, &BadInputError{Msg: "Microsoft 365 sign-in is not configured for this bot."}
		case err != nil:
			return Result{}, err
		}
		res, err := f(tok)
		switch {
		case errors.Is(err, graph.ErrForbidden):
			return Result{}, &BadInputError{Msg: "Microsoft 365 says the user does not have access to that."}
		case errors.Is(err, graph.ErrThrottled):
			return Result{}, &BadInputError{Msg: "Microsoft 365 is busy right now."}
		case errors.Is(err, graph.ErrUnauthorized):
			return Result{}, &BadInputError{Msg: "Microsoft 365 did not accept the user's sign-in; they can type signout and ask again."}
		}
		return res, err
	}
	return []Tool{
		toolFunc{Spec{Name: "mail_search", Description: "Search the user's own mailbox; returns subject, sender, date, preview and link of up to 5 messages.",
			Params: []Param{{Name: "words", Description: "words to search for", Required: true, MaxLen: 200}}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				return with(ctx, t, func(tok string) (Result, error) {
					msgs, err := c.SearchMail(ctx, tok, a["words"], 5)
					if err != nil {
						return Result{}, err
					}
					var res Result
					data := make([]map[string]string, 0, len(msgs))
					for _, m := range msgs {
						data = append(data, map[string]string{"subject": m.Subject, "from": m.From.EmailAddress.Name,
							"received": m.ReceivedDateTime.Format("2006-01-02 15:04"), "preview": m.BodyPreview, "url": m.WebLink})
						res.Hosts = append(res.Hosts, hostOf(m.WebLink)...)
					}
					res.Data = data
					return res, nil
				})
			}},
		toolFunc{Spec{Name: "files", Description: "List the user's newest OneDrive files, or find files (theirs and shared with them) by name.",
			Params: []Param{{Name: "words", Description: "words in the file name; empty lists the newest files", MaxLen: 200}}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				return with(ctx, t, func(tok string) (Result, error) {
					var items []graph.DriveItem
					var err error
					if a["words"] == "" {
						items, err = c.Files(ctx, tok, 8)
					} else {
						items, err = c.SearchFiles(ctx, tok, a["words"], 8)
					}
					if err != nil {
						return Result{}, err
					}
					var res Result
					data := make([]map[string]string, 0, len(items))
					for _, it := range items {
						data = append(data, map[string]string{"name": it.Name, "modified": it.LastModifiedDateTime.Format("2006-01-02"), "url": it.WebURL})
						res.Hosts = append(res.Hosts, hostOf(it.WebURL)...)
					}
					res.Data = data
					return res, nil
				})
			}},
	}
}
