package atlassian

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
)

// ErrUserPrompted means the user was shown a card (connect, reconnect or choose a site)
// instead of an answer; the question was kept for after they act on it.
var ErrUserPrompted = errors.New("atlassian: the user was asked to connect or choose a site")

// Reader answers Jira and Confluence questions for code other than the commands (the
// assistant's tools) through the commands' own path: the turn user's own link, their chosen
// site, the same connector calls and the same input checks. Errors are this package's
// (ErrNotPermitted, ErrBadInput …) or ErrUserPrompted.
type Reader struct{ r *runner }

// NewReader returns a Reader over c and l.
func NewReader(c *Connector, l Linker, log *slog.Logger) *Reader {
	if log == nil {
		log = slog.Default()
	}
	return &Reader{r: &runner{c: c, l: l, log: log}}
}

func (x *Reader) read(ctx context.Context, t *bot.Turn, f func(hc *http.Client, site Site) error) error {
	err := x.r.read(ctx, t, f)
	var cf *callFailed
	switch {
	case err == nil:
		return nil
	case errors.Is(err, oauthlink.ErrPrompted), errors.Is(err, ErrAsked):
		return ErrUserPrompted
	case errors.As(err, &cf):
		if x.r.l.Recover(ctx, t, Name, cf.err) {
			return ErrUserPrompted
		}
		return cf.err
	default:
		return err
	}
}

// Issue returns one issue as the user sees it.
func (x *Reader) Issue(ctx context.Context, t *bot.Turn, key string) (Issue, error) {
	key = strings.ToUpper(strings.TrimSpace(key))
	if !ValidIssueKey(key) {
		return Issue{}, badInput("%q is not a Jira issue key (like PROJ-123).", key)
	}
	var i Issue
	err := x.read(ctx, t, func(hc *http.Client, site Site) (err error) {
		i, err = x.r.c.Jira(hc, site).Issue(ctx, key)
		return err
	})
	return i, err
}

// SearchIssues finds issues the user can see.
func (x *Reader) SearchIssues(ctx context.Context, t *bot.Turn, words string) ([]Issue, error) {
	var is []Issue
	err := x.read(ctx, t, func(hc *http.Client, site Site) (err error) {
		is, err = x.r.c.Jira(hc, site).Search(ctx, words, maxResults)
		return err
	})
	return is, err
}

// SearchPages finds Confluence pages the user can see.
func (x *Reader) SearchPages(ctx context.Context, t *bot.Turn, words string) ([]Page, error) {
	var ps []Page
	err := x.read(ctx, t, func(hc *http.Client, site Site) (err error) {
		ps, err = x.r.c.Confluence(hc, site).Search(ctx, words, maxResults)
		return err
	})
	return ps, err
}

// Page returns one Confluence page (id or link) as the user sees it.
func (x *Reader) Page(ctx context.Context, t *bot.Turn, ref string) (Page, error) {
	var p Page
	err := x.read(ctx, t, func(hc *http.Client, site Site) (err error) {
		p, err = x.r.c.Confluence(hc, site).Page(ctx, strings.TrimSpace(ref))
		return err
	})
	return p, err
}
