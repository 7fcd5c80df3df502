package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// An administrator (an app role in their own validated token) removes every connection of
// another user: the rows are gone and that user's next Jira question asks to connect again. A
// user without the role is refused and changes nothing.
func TestAdminRevokeRemovesAUsersConnections(t *testing.T) {
	atl := standin.Start(standin.Options{RedirectURIs: []string{"https://bot.example/api/oauth/callback"}})
	t.Cleanup(atl.Close)
	h := newSSOHarness(t, map[string]string{
		"BOT_PUBLIC_URL":          "https://bot.example",
		"ATLASSIAN_CLIENT_ID":     atl.ClientID(),
		"ATLASSIAN_CLIENT_SECRET": atl.ClientSecret(),
		"ATLASSIAN_AUTH_URL":      atl.URL,
		"ATLASSIAN_API_URL":       atl.URL,
		"BOT_ADMIN_ROLES":         "Bot.Admin",
	})
	admin := alice
	admin.Roles = []string{"Bot.Admin"}
	h.st.Entra.AddUser(admin)
	ca, cb := h.client(admin), h.client(bob)
	h.signIn(t, ca)
	h.signIn(t, cb)

	// Bob has a Jira connection, as a completed link leaves it.
	ctx := context.Background()
	bobKey := userKey(bob)
	jira := tokenstore.TokenKey{Connector: "atlassian"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.app.Store.PutToken(ctx, bobKey, jira, tokenstore.Token{AccessToken: "at-bob", RefreshToken: "rt-bob", Expiry: time.Now().Add(time.Hour)}))
	must(h.app.Store.PutToken(ctx, bobKey, tokenstore.TokenKey{Connector: "atlassian", Resource: "prefs"},
		tokenstore.Token{Extra: map[string]string{"account": "Bob Example", "linked": time.Now().UTC().Format(time.RFC3339Nano)}}))
	if got := ask(t, h, cb, "connections"); !strings.Contains(got, "Connected as Bob Example") {
		t.Fatalf("Bob's connections: %s", got)
	}

	// Bob has no admin role: refused, Alice keeps everything.
	if got := ask(t, h, cb, "admin revoke "+alice.ObjectID); !strings.Contains(got, "Only an administrator") {
		t.Fatalf("a user without the role: %s", got)
	}
	if got := ask(t, h, ca, "whoami"); !strings.Contains(got, "Alice Example") {
		t.Fatalf("Alice lost her sign-in to a refused revoke: %s", got)
	}

	// Alice is: Bob's rows go, and his next question asks him to connect.
	if got := ask(t, h, ca, "admin revoke "+bob.ObjectID); !strings.Contains(got, "Removed") {
		t.Fatalf("admin revoke: %s", got)
	}
	if _, err := h.app.Store.GetToken(ctx, bobKey, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Bob's Jira token after revoke: %v", err)
	}
	if got := ask(t, h, cb, "jira PROJ-1"); !strings.Contains(got, "application/vnd.microsoft.card.signin") {
		t.Fatalf("Bob's next question does not ask him to connect: %s", got)
	}
	if got := ask(t, h, ca, "admin revoke not-a-guid"); !strings.Contains(got, "Usage") {
		t.Fatalf("bad input: %s", got)
	}
}
