package atlassian

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
)

// Linker gives commands the turn user's authorized Atlassian client and remembers small
// per-user facts (the chosen site).
type Linker interface {
	// Client returns the user's authorized client; when the user has no link it asks them to
	// connect, parks the question and returns an error matching oauthlink.ErrPrompted.
	Client(ctx context.Context, t *bot.Turn, connector string) (*http.Client, error)
	// Recover handles link failures (not connected, grant revoked) and reports whether it did.
	Recover(ctx context.Context, t *bot.Turn, connector string, err error) bool
	// Prefs returns the user's facts for the connection after merging set into them.
	Prefs(ctx context.Context, t *bot.Turn, connector string, set map[string]string) (map[string]string, error)
	// TakePref removes one fact and returns it when accept agrees, at most once across
	// instances; "" when there was nothing to take.
	TakePref(ctx context.Context, t *bot.Turn, connector, key string, accept func(value string) bool) (string, error)
}

var _ Linker = (*oauthlink.Service)(nil)

// Preference keys of the chosen site.
const (
	prefSiteID   = "site.id"
	prefSiteName = "site.name"
	prefSiteURL  = "site.url"
)

// maxResults bounds list answers.
const maxResults = 10

// Register adds the Jira and Confluence commands to b.
func Register(b *bot.Bot, c *Connector, l Linker, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	r := &runner{b: b, c: c, l: l, log: log}
	b.Handle(bot.Command{Name: "jira", Usage: "jira <KEY-123>", Help: "Show a Jira issue, as you see it.", Run: r.issue})
	b.Handle(bot.Command{Name: "jira search", Usage: "jira search <words>", Help: "Find Jira issues you can see.", Run: r.jiraSearch, Slow: true})
	b.Handle(bot.Command{Name: "my jira issues", Usage: "my jira issues", Help: "List the open Jira issues assigned to you.", Run: r.myIssues, Slow: true})
	b.Handle(bot.Command{Name: "jira site", Usage: "jira site <site id>", Help: "Choose which Atlassian site I use for you.", Run: r.chooseSite})
	b.Handle(bot.Command{Name: "confluence search", Usage: "confluence search <words>", Help: "Find Confluence pages you can see.", Run: r.confluenceSearch, Slow: true})
	b.Handle(bot.Command{Name: "confluence page", Usage: "confluence page <id or link>", Help: "Show a Confluence page: title, space, excerpt and link.", Run: r.page})
	// "jira comment <KEY> <text>" shows the comment on a card; its buttons send "jira comment
	// confirm|cancel <id>", and only the confirm posts it.
	b.Handle(bot.Command{Name: "jira comment", Usage: "jira comment <KEY-123> <text>", Help: "Comment on a Jira issue as you, after you confirm it on a card.", Run: r.confirm})
	b.Handle(bot.Command{Name: "confluence", Help: "Confluence: search, or show a page.", Run: r.confluenceUsage, Hidden: true})
}

type runner struct {
	b     *bot.Bot
	c     *Connector
	l     Linker
	log   *slog.Logger
	clock func() time.Time // nil: time.Now
}

// with runs f with the user's client and site, or tells the user why it cannot.
func (r *runner) with(ctx context.Context, t *bot.Turn, f func(hc *http.Client, site Site) error) error {
	err := r.read(ctx, t, f)
	var cf *callFailed
	switch {
	case err == nil, errors.Is(err, oauthlink.ErrPrompted), errors.Is(err, ErrAsked):
		return nil
	case errors.As(err, &cf):
		return r.fail(ctx, t, cf.err)
	default:
		return err
	}
}

// ErrAsked means the user was asked something first (to choose a site) and the question
// was kept for after their answer.
var ErrAsked = errors.New("atlassian: the user was asked to choose a site")

// callFailed marks an error of the site lookup or the call itself, as opposed to the link.
type callFailed struct{ err error }

func (e *callFailed) Error() string { return e.err.Error() }
func (e *callFailed) Unwrap() error { return e.err }

// read runs f with the turn user's own authorized client and site: the one path by which
// both commands and the assistant's tools reach Jira and Confluence. It returns
// oauthlink.ErrPrompted or ErrAsked when the user was asked to connect or choose a site.
func (r *runner) read(ctx context.Context, t *bot.Turn, f func(hc *http.Client, site Site) error) error {
	hc, err := r.l.Client(ctx, t, Name)
	if err != nil {
		return err
	}
	site, ok, err := r.site(ctx, t, hc)
	if err != nil {
		return &callFailed{err}
	}
	if !ok {
		return ErrAsked
	}
	if err := f(hc, site); err != nil {
		return &callFailed{err}
	}
	return nil
}

// site returns the remembered site, or the only one; with several and none remembered it
// asks the user once (ok=false).
func (r *runner) site(ctx context.Context, t *bot.Turn, hc *http.Client) (Site, bool, error) {
	prefs, err := r.l.Prefs(ctx, t, Name, nil)
	if err != nil {
		return Site{}, false, err
	}
	if u := prefs[prefSiteURL]; u != "" {
		s, err := r.c.Site(prefs[prefSiteID], prefs[prefSiteName], u)
		if err == nil {
			return s, true, nil
		}
	}
	sites, err := r.c.Sites(ctx, hc)
	if err != nil {
		return Site{}, false, err
	}
	if s, ok := ChooseSite(sites, ""); ok {
		if _, err := r.l.Prefs(ctx, t, Name, sitePrefs(s)); err != nil {
			r.log.Warn("remembering the Atlassian site failed", slog.String("error", err.Error()))
		}
		return s, true, nil
	}
	if len(sites) == 0 {
		t.Outcome = "atlassian-no-site"
		return Site{}, false, t.ReplyText(ctx, "Your Atlassian account does not give me access to any Jira or Confluence site. Ask your Atlassian administrator for access, then say **disconnect jira** and **connect jira**.")
	}
	t.Outcome = "atlassian-choose-site"
	return Site{}, false, t.ReplyCard(ctx, "", botframework.Attachment{ContentType: "application/vnd.microsoft.card.adaptive", Content: SiteChoiceCard(sites, bot.CommandText(t.Activity))})
}

func sitePrefs(s Site) map[string]string {
	return map[string]string{prefSiteID: s.ID, prefSiteName: s.Name, prefSiteURL: s.URL}
}

// fail answers a failed call: link problems through the Linker, everything else with
// UserMessage (which never says more than Atlassian did).
func (r *runner) fail(ctx context.Context, t *bot.Turn, err error) error {
	if errors.Is(err, oauthlink.ErrPrompted) {
		return nil
	}
	if r.l.Recover(ctx, t, Name, err) {
		return nil
	}
	switch {
	case errors.Is(err, ErrNotPermitted), errors.Is(err, ErrBadInput):
		t.Outcome = "atlassian-refused"
	default:
		t.Outcome = "atlassian-error"
		r.log.Warn("atlassian call failed", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
	}
	return t.ReplyText(ctx, mdtext.Escape(UserMessage(err)))
}

func (r *runner) issue(ctx context.Context, t *bot.Turn, args string) error {
	key := strings.ToUpper(strings.TrimSpace(args))
	if key == "" || !ValidIssueKey(key) {
		return t.ReplyText(ctx, "Tell me an issue key, for example **jira PROJ-123**. You can also say `jira search <words>` or **my jira issues**.")
	}
	return r.with(ctx, t, func(hc *http.Client, site Site) error {
		i, err := r.c.Jira(hc, site).Issue(ctx, key)
		if err != nil {
			return err
		}
		return t.ReplyCard(ctx, "", attachment(IssueCard(i)))
	})
}

func (r *runner) jiraSearch(ctx context.Context, t *bot.Turn, args string) error {
	if strings.TrimSpace(args) == "" {
		return t.ReplyText(ctx, "What should I look for? For example: **jira search payment timeout**")
	}
	return r.with(ctx, t, func(hc *http.Client, site Site) error {
		is, err := r.c.Jira(hc, site).Search(ctx, args, maxResults)
		if err != nil {
			return err
		}
		return t.ReplyCard(ctx, "", attachment(IssueListCard(fmt.Sprintf("Jira issues matching \u201c%s\u201d", strings.TrimSpace(args)), is)))
	})
}

func (r *runner) myIssues(ctx context.Context, t *bot.Turn, _ string) error {
	return r.with(ctx, t, func(hc *http.Client, site Site) error {
		is, err := r.c.Jira(hc, site).MyOpenIssues(ctx, maxResults)
		if err != nil {
			return err
		}
		return t.ReplyCard(ctx, "", attachment(IssueListCard("Your open Jira issues", is)))
	})
}

func (r *runner) confluenceSearch(ctx context.Context, t *bot.Turn, args string) error {
	if strings.TrimSpace(args) == "" {
		return t.ReplyText(ctx, "What should I look for? For example: **confluence search release checklist**")
	}
	return r.with(ctx, t, func(hc *http.Client, site Site) error {
		ps, err := r.c.Confluence(hc, site).Search(ctx, args, maxResults)
		if err != nil {
			return err
		}
		return t.ReplyCard(ctx, "", attachment(PageListCard(fmt.Sprintf("Confluence pages matching \u201c%s\u201d", strings.TrimSpace(args)), ps)))
	})
}

func (r *runner) page(ctx context.Context, t *bot.Turn, args string) error {
	if strings.TrimSpace(args) == "" {
		return t.ReplyText(ctx, "Tell me a page id or link, for example **confluence page 123456**.")
	}
	return r.with(ctx, t, func(hc *http.Client, site Site) error {
		p, err := r.c.Confluence(hc, site).Page(ctx, strings.TrimSpace(args))
		if err != nil {
			return err
		}
		return t.ReplyCard(ctx, "", attachment(PageCard(p)))
	})
}

func (r *runner) confluenceUsage(ctx context.Context, t *bot.Turn, _ string) error {
	return t.ReplyText(ctx, "Say `confluence search <words>` or `confluence page <id or link>`.")
}

// chooseSite remembers the site picked on SiteChoiceCard, then answers the question that
// prompted the choice, if any.
func (r *runner) chooseSite(ctx context.Context, t *bot.Turn, args string) error {
	fields := strings.Fields(args)
	hc, err := r.l.Client(ctx, t, Name)
	if errors.Is(err, oauthlink.ErrPrompted) {
		return nil
	}
	if err != nil {
		return err
	}
	sites, err := r.c.Sites(ctx, hc)
	if err != nil {
		return r.fail(ctx, t, err)
	}
	// Only a site the user's own grant lists can be chosen.
	var chosen *Site
	switch {
	case len(fields) == 0 && len(sites) == 1:
		// Nothing to choose: the one site is the answer.
		chosen = &sites[0]
	case len(fields) == 0 && len(sites) == 0:
		t.Outcome = "atlassian-no-site"
		return t.ReplyText(ctx, "Your Atlassian account does not give me access to any Jira or Confluence site. Ask your Atlassian administrator for access, then say **disconnect jira** and **connect jira**.")
	case len(fields) == 0:
		t.Outcome = "atlassian-choose-site"
		return t.ReplyCard(ctx, "", attachment(SiteChoiceCard(sites, "")))
	}
	for i := range sites {
		if len(fields) > 0 && sites[i].ID == fields[0] {
			chosen = &sites[i]
		}
	}
	if chosen == nil {
		return t.ReplyText(ctx, "That is not one of your Atlassian sites. Ask me something about Jira and I will show you your sites.")
	}
	if _, err := r.l.Prefs(ctx, t, Name, sitePrefs(*chosen)); err != nil {
		return err
	}
	host := chosen.Name
	if u, err := url.Parse(chosen.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	t.Outcome = "atlassian-site-chosen"
	if err := t.ReplyText(ctx, mdtext.Sprintf("I will use %s for you from now on.", host)); err != nil {
		return err
	}
	if len(fields) < 2 {
		return nil
	}
	question := strings.TrimSpace(strings.Join(fields[1:], " "))
	if question == "" || strings.HasPrefix(strings.ToLower(question), "jira site") {
		return nil
	}
	again := *t.Activity
	again.Text, again.Value = question, nil
	_, _, err = r.b.OnActivity(ctx, &again)
	return err
}

func attachment(card map[string]any) botframework.Attachment {
	return botframework.Attachment{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}
}
