package admin_test

import (
	"testing"

	"github.com/onbehalf/onbehalf/internal/admin"
	"github.com/onbehalf/onbehalf/internal/entra"
)

func TestAdministratorIsDecidedByRoleOrGroupFromTheToken(t *testing.T) {
	a := admin.Admins{Roles: []string{"Bot.Admin"}, Groups: []string{"6f1c0e2a-0000-4000-8000-0000000000aa"}}
	for _, c := range []struct {
		name   string
		claims *entra.UserClaims
		want   bool
	}{
		{"app role", &entra.UserClaims{Roles: []string{"Reader", "Bot.Admin"}}, true},
		{"role names are exact", &entra.UserClaims{Roles: []string{"bot.admin"}}, false},
		{"group member", &entra.UserClaims{Groups: []string{"6F1C0E2A-0000-4000-8000-0000000000AA"}}, true},
		{"other group", &entra.UserClaims{Groups: []string{"00000000-0000-4000-8000-000000000001"}}, false},
		{"groups overage grants nothing", &entra.UserClaims{GroupsOverage: true, Groups: []string{"6f1c0e2a-0000-4000-8000-0000000000aa"}}, false},
		{"a display name is not a role", &entra.UserClaims{UPN: "Bot.Admin"}, false},
		{"no claims", nil, false},
	} {
		if got := a.Is(c.claims); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if (admin.Admins{}).Configured() {
		t.Error("no roles and no groups: nobody is an administrator")
	}
}
