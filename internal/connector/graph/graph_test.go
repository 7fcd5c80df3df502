package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/graph"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
)

const (
	tenant = "72f988bf-0000-4000-8000-0000000000aa"
	botID  = "b07a0000-0000-4000-8000-0000000000bb"
	alice  = "a11ce000-0000-4000-8000-000000000001"
	bob    = "b0b00000-0000-4000-8000-000000000002"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*entra.Server, *graph.Client) {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	g := graphuser.New(e)
	t.Cleanup(g.Close)
	g.AddUser(alice, graphuser.UserData{
		DisplayName: "Alice Example", UPN: "alice@contoso.example",
		Files: []graphuser.DriveItem{
			{ID: "f1", Name: "budget.xlsx", WebURL: "https://contoso-my.sharepoint.com/f1", LastModified: t0, Size: 2048},
			{ID: "f2", Name: "plan.docx", WebURL: "https://contoso-my.sharepoint.com/f2", LastModified: t0.Add(time.Hour), Size: 512},
			{ID: "f3", Name: "Archive", WebURL: "https://contoso-my.sharepoint.com/f3", LastModified: t0.Add(2 * time.Hour), Folder: true},
			{ID: "f4", Name: "notes [draft].txt", WebURL: "https://contoso-my.sharepoint.com/f4", LastModified: t0.Add(-time.Hour), Size: 10},
		},
		Shared: []graphuser.DriveItem{
			{ID: "s1", Name: "Team budget 2027.xlsx", WebURL: "https://contoso.sharepoint.com/sites/fin/s1", LastModified: t0.Add(3 * time.Hour), Size: 4096},
			{ID: "s2", Name: "It's the budget.pptx", WebURL: "https://contoso.sharepoint.com/sites/fin/s2", LastModified: t0, Size: 1},
		},
	})
	g.AddUser(bob, graphuser.UserData{DisplayName: "Bob Sample", UPN: "bob@contoso.example",
		Files: []graphuser.DriveItem{{ID: "b1", Name: "bob budget.xlsx", WebURL: "https://contoso-my.sharepoint.com/b1", LastModified: t0}}})
	return e, &graph.Client{BaseURL: g.URL, HTTPClient: testenv.SharedCA().Client()}
}

// delegated mints a Graph token for the user with the scopes, as OBO would.
func delegated(e *entra.Server, oid, scp string) string {
	now := time.Now()
	return e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": oid, "scp": scp,
		"azp": botID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "1.0"})
}

func names(items []graph.DriveItem) string {
	var out []string
	for _, it := range items {
		n := it.Name
		if it.Shared {
			n += "(shared)"
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}

func TestFilesListsTheNewestFilesOfTheUsersOwnDrive(t *testing.T) {
	e, c := setup(t)
	ctx := context.Background()
	// OneDrive answers children by name; the newest must come first, folders left out.
	items, err := c.Files(ctx, delegated(e, alice, "User.Read Files.Read.All"), 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(items); got != "plan.docx,budget.xlsx,notes [draft].txt" {
		t.Fatalf("files = %s", got)
	}
	if it := items[0]; it.WebURL != "https://contoso-my.sharepoint.com/f2" || it.Size != 512 || !it.LastModifiedDateTime.Equal(t0.Add(time.Hour)) || it.Shared {
		t.Errorf("plan.docx = %+v", it)
	}
	if items, err := c.Files(ctx, delegated(e, alice, "Files.Read"), 1); err != nil || names(items) != "plan.docx" {
		t.Errorf("top 1: %s %v", names(items), err)
	}
	if items, err := c.Files(ctx, delegated(e, bob, "Files.Read"), 8); err != nil || names(items) != "bob budget.xlsx" {
		t.Errorf("bob: %s %v", names(items), err)
	}
}

func TestSearchFilesReadsSharedItemsFromRemoteItem(t *testing.T) {
	e, c := setup(t)
	ctx := context.Background()
	items, err := c.SearchFiles(ctx, delegated(e, alice, "Files.Read.All"), "  budget ", 8)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(items); got != "budget.xlsx,Team budget 2027.xlsx(shared),It's the budget.pptx(shared)" {
		t.Fatalf("search = %s", got)
	}
	if it := items[1]; it.WebURL != "https://contoso.sharepoint.com/sites/fin/s1" || it.Size != 4096 || !it.LastModifiedDateTime.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("shared item not read from remoteItem: %+v", it)
	}
	// A quote, and characters that would end a path or start a query, stay inside q.
	for text, want := range map[string]string{
		"it's":               "It's the budget.pptx(shared)",
		"budget?$top=1#x":    "",
		"budget/../../me":    "",
		"notes [draft]":      "notes [draft].txt",
		"') or (q='plan.doc": "",
	} {
		items, err := c.SearchFiles(ctx, delegated(e, alice, "Files.Read.All"), text, 8)
		if err != nil || names(items) != want {
			t.Errorf("%q: %s %v, want %q", text, names(items), err, want)
		}
	}
	// Bob finds only his own.
	if items, err := c.SearchFiles(ctx, delegated(e, bob, "Files.Read.All"), "budget", 8); err != nil || names(items) != "bob budget.xlsx" {
		t.Errorf("bob: %s %v", names(items), err)
	}
	if _, err := c.SearchFiles(ctx, delegated(e, alice, "Files.Read"), "   ", 8); err == nil {
		t.Error("empty search sent")
	}
}

func TestFilesWithoutAFilesPermissionIsForbidden(t *testing.T) {
	e, c := setup(t)
	ctx := context.Background()
	tok := delegated(e, alice, "User.Read Mail.Read")
	if _, err := c.Files(ctx, tok, 8); !errors.Is(err, graph.ErrForbidden) {
		t.Errorf("files: %v", err)
	}
	if _, err := c.SearchFiles(ctx, tok, "budget", 8); !errors.Is(err, graph.ErrForbidden) {
		t.Errorf("search: %v", err)
	}
}

func TestFilesCardKeepsSharedNamesFromFormingLinks(t *testing.T) {
	card := graph.FilesCard("budget", []graph.DriveItem{
		{Name: "x](https://evil.example/", WebURL: "https://contoso.sharepoint.com/a", Shared: true, LastModifiedDateTime: t0},
		{Name: "plain", WebURL: "javascript:alert(1)", LastModifiedDateTime: t0},
	})
	// Every piece of text is a plain TextRun (never Markdown), and the only link is the https one.
	var texts, links []string
	for _, b := range card["body"].([]map[string]any) {
		if s, ok := b["text"].(string); ok && b["type"] == "TextBlock" && s != "" {
			texts = append(texts, "markdown: "+s)
		}
		inl, _ := b["inlines"].([]any)
		for _, r := range inl {
			run := r.(map[string]any)
			texts = append(texts, run["text"].(string))
			if a, ok := run["selectAction"].(map[string]any); ok {
				links = append(links, a["url"].(string))
			}
		}
	}
	all := strings.Join(texts, "\n")
	if strings.Contains(all, "markdown: ") || !strings.Contains(all, "x](https://evil.example/") || !strings.Contains(all, "shared with you") {
		t.Errorf("card text:\n%s", all)
	}
	if len(links) != 1 || links[0] != "https://contoso.sharepoint.com/a" {
		t.Errorf("links %v, want only the https one", links)
	}
}
