package atlassian_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
)

// checkCard asserts the Adaptive Card 1.5 envelope and that it survives JSON encoding, and
// returns the JSON text.
func checkCard(t *testing.T, c map[string]any) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["type"] != "AdaptiveCard" || back["version"] != "1.5" ||
		back["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" {
		t.Errorf("envelope: %v %v %v", back["type"], back["version"], back["$schema"])
	}
	body, ok := back["body"].([]any)
	if !ok || len(body) == 0 {
		t.Fatal("card has no body")
	}
	allowed := map[string]bool{"TextBlock": true, "RichTextBlock": true, "FactSet": true, "Container": true}
	for _, el := range body {
		m := el.(map[string]any)
		if !allowed[m["type"].(string)] {
			t.Errorf("unexpected element %v", m["type"])
		}
	}
	return string(b)
}

func actionURLs(c map[string]any) []string {
	var out []string
	acts, _ := c["actions"].([]any)
	for _, a := range acts {
		m := a.(map[string]any)
		if m["type"] == "Action.OpenUrl" {
			out = append(out, m["url"].(string))
		}
	}
	return out
}

func TestIssueCard(t *testing.T) {
	is := atlassian.Issue{Key: "PROJ-1", Summary: "Payment service leaks [memory](https://evil.example)",
		Status: "In Progress", Assignee: "", Priority: "High",
		Updated: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), URL: "https://acme.atlassian.net/browse/PROJ-1"}
	c := atlassian.IssueCard(is)
	js := checkCard(t, c)
	for _, want := range []string{"PROJ-1", "Payment service leaks", "In Progress", "Unassigned", "High", "2026-11-20 09:30 UTC", `"type":"FactSet"`} {
		if !strings.Contains(js, want) {
			t.Errorf("card lacks %q: %s", want, js)
		}
	}
	if got := actionURLs(c); len(got) != 1 || got[0] != is.URL {
		t.Errorf("actions %v", got)
	}
	// The summary is a TextRun, never a markdown TextBlock.
	if strings.Contains(js, `"type":"TextBlock","text":"Payment`) {
		t.Error("summary rendered as markdown")
	}

	is.URL = "javascript:alert(1)"
	if got := actionURLs(atlassian.IssueCard(is)); len(got) != 0 {
		t.Errorf("non-https link kept: %v", got)
	}
}

func TestListAndPageCards(t *testing.T) {
	list := atlassian.IssueListCard("Your open issues", []atlassian.Issue{
		{Key: "PROJ-1", Summary: "One", Status: "To Do", URL: "https://acme.atlassian.net/browse/PROJ-1"},
		{Key: "PROJ-2", Summary: "Two", Status: "Done", Assignee: "Bob", URL: "https://acme.atlassian.net/browse/PROJ-2"},
	})
	js := checkCard(t, list)
	for _, want := range []string{"Your open issues", "PROJ-1", "PROJ-2", "Bob", "Unassigned", "https://acme.atlassian.net/browse/PROJ-2", "Action.OpenUrl"} {
		if !strings.Contains(js, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if js := checkCard(t, atlassian.IssueListCard("Search", nil)); !strings.Contains(js, "No issues found.") {
		t.Error("empty list does not say so")
	}

	p := atlassian.Page{ID: "1001", Title: "Runbook", Space: "Engineering", Excerpt: "Restart the workers",
		Updated: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), URL: "https://acme.atlassian.net/wiki/spaces/ENG/pages/1001/Runbook"}
	pc := atlassian.PageCard(p)
	js = checkCard(t, pc)
	for _, want := range []string{"Runbook", "Engineering", "Restart the workers", "2026-11-20 09:30 UTC"} {
		if !strings.Contains(js, want) {
			t.Errorf("page card lacks %q", want)
		}
	}
	if got := actionURLs(pc); len(got) != 1 || got[0] != p.URL {
		t.Errorf("page actions %v", got)
	}
	js = checkCard(t, atlassian.PageListCard("Confluence results", []atlassian.Page{p}))
	if !strings.Contains(js, p.URL) || !strings.Contains(js, "Engineering — Restart the workers") {
		t.Errorf("page list: %s", js)
	}
	if js := checkCard(t, atlassian.PageListCard("Confluence results", nil)); !strings.Contains(js, "No pages found.") {
		t.Error("empty page list does not say so")
	}
}

func TestSiteChoiceCard(t *testing.T) {
	c := atlassian.SiteChoiceCard([]atlassian.Site{
		{ID: "id-1", Name: "acme", URL: "https://acme.atlassian.net"},
		{ID: "id-2", Name: "globex", URL: "https://globex.atlassian.net"},
	}, "jira PROJ-1")
	js := checkCard(t, c)
	for _, want := range []string{`"command":"jira site id-1 jira PROJ-1"`, `"command":"jira site id-2 jira PROJ-1"`, "acme.atlassian.net", "globex.atlassian.net", "Action.Execute"} {
		if !strings.Contains(js, want) {
			t.Errorf("site card lacks %q", want)
		}
	}
	if got := atlassian.ConnectedText(atlassian.Account{Name: "Alice Example"}); got != "Connected to Jira as Alice Example." {
		t.Errorf("%q", got)
	}
}
