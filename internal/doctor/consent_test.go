package doctor

import (
	"strings"
	"testing"
)

// The doctor says which consent path OBO to Graph relies on: admin consent (recommended, what
// infra/ grants) passes; without it, per-user consent is named with how many users have
// accepted, and admin consent is offered as the fix.
func TestDoctorReportsTheConsentPath(t *testing.T) {
	const graphSP, otherSP = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", "99999999-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
	admin := func(resource, scope string) PermissionGrant {
		return PermissionGrant{ConsentType: "AllPrincipals", ResourceID: resource, Scope: scope}
	}
	user := func(resource, principal string) PermissionGrant {
		return PermissionGrant{ConsentType: "Principal", ResourceID: resource, PrincipalID: principal, Scope: "User.Read Mail.Read Files.Read.All"}
	}
	cases := []struct {
		name   string
		grants []PermissionGrant
		status Status
		want   []string
		not    []string
	}{
		{"admin consent", []PermissionGrant{admin(graphSP, "User.Read Mail.Read Files.Read.All offline_access")},
			StatusPass, []string{"admin consent", "User.Read, Mail.Read, Files.Read.All", "no user is asked"}, nil},
		{"admin consent split over two grants", []PermissionGrant{admin(graphSP, "User.Read"), admin(graphSP, "mail.read Files.Read.All")},
			StatusPass, []string{"admin consent"}, nil},
		{"no grant at all", nil,
			StatusWarn, []string{"per-user consent", "User.Read, Mail.Read, Files.Read.All", "no user has consented yet", "Admin consent is the recommended default"}, []string{"admin consent:"}},
		{"users consented, each counted once", []PermissionGrant{user(graphSP, "A"), user(graphSP, "b"), user(graphSP, "a")},
			StatusWarn, []string{"per-user consent", "2 users have consented so far"}, nil},
		{"admin grant for part of the scopes", []PermissionGrant{admin(graphSP, "User.Read"), user(graphSP, "a")},
			StatusWarn, []string{"per-user consent", "Mail.Read, Files.Read.All", "1 user has consented so far"}, []string{"User.Read,"}},
		{"grants to another API do not count", []PermissionGrant{admin(otherSP, "User.Read Mail.Read Files.Read.All"), user(otherSP, "a")},
			StatusWarn, []string{"per-user consent", "no user has consented yet"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{Grants: tc.grants, GrantsKnown: true, GraphSPID: graphSP, OBOScopes: DefaultOBOScopes,
				App: &App{AppID: "b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}, Absent: map[string]string{}, NotFound: map[string]string{}}
			r := checkGrants(s)
			if r.Status != tc.status {
				t.Fatalf("status %s, want %s: %s", r.Status, tc.status, r.Detail)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Detail, w) {
					t.Errorf("detail lacks %q: %s", w, r.Detail)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(r.Detail, n) {
					t.Errorf("detail has %q: %s", n, r.Detail)
				}
			}
			if tc.status == StatusWarn && !strings.Contains(r.Fix, "az ad app permission grant --id b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d --api "+GraphAppID) {
				t.Errorf("fix is not admin consent: %q", r.Fix)
			}
		})
	}
}
