package assistant

import (
	"context"
	"errors"
	"net/url"
	"regexp"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
)

// AtlassianReader is what the Jira and Confluence tools need: atlassian.Reader, which runs
// through the commands' own path as the turn user.
type AtlassianReader interface {
	Issue(ctx context.Context, t *bot.Turn, key string) (atlassian.Issue, error)
	SearchIssues(ctx context.Context, t *bot.Turn, words string) ([]atlassian.Issue, error)
	SearchPages(ctx context.Context, t *bot.Turn, words string) ([]atlassian.Page, error)
	Page(ctx context.Context, t *bot.Turn, ref string) (atlassian.Page, error)
	// ProposeComment shows the user a card with the exact comment; only their confirmation posts it.
	ProposeComment(ctx context.Context, t *bot.Turn, key, text string) error
}

var _ AtlassianReader = (*atlassian.Reader)(nil)

// AtlassianTools returns the Jira and Confluence tools.
func AtlassianTools(r AtlassianReader) []Tool {
	words := Param{Name: "words", Description: "words to search for", Required: true, MaxLen: 200}
	return []Tool{
		toolFunc{Spec{Name: "jira_issue", Description: "Get one Jira issue by key (status, assignee, priority, link), as the user sees it.",
			Params: []Param{{Name: "key", Description: "issue key such as PROJ-123", Required: true, MaxLen: 40, Pattern: regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,29}-[1-9][0-9]{0,9}$`)}}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				i, err := r.Issue(ctx, t, a["key"])
				if err != nil {
					return Result{}, atlassianErr(err)
				}
				return Result{Data: issueData(i), Hosts: hostOf(i.URL)}, nil
			}},
		toolFunc{Spec{Name: "jira_search", Description: "Find Jira issues the user can see by words.", Params: []Param{words}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				is, err := r.SearchIssues(ctx, t, a["words"])
				if err != nil {
					return Result{}, atlassianErr(err)
				}
				res := Result{}
				data := make([]map[string]string, 0, len(is))
				for _, i := range is {
					data = append(data, issueData(i))
					res.Hosts = append(res.Hosts, hostOf(i.URL)...)
				}
				res.Data = data
				return res, nil
			}},
		toolFunc{Spec{Name: "confluence_search", Description: "Find Confluence pages the user can see by words.", Params: []Param{words}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				ps, err := r.SearchPages(ctx, t, a["words"])
				if err != nil {
					return Result{}, atlassianErr(err)
				}
				res := Result{}
				data := make([]map[string]string, 0, len(ps))
				for _, p := range ps {
					data = append(data, pageData(p))
					res.Hosts = append(res.Hosts, hostOf(p.URL)...)
				}
				res.Data = data
				return res, nil
			}},
		toolFunc{Spec{Name: "jira_comment", Description: "Propose a comment on a Jira issue. The user sees the exact text on a card and must confirm it; nothing is posted until then.",
			Params: []Param{
				{Name: "key", Description: "issue key such as PROJ-123", Required: true, MaxLen: 40, Pattern: regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,29}-[1-9][0-9]{0,9}$`)},
				{Name: "text", Description: "the comment, exactly as the user wants it posted", Required: true, MaxLen: atlassian.MaxCommentLen},
			}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				if err := r.ProposeComment(ctx, t, a["key"], a["text"]); err != nil {
					return Result{}, atlassianErr(err)
				}
				return Result{}, ErrConfirmationShown
			}},
		toolFunc{Spec{Name: "confluence_page", Description: "Get one Confluence page (title, space, excerpt, link) by id or link.",
			Params: []Param{{Name: "page", Description: "page id or page link", Required: true, MaxLen: 500}}},
			func(ctx context.Context, t *bot.Turn, a map[string]string) (Result, error) {
				p, err := r.Page(ctx, t, a["page"])
				if err != nil {
					return Result{}, atlassianErr(err)
				}
				return Result{Data: pageData(p), Hosts: hostOf(p.URL)}, nil
			}},
	}
}

func issueData(i atlassian.Issue) map[string]string {
	return map[string]string{"key": i.Key, "summary": i.Summary, "status": i.Status, "assignee": i.Assignee, "priority": i.Priority, "url": i.URL}
}

func pageData(p atlassian.Page) map[string]string {
	return map[string]string{"id": p.ID, "title": p.Title, "space": p.Space, "excerpt": p.Excerpt, "url": p.URL}
}

func atlassianErr(err error) error {
	switch {
	case errors.Is(err, atlassian.ErrUserPrompted):
		return ErrUserPrompted
	case errors.Is(err, atlassian.ErrNotPermitted):
		return ErrNotFound
	default:
		// UserMessage never says more than Atlassian did and never quotes a credential.
		return &BadInputError{Msg: atlassian.UserMessage(err)}
	}
}

// hostOf is the https host of u, for the answer's link allow-list.
func hostOf(u string) []string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" {
		return nil
	}
	return []string{p.Hostname()}
}

// toolFunc is a Tool made of a spec and a function.
type toolFunc struct {
	spec Spec
	run  func(ctx context.Context, t *bot.Turn, args map[string]string) (Result, error)
}

func (f toolFunc) Spec() Spec { return f.spec }
func (f toolFunc) Run(ctx context.Context, t *bot.Turn, args map[string]string) (Result, error) {
	return f.run(ctx, t, args)
}
