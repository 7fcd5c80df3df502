package sandbox

import (
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// PlaygroundConfig is the .m365agentsplayground.yml that makes a Playground started in its
// directory type as user: the Playground takes the signed-in user from currentUser and has no
// way to switch users in its UI (config schema 0.1.1, https://aka.ms/teams-app-test-tool-config-guide;
// the built-in default is in dist/index.js). The other sandbox users are listed as colleagues.
func (s *Sandbox) PlaygroundConfig(user User) string {
	var b strings.Builder
	b.WriteString("# Written by the sandbox (make dev): the Playground in this directory types as " + user.Entra.Name + ".\n")
	b.WriteString("version: \"0.1.1\"\n")
	fmt.Fprintf(&b, "tenantId: %s\n", stack.TenantID)
	fmt.Fprintf(&b, "bot:\n  id: 28:%s\n  name: onbehalf\n", stack.BotAppID)
	b.WriteString("currentUser:\n")
	writeUser(&b, "  ", user)
	b.WriteString("users:\n")
	for _, u := range s.Users {
		if u.PlaygroundID != user.PlaygroundID {
			writeUser(&b, "  - ", u)
		}
	}
	// The schema requires at least five colleagues. These have no sandbox identity: the bridge
	// refuses anything sent as them.
	for i, n := range []string{"Carol", "Dan", "Erin", "Frank"} {
		writeUser(&b, "  - ", User{PlaygroundID: "colleague-" + strings.ToLower(n), GivenName: n, Surname: "Colleague",
			Entra: entra.User{ObjectID: fmt.Sprintf("c0000000-0000-4000-8000-%012d", i+1), Name: n + " Colleague", UPN: strings.ToLower(n) + "@contoso.example"}})
	}
	// The schema requires the chats; the personal chat's id is fixed per user.
	fmt.Fprintf(&b, "personalChat:\n  id: personal-%s\n", user.PlaygroundID)
	fmt.Fprintf(&b, "groupChat:\n  id: group-%s\n  name: Sandbox group chat\n", user.PlaygroundID)
	fmt.Fprintf(&b, "team:\n  id: team-%s\n  name: Sandbox team\n  aadGroupId: 00000000-0000-4000-8000-0000000000f1\n  channels:\n    - id: channel-%s\n      name: Announcements\n", user.PlaygroundID, user.PlaygroundID)
	return b.String()
}

func writeUser(b *strings.Builder, first string, u User) {
	pad := strings.Repeat(" ", len(first))
	fmt.Fprintf(b, "%sid: %s\n", first, u.PlaygroundID)
	fmt.Fprintf(b, "%sname: %s\n", pad, u.Entra.Name)
	fmt.Fprintf(b, "%suserPrincipleName: %s\n", pad, u.Entra.UPN)
	fmt.Fprintf(b, "%saadObjectId: %s\n", pad, u.Entra.ObjectID)
	fmt.Fprintf(b, "%sgivenName: %s\n", pad, u.GivenName)
	fmt.Fprintf(b, "%ssurname: %s\n", pad, u.Surname)
	fmt.Fprintf(b, "%semail: %s\n", pad, u.Entra.UPN)
}
