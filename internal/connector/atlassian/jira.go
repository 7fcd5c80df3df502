package atlassian

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Issue is a Jira issue as the bot shows it.
type Issue struct {
	Key     string
	Summary string
	Status  string
	// StatusCategory is Jira's category key: "new", "indeterminate" or "done".
	StatusCategory string
	// Assignee is the display name; empty when unassigned.
	Assignee string
	Priority string
	Updated  time.Time
	// URL opens the issue in the browser.
	URL string
}

// Jira calls Jira as the user on one site.
type Jira struct {
	hc   *http.Client
	site Site
	base string // REST root: …/rest/api/3 (Cloud) or …/rest/api/2 (Data Center)
}

// Jira returns a Jira client for site using the user's authorized client.
func (c *Connector) Jira(hc *http.Client, site Site) *Jira {
	base := site.apiURL + "/ex/jira/" + url.PathEscape(site.ID) + "/rest/api/3"
	if site.dataCenter {
		base = site.URL + "/rest/api/2"
	}
	return &Jira{hc: hc, site: site, base: base}
}

// issueKeyRE is Jira's default issue key format: a project key (upper-case letter, then
// upper-case letters, digits or '_') and a number.
var issueKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[0-9]{1,10}$`)

// ValidIssueKey reports whether key looks like a Jira issue key (PROJ-123).
func ValidIssueKey(key string) bool { return issueKeyRE.MatchString(key) }

// issueFields are the only fields requested: what the card shows.
const issueFields = "summary,status,assignee,priority,updated"

type issueJSON struct {
	Key    string `json:"key"`
	Fields struct {
		Summary string `json:"summary"`
		Status  struct {
			Name           string `json:"name"`
			StatusCategory struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		} `json:"status"`
		Assignee *struct {
			DisplayName string `json:"displayName"`
		} `json:"assignee"`
		Priority *struct {
			Name string `json:"name"`
		} `json:"priority"`
		Updated string `json:"updated"`
	} `json:"fields"`
}

// jiraTimeLayout is Jira's timestamp format (2026-11-20T09:30:00.000+0000).
const jiraTimeLayout = "2006-01-02T15:04:05.000-0700"

func (j *Jira) toIssue(x issueJSON) Issue {
	is := Issue{
		Key: x.Key, Summary: x.Fields.Summary, Status: x.Fields.Status.Name,
		StatusCategory: x.Fields.Status.StatusCategory.Key,
	}
	if x.Fields.Assignee != nil {
		is.Assignee = x.Fields.Assignee.DisplayName
	}
	if x.Fields.Priority != nil {
		is.Priority = x.Fields.Priority.Name
	}
	if t, err := time.Parse(jiraTimeLayout, x.Fields.Updated); err == nil {
		is.Updated = t
	}
	if ValidIssueKey(x.Key) {
		is.URL = j.site.URL + "/browse/" + x.Key
	}
	return is
}

// Issue fetches one issue. A key that does not exist and one the user may not see both give
// a *NotPermittedError, as Jira answers both with 404.
func (j *Jira) Issue(ctx context.Context, key string) (Issue, error) {
	key = strings.ToUpper(strings.TrimSpace(key))
	if !ValidIssueKey(key) {
		return Issue{}, badInput("%q is not a Jira issue key; it looks like PROJ-123.", truncate(key, 40))
	}
	var x issueJSON
	u := j.base + "/issue/" + key + "?fields=" + url.QueryEscape(issueFields)
	if err := getJSON(ctx, j.hc, "jira issue", u, &x, func() error {
		return &NotPermittedError{Kind: "issue", Ref: key}
	}); err != nil {
		return Issue{}, err
	}
	return j.toIssue(x), nil
}

// MyOpenIssues lists open issues assigned to the user, most recently updated first.
func (j *Jira) MyOpenIssues(ctx context.Context, max int) ([]Issue, error) {
	return j.search(ctx, "assignee = currentUser() AND statusCategory != Done ORDER BY updated DESC", max)
}

// Search finds issues whose text matches the user's words, most recently updated first.
func (j *Jira) Search(ctx context.Context, text string, max int) ([]Issue, error) {
	t, err := searchText(text)
	if err != nil {
		return nil, err
	}
	return j.search(ctx, "text ~ "+quoteString(t)+" ORDER BY updated DESC", max)
}

// maxSearchPages bounds how many pages one search follows, whatever the server answers.
const maxSearchPages = 10

func (j *Jira) search(ctx context.Context, jql string, max int) ([]Issue, error) {
	if max <= 0 || max > 50 {
		max = 10
	}
	if j.site.dataCenter {
		return j.searchDataCenter(ctx, jql, max)
	}
	// Cloud's enhanced search (/search/jql) replaced /search. It pages with nextPageToken, may
	// return fewer issues than maxResults asked for, and reports no total: follow the tokens
	// until max issues are in or the last page came.
	out := make([]Issue, 0, max)
	next := ""
	for page := 0; page < maxSearchPages && len(out) < max; page++ {
		q := url.Values{"jql": {jql}, "fields": {issueFields}, "maxResults": {strconv.Itoa(max - len(out))}}
		if next != "" {
			q.Set("nextPageToken", next)
		}
		var res struct {
			Issues        []issueJSON `json:"issues"`
			NextPageToken string      `json:"nextPageToken"`
			IsLast        *bool       `json:"isLast"`
		}
		if err := getJSON(ctx, j.hc, "jira search", j.base+"/search/jql?"+q.Encode(), &res, nil); err != nil {
			return nil, err
		}
		for _, x := range res.Issues {
			if len(out) < max {
				out = append(out, j.toIssue(x))
			}
		}
		last := res.NextPageToken == "" || (res.IsLast != nil && *res.IsLast)
		if last || res.NextPageToken == next || len(res.Issues) == 0 {
			break // the last page, or a server that would loop
		}
		next = res.NextPageToken
	}
	return out, nil
}

// searchDataCenter uses Data Center's /rest/api/2/search, one page of up to max issues.
func (j *Jira) searchDataCenter(ctx context.Context, jql string, max int) ([]Issue, error) {
	q := url.Values{"jql": {jql}, "fields": {issueFields}, "maxResults": {strconv.Itoa(max)}}
	var res struct {
		Issues []issueJSON `json:"issues"`
	}
	if err := getJSON(ctx, j.hc, "jira search", j.base+"/search?"+q.Encode(), &res, nil); err != nil {
		return nil, err
	}
	out := make([]Issue, 0, len(res.Issues))
	for _, x := range res.Issues {
		out = append(out, j.toIssue(x))
	}
	return out, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
