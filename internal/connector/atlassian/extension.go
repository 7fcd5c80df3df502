package atlassian

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
)

// Search message extension commands (appPackage manifest composeExtensions[0].commands).
const (
	JiraSearchCommand       = "jiraSearch"
	ConfluenceSearchCommand = "confluenceSearch"
)

// RegisterExtension answers the search message extension and link unfurling as the user who
// types (msteams-docs messaging-extensions/how-to/search-commands/respond-to-search.md,
// add-authentication.md, link-unfurling.md):
//   - composeExtension/query, commands jiraSearch and confluenceSearch: each issue or page the
//     user can see becomes a result (an Adaptive Card with a thumbnail preview) the user may
//     insert; a user without an Atlassian link gets the "auth" answer whose openUrl action
//     is the connect link.
//   - composeExtension/queryLink: a Jira issue or Confluence page link on the user's own site
//     unfurls into its card, read as the user; other links are left alone.
//
// The invoke carries the Teams user's Entra identity (from.aadObjectId, authenticated with the
// channel's token), which names the stored Atlassian link; no Teams SSO token is involved.
func RegisterExtension(b *bot.Bot, c *Connector, l Linker, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	r := &runner{b: b, c: c, l: l, log: log}
	b.HandleSearch(JiraSearchCommand, r.extensionQuery)
	b.HandleSearch(ConfluenceSearchCommand, r.extensionQuery)
	b.HandleInvoke("composeExtension/queryLink", r.extensionLink)
}

type extensionQuery struct {
	CommandID  string `json:"commandId"`
	Parameters []struct {
		Name  string `json:"name"`
		Value any    `json:"value"`
	} `json:"parameters"`
	QueryOptions struct {
		Skip  int `json:"skip"`
		Count int `json:"count"`
	} `json:"queryOptions"`
	State string `json:"state,omitempty"`
}

// extensionResponse is {composeExtension: result} with HTTP 200.
func extensionResponse(result map[string]any) *botframework.InvokeResponse {
	return &botframework.InvokeResponse{Status: http.StatusOK, Body: map[string]any{"composeExtension": result}}
}

func extensionMessage(text string) *botframework.InvokeResponse {
	return extensionResponse(map[string]any{"type": "message", "text": text})
}

// withUser runs f with the user's client and site. When the user must connect first it
// returns the "auth" answer; when something else must be said first, a message answer.
func (r *runner) withUser(ctx context.Context, t *bot.Turn, f func(hc *http.Client, site Site) (*botframework.InvokeResponse, error)) (*botframework.InvokeResponse, error) {
	t.Capture()
	var resp *botframework.InvokeResponse
	err := r.with(ctx, t, func(hc *http.Client, site Site) error {
		var err error
		resp, err = f(hc, site)
		return err
	})
	got := t.Captured()
	if err != nil && !errors.Is(err, oauthlink.ErrPrompted) {
		return nil, err
	}
	if resp != nil {
		return resp, nil
	}
	if link := signInLink(got); link != "" {
		t.Outcome = "extension-auth"
		return extensionResponse(map[string]any{"type": "auth", "suggestedActions": map[string]any{
			"actions": []map[string]any{{"type": "openUrl", "value": link, "title": "Connect Jira and Confluence"}},
		}}), nil
	}
	for _, a := range got {
		if len(a.Attachments) > 0 {
			return extensionMessage("Choose your Atlassian site first: open a chat with me and say jira search."), nil
		}
		if a.Text != "" {
			return extensionMessage(plain(a.Text)), nil
		}
	}
	return extensionMessage("Nothing to show."), nil
}

// signInLink finds the connect link in the sign-in card a turn would have sent.
func signInLink(got []*botframework.Activity) string {
	for _, a := range got {
		for _, att := range a.Attachments {
			raw, _ := json.Marshal(att.Content)
			var c struct {
				Buttons []struct {
					Type, Value string
				} `json:"buttons"`
				Actions []struct {
					Type, URL string
				} `json:"actions"`
			}
			_ = json.Unmarshal(raw, &c)
			for _, btn := range c.Buttons {
				if btn.Type == "signin" || btn.Type == "openUrl" {
					return btn.Value
				}
			}
			for _, act := range c.Actions {
				if act.Type == "Action.OpenUrl" && strings.Contains(act.URL, "/api/oauth/start") {
					return act.URL
				}
			}
		}
	}
	return ""
}

// plain drops Markdown emphasis from a sentence the bot wrote, for the compose box.
func plain(s string) string { return strings.NewReplacer("**", "", "`", "").Replace(s) }

func (r *runner) extensionQuery(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	var q extensionQuery
	if err := json.Unmarshal(t.Activity.Value, &q); err != nil {
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	words := ""
	for _, p := range q.Parameters {
		if s, ok := p.Value.(string); ok && p.Name != "initialRun" {
			words = strings.TrimSpace(s)
		}
	}
	if q.CommandID != JiraSearchCommand && q.CommandID != ConfluenceSearchCommand {
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	if words == "" {
		return extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": []any{}}), nil
	}
	t.Outcome = "extension-" + q.CommandID
	return r.withUser(ctx, t, func(hc *http.Client, site Site) (*botframework.InvokeResponse, error) {
		var items []map[string]any
		if q.CommandID == JiraSearchCommand {
			is, err := r.c.Jira(hc, site).Search(ctx, words, maxResults)
			if err != nil {
				return nil, err
			}
			for _, i := range is {
				items = append(items, issueResult(i))
			}
		} else {
			ps, err := r.c.Confluence(hc, site).Search(ctx, words, maxResults)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				items = append(items, pageResult(p))
			}
		}
		return extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": items}), nil
	})
}

func issueResult(i Issue) map[string]any {
	return map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": IssueCard(i),
		"preview": map[string]any{"contentType": "application/vnd.microsoft.card.thumbnail",
			"content": map[string]any{"title": i.Key + " " + i.Summary, "text": i.Status}}}
}

func pageResult(p Page) map[string]any {
	return map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": PageCard(p),
		"preview": map[string]any{"contentType": "application/vnd.microsoft.card.thumbnail",
			"content": map[string]any{"title": p.Title, "text": p.Space}}}
}

var browseRE = regexp.MustCompile(`^/browse/([A-Za-z][A-Za-z0-9_]*-[0-9]+)$`)

func (r *runner) extensionLink(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	var v struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(t.Activity.Value, &v); err != nil || v.URL == "" {
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	u, err := url.Parse(v.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": []any{}}), nil
	}
	t.Outcome = "extension-unfurl"
	return r.withUser(ctx, t, func(hc *http.Client, site Site) (*botframework.InvokeResponse, error) {
		empty := extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": []any{}})
		// Only links to the user's own site are read, with the user's own access.
		if su, err := url.Parse(site.URL); err != nil || !strings.EqualFold(su.Host, u.Host) {
			return empty, nil
		}
		if m := browseRE.FindStringSubmatch(u.Path); m != nil && ValidIssueKey(strings.ToUpper(m[1])) {
			i, err := r.c.Jira(hc, site).Issue(ctx, strings.ToUpper(m[1]))
			if err != nil {
				return nil, err
			}
			return extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": []any{issueResult(i)}}), nil
		}
		if strings.Contains(u.Path, "/wiki/") {
			p, err := r.c.Confluence(hc, site).Page(ctx, v.URL)
			if err != nil {
				return nil, err
			}
			return extensionResponse(map[string]any{"type": "result", "attachmentLayout": "list", "attachments": []any{pageResult(p)}}), nil
		}
		return empty, nil
	})
}
