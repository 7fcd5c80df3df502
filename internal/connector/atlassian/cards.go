package atlassian

import (
	"net/url"
	"strings"

	"github.com/onbehalf/onbehalf/internal/mdtext"
)

// Adaptive Card 1.5 (adaptivecards.io/explorer; Teams renders 1.5 for bots,
// learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-reference).
// Text from Atlassian goes into RichTextBlock TextRuns, which are not markdown-processed, so a
// summary cannot inject links or formatting; TextBlock is used only for the bot's own words.

const (
	cardSchema  = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion = "1.5"
)

func card(body []any, actions []any) map[string]any {
	c := map[string]any{
		"type":    "AdaptiveCard",
		"$schema": cardSchema,
		"version": cardVersion,
		"body":    body,
	}
	if len(actions) > 0 {
		c["actions"] = actions
	}
	return c
}

func run(text string, extra map[string]any) map[string]any {
	r := map[string]any{"type": "TextRun", "text": text}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

func rich(runs ...any) map[string]any {
	return map[string]any{"type": "RichTextBlock", "inlines": runs}
}

// title is a TextBlock for the bot's own words (a list's title), never Atlassian data.
func title(text string) map[string]any {
	return map[string]any{"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium", "wrap": true}
}

// heading is untrusted text (a page title) as a bold, non-markdown line.
func heading(text string) map[string]any {
	return rich(run(text, map[string]any{"weight": "Bolder", "size": "Medium"}))
}

func facts(pairs ...string) map[string]any {
	fs := []any{}
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		fs = append(fs, map[string]any{"title": pairs[i], "value": noMarkdown(pairs[i+1])})
	}
	return map[string]any{"type": "FactSet", "facts": fs}
}

// noMarkdown keeps FactSet values (which Teams renders with markdown) from forming links:
// brackets and angle brackets are replaced by look-alikes.
func noMarkdown(s string) string {
	return strings.NewReplacer("[", "［", "]", "］", "<", "‹", ">", "›").Replace(s)
}

// openURL is an Action.OpenUrl when u is an https URL; otherwise nil (no link is better than
// a wrong one).
func openURL(label, u string) []any {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.Host == "" {
		return nil
	}
	return []any{map[string]any{"type": "Action.OpenUrl", "title": label, "url": u}}
}

func stamp(i Issue) string {
	if i.Updated.IsZero() {
		return ""
	}
	return i.Updated.UTC().Format("2006-01-02 15:04 UTC")
}

// IssueCard shows one issue: key and summary, status, assignee, priority, updated, and a
// button to open it in Jira.
func IssueCard(i Issue) map[string]any {
	assignee := i.Assignee
	if assignee == "" {
		assignee = "Unassigned"
	}
	body := []any{
		rich(run(i.Key, map[string]any{"weight": "Bolder", "size": "Medium", "color": "Accent"}),
			run("  "+i.Summary, map[string]any{"size": "Medium"})),
		facts("Status", i.Status, "Assignee", assignee, "Priority", i.Priority, "Updated", stamp(i)),
	}
	return card(body, openURL("Open in Jira", i.URL))
}

// IssueListCard lists issues under the bot's heading; each row opens its issue. An empty list
// says so.
func IssueListCard(headingText string, issues []Issue) map[string]any {
	body := []any{heading(headingText)}
	if len(issues) == 0 {
		body = append(body, rich(run("No issues found.", map[string]any{"isSubtle": true})))
	}
	for _, i := range issues {
		assignee := i.Assignee
		if assignee == "" {
			assignee = "Unassigned"
		}
		meta := []string{}
		for _, m := range []string{i.Status, i.Priority, assignee} {
			if m != "" {
				meta = append(meta, m)
			}
		}
		c := map[string]any{
			"type":      "Container",
			"separator": true,
			"items": []any{
				rich(run(i.Key, map[string]any{"weight": "Bolder", "color": "Accent"}), run("  "+i.Summary, nil)),
				rich(run(strings.Join(meta, " · "), map[string]any{"isSubtle": true, "size": "Small"})),
			},
		}
		if a := openURL("Open in Jira", i.URL); a != nil {
			c["selectAction"] = a[0]
		}
		body = append(body, c)
	}
	return card(body, nil)
}

// PageCard shows one Confluence page: title, space, updated, an excerpt and a button to open it.
func PageCard(p Page) map[string]any {
	updated := ""
	if !p.Updated.IsZero() {
		updated = p.Updated.UTC().Format("2006-01-02 15:04 UTC")
	}
	body := []any{heading(p.Title), facts("Space", p.Space, "Updated", updated)}
	if p.Excerpt != "" {
		body = append(body, rich(run(p.Excerpt, nil)))
	}
	return card(body, openURL("Open in Confluence", p.URL))
}

// PageListCard lists pages under the bot's heading; each row opens its page.
func PageListCard(headingText string, pages []Page) map[string]any {
	body := []any{heading(headingText)}
	if len(pages) == 0 {
		body = append(body, rich(run("No pages found.", map[string]any{"isSubtle": true})))
	}
	for _, p := range pages {
		items := []any{rich(run(p.Title, map[string]any{"weight": "Bolder", "color": "Accent"}))}
		sub := p.Space
		if p.Excerpt != "" {
			sub = strings.TrimPrefix(p.Space+" — "+p.Excerpt, " — ")
		}
		if sub != "" {
			items = append(items, rich(run(sub, map[string]any{"isSubtle": true, "size": "Small"})))
		}
		c := map[string]any{"type": "Container", "separator": true, "items": items}
		if a := openURL("Open in Confluence", p.URL); a != nil {
			c["selectAction"] = a[0]
		}
		body = append(body, c)
	}
	return card(body, nil)
}

// SiteChoiceCard asks which Atlassian site to use when the user's grant covers several. Each
// button is an Action.Execute (verb "command", as bot.ExecuteCommand) whose data is {"command": "jira site <id> <question>"}: choosing
// is the same as typing it, so the bot remembers the site and then answers the question the
// user asked (question may be empty).
func SiteChoiceCard(sites []Site, question string) map[string]any {
	body := []any{title("Your Atlassian account has several sites. Which one should I use?")}
	var actions []any
	for _, s := range sites {
		label := s.Name
		if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
			label = u.Host
		}
		actions = append(actions, map[string]any{
			"type": "Action.Execute", "title": label, "verb": "command",
			"data": map[string]any{"command": strings.TrimSpace("jira site " + s.ID + " " + question)},
		})
	}
	return card(body, actions)
}

// ConnectedText is the proactive message after linking.
func ConnectedText(a Account) mdtext.Markdown {
	name := a.Name
	if name == "" {
		name = a.Email
	}
	return mdtext.Sprintf("Connected to Jira as %s.", name)
}
