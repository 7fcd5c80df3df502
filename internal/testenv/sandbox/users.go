package sandbox

import (
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
)

// User is one sandbox user: who types in a Playground, and who they are in the Entra tenant.
type User struct {
	// PlaygroundID is the Playground's currentUser.id (from.id of what it sends).
	PlaygroundID string
	Entra        entra.User
	// GivenName and Surname fill the Playground's user card.
	GivenName, Surname string
	// Graph is the user's mailbox, files and profile.
	Graph graphuser.UserData
	// LeaveDays is what the sandbox's organisation API (Contoso HR) says about the user.
	LeaveDays int
}

// Users returns the two sandbox users. Alice and Bob have their own mailboxes and files, and
// (in the Atlassian stand-in, where they sign in as the users of the same names) their own
// Jira projects and Confluence spaces: nothing of one is visible to the other.
func Users(now time.Time) []User {
	return []User{
		{
			PlaygroundID: "sandbox-alice", GivenName: "Alice", Surname: "Example", LeaveDays: 12,
			Entra: entra.User{ObjectID: "a11ce000-0000-4000-8000-00000000000a", Name: "Alice Example", UPN: "alice@contoso.example"},
			Graph: graphuser.UserData{
				DisplayName: "Alice Example", Mail: "alice@contoso.example", UPN: "alice@contoso.example",
				JobTitle: "Payments lead", Department: "Engineering", OfficeLocation: "Building 1",
				Messages: []graphuser.Message{
					{ID: "alice-m1", Subject: "Quarterly report: payments", From: "CFO <cfo@contoso.example>", BodyPreview: "Payments revenue is up 12%; keep this between us until Friday.", WebLink: "https://outlook.example/alice/m1", Received: now.Add(-2 * time.Hour)},
					{ID: "alice-m2", Subject: "Payment timeout incident review", From: "ops@contoso.example", BodyPreview: "Notes from the PROJ-1 incident review.", WebLink: "https://outlook.example/alice/m2", Received: now.Add(-26 * time.Hour)},
				},
				Files: []graphuser.DriveItem{
					{ID: "alice-f1", Name: "payments-roadmap.docx", WebURL: "https://files.example/alice/payments-roadmap.docx", LastModified: now.Add(-3 * time.Hour), Size: 48213},
					{ID: "alice-f2", Name: "q3-budget.xlsx", WebURL: "https://files.example/alice/q3-budget.xlsx", LastModified: now.Add(-50 * time.Hour), Size: 20480},
				},
			},
		},
		{
			PlaygroundID: "sandbox-bob", GivenName: "Bob", Surname: "Example", LeaveDays: 3,
			Entra: entra.User{ObjectID: "b0b00000-0000-4000-8000-00000000000b", Name: "Bob Example", UPN: "bob@contoso.example"},
			Graph: graphuser.UserData{
				DisplayName: "Bob Example", Mail: "bob@contoso.example", UPN: "bob@contoso.example",
				JobTitle: "Site reliability engineer", Department: "Operations", OfficeLocation: "Building 2",
				Messages: []graphuser.Message{
					{ID: "bob-m1", Subject: "On-call rota for December", From: "ops-lead@contoso.example", BodyPreview: "You are on call the week of the 14th.", WebLink: "https://outlook.example/bob/m1", Received: now.Add(-time.Hour)},
				},
				Files: []graphuser.DriveItem{
					{ID: "bob-f1", Name: "runbook-ops.md", WebURL: "https://files.example/bob/runbook-ops.md", LastModified: now.Add(-5 * time.Hour), Size: 9120},
				},
			},
		},
	}
}
