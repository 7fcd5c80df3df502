// Package atlassian is a test stand-in for Atlassian Cloud: the OAuth 2.0 (3LO) authorization
// server (auth.atlassian.com), the API gateway (api.atlassian.com: accessible-resources, /me)
// and the Jira and Confluence REST subset onbehalf uses, with per-user permissions. It is a
// real HTTPS server on 127.0.0.1 that enforces the documented rules; each rule cites its
// source. Test-only: production code never imports it.
package atlassian

import "time"

// User is a test Atlassian account.
type User struct {
	AccountID string
	Name      string
	Email     string
	// Sites are the cloud ids this user's grant covers (accessible-resources).
	Sites []string
}

// Site is one Atlassian Cloud site (a cloudid).
type Site struct {
	ID   string
	Name string
	// URL is the site's browser URL, e.g. https://acme.atlassian.net.
	URL string
}

// Project is a Jira project; only accounts in Browse can see its issues (Jira's "Browse
// projects" permission).
type Project struct {
	Site   string
	Key    string
	Browse []string
}

// Issue is a Jira issue.
type Issue struct {
	Site     string
	Key      string // PROJECT-N; the project is the prefix
	Summary  string
	Status   string
	Category string // status category key: "new", "indeterminate" or "done"
	Assignee string // account id, "" = unassigned
	Priority string
	Updated  time.Time
}

// Space is a Confluence space; only accounts in View can see its pages.
type Space struct {
	Site string
	Key  string
	Name string
	View []string
}

// Page is a Confluence page.
type Page struct {
	Site    string
	ID      string
	Space   string
	Title   string
	Body    string // storage/view HTML
	Updated time.Time
}

// World is the stand-in's data.
type World struct {
	Users    []User
	Sites    []Site
	Projects []Project
	Issues   []Issue
	Spaces   []Space
	Pages    []Page
}

// Test accounts of DefaultWorld.
const (
	// Alice can see PROJ and SHARED on Acme, the ENG and TEAM spaces, and also the Globex site.
	Alice = "557058:alice-0001"
	// Bob can see SHARED and OPS on Acme and the TEAM and OPS spaces; PROJ-1 is hidden from him.
	Bob = "557058:bob-0002"
)

// Site ids of DefaultWorld.
const (
	AcmeSite   = "a1b2c3d4-0000-4000-8000-acme00000001"
	GlobexSite = "a1b2c3d4-0000-4000-8000-globex000002"
)

// DefaultWorld is the seeded data: two users, two sites, projects and spaces with differing
// permissions.
func DefaultWorld() World {
	day := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	return World{
		Users: []User{
			{AccountID: Alice, Name: "Alice Example", Email: "alice@example.com", Sites: []string{AcmeSite, GlobexSite}},
			{AccountID: Bob, Name: "Bob Example", Email: "bob@example.com", Sites: []string{AcmeSite}},
		},
		Sites: []Site{
			{ID: AcmeSite, Name: "acme", URL: "https://acme.atlassian.net"},
			{ID: GlobexSite, Name: "globex", URL: "https://globex.atlassian.net"},
		},
		Projects: []Project{
			{Site: AcmeSite, Key: "PROJ", Browse: []string{Alice}},
			{Site: AcmeSite, Key: "SHARED", Browse: []string{Alice, Bob}},
			{Site: AcmeSite, Key: "OPS", Browse: []string{Bob}},
			{Site: GlobexSite, Key: "GLX", Browse: []string{Alice}},
		},
		Issues: []Issue{
			{Site: AcmeSite, Key: "PROJ-1", Summary: "Payment service leaks memory under load", Status: "In Progress", Category: "indeterminate", Assignee: Alice, Priority: "High", Updated: day},
			{Site: AcmeSite, Key: "PROJ-2", Summary: "Rotate the payment signing keys", Status: "To Do", Category: "new", Assignee: Alice, Priority: "Medium", Updated: day.Add(-24 * time.Hour)},
			{Site: AcmeSite, Key: "PROJ-3", Summary: "Migrate payment ledger to the new schema", Status: "Done", Category: "done", Assignee: Alice, Priority: "Low", Updated: day.Add(-72 * time.Hour)},
			{Site: AcmeSite, Key: "SHARED-1", Summary: "Plan the team offsite", Status: "To Do", Category: "new", Assignee: Bob, Priority: "Low", Updated: day.Add(-2 * time.Hour)},
			{Site: AcmeSite, Key: "SHARED-2", Summary: "Update the onboarding guide", Status: "In Progress", Category: "indeterminate", Assignee: Alice, Priority: "Medium", Updated: day.Add(-3 * time.Hour)},
			{Site: AcmeSite, Key: "OPS-7", Summary: "Disk alert on build agents", Status: "To Do", Category: "new", Assignee: Bob, Priority: "Highest", Updated: day.Add(-1 * time.Hour)},
			{Site: GlobexSite, Key: "GLX-1", Summary: "Globex payment portal login fails", Status: "To Do", Category: "new", Assignee: Alice, Priority: "High", Updated: day},
		},
		Spaces: []Space{
			{Site: AcmeSite, Key: "ENG", Name: "Engineering", View: []string{Alice}},
			{Site: AcmeSite, Key: "TEAM", Name: "Team", View: []string{Alice, Bob}},
			{Site: AcmeSite, Key: "OPS", Name: "Operations", View: []string{Bob}},
		},
		Pages: []Page{
			{Site: AcmeSite, ID: "1001", Space: "ENG", Title: "Payment service runbook", Body: "<p>Restart the <b>payment</b> workers when the heap exceeds 2 GB.</p>", Updated: day},
			{Site: AcmeSite, ID: "1002", Space: "TEAM", Title: "Team handbook", Body: "<p>How we work: payment of expenses, holidays and the on-call rota.</p>", Updated: day},
			{Site: AcmeSite, ID: "1003", Space: "OPS", Title: "Build agent disks", Body: "<p>Clean the build cache weekly.</p>", Updated: day},
		},
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
