package app_test

import (
	"context"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

// ldapSettings point the handler at a real slapd over StartTLS with the bot's simple bind.
func ldapSettings(srv *slapd.Server, kv ...string) map[string]string {
	m := map[string]string{
		"LDAP_URL":            srv.URL(),
		"LDAP_BASE_DN":        slapd.Base,
		"LDAP_USER_BASE_DN":   slapd.PeopleDN,
		"LDAP_USER_CLAIM":     "upn",
		"LDAP_USER_ATTRIBUTE": "mail",
		"LDAP_BIND_DN":        slapd.ServiceDN,
		"LDAP_BIND_PASSWORD":  slapd.ServicePassword,
		"LDAP_CA_CERT":        string(srv.CAPEM()),
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// ask sends text and returns the bot's one answer.
func ask(t *testing.T, h *ssoHarness, c *teamsclient.Client, text string) string {
	t.Helper()
	ctx := ctxTimeout(t, 15*time.Second)
	before := len(c.Replies())
	if r, err := c.Say(ctx, text); err != nil || r.Status != http.StatusOK {
		t.Fatalf("%s: %v %+v\n%s", text, err, r, h.logs.String())
	}
	rep, err := c.WaitReplies(ctx, before+1)
	if err != nil {
		t.Fatalf("%s: no answer: %v\n%s", text, err, h.logs.String())
	}
	// Character references (the bot escapes directory values) read as the characters they stand for.
	return html.UnescapeString(texts(rep[before:]))
}

// ldapSignIn asks an LDAP command, which answers with the sign-in card, and completes the
// silent sign-in.
func ldapSignIn(t *testing.T, h *ssoHarness, c *teamsclient.Client) {
	t.Helper()
	if got := ask(t, h, c, "ldap whoami"); !strings.Contains(got, "application/vnd.microsoft.card.oauth") {
		t.Fatalf("want a sign-in card, got %s", got)
	}
	res, err := c.ExchangeSSO(ctxTimeout(t, 15*time.Second), 1, entra.SSOOptions{})
	if err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("exchange: %v %+v\n%s", err, res, h.logs.String())
	}
}

// Through Teams: the same search as Alice and as Bob returns what each may read; Who am I?
// names each user's own entry; a group chat gets nothing.
func TestLDAPCommandsAnswerAsTheSignedInUser(t *testing.T) {
	srv := slapd.Start(t)
	h := newSSOHarness(t, ldapSettings(srv))
	a, b := h.client(alice), h.client(bob)
	ldapSignIn(t, h, a)
	ldapSignIn(t, h, b)

	if got := ask(t, h, a, "ldap whoami"); !strings.Contains(got, "dn:"+slapd.AliceDN) {
		t.Fatalf("Alice's whoami: %s", got)
	}
	if got := ask(t, h, b, "ldap whoami"); !strings.Contains(got, "dn:"+slapd.BobDN) {
		t.Fatalf("Bob's whoami: %s", got)
	}
	got := ask(t, h, a, "ldap search salary")
	if !strings.Contains(got, "hr-record-bob") || !strings.Contains(got, "hr-record-alice") {
		t.Fatalf("Alice (HR) does not see the HR records: %s", got)
	}
	got = ask(t, h, b, "ldap search salary")
	if strings.Contains(got, "hr-record") || strings.Contains(got, "band") || !strings.Contains(got, "Nothing you may read matches") {
		t.Fatalf("Bob sees HR records: %s", got)
	}
	if got := ask(t, h, a, "directory bob"); !strings.Contains(got, "+1 555 0102") {
		t.Fatalf("HR cannot read Bob's home phone: %s", got)
	}
	if got := ask(t, h, b, "directory alice"); strings.Contains(got, "+1 555 0101") || !strings.Contains(got, "alice@contoso.example") {
		t.Fatalf("Bob reads Alice's private attributes: %s", got)
	}
	if got := ask(t, h, b, "ldap search *)(uid=*"); !strings.Contains(got, "Nothing you may read matches") {
		t.Fatalf("injection: %s", got)
	}
	// A display name (or anything else Bob controls in the activity) does not choose the entry.
	ctx0 := ctxTimeout(t, 10*time.Second)
	before0 := len(b.Replies())
	spoof := b.Activity("message")
	spoof["text"] = "ldap whoami"
	spoof["from"].(map[string]any)["name"] = "Alice Example"
	if r, err := b.Post(ctx0, spoof); err != nil || r.Status != http.StatusOK {
		t.Fatal(err, r)
	}
	rep0, _ := b.WaitReplies(ctx0, before0+1)
	if got := texts(rep0[before0:]); !strings.Contains(got, "dn:"+slapd.BobDN) || strings.Contains(got, "alice") {
		t.Fatalf("display name changed the identity: %s", got)
	}

	// A group chat gets the 1:1 refusal and no directory data.
	ctx := ctxTimeout(t, 10*time.Second)
	before := len(a.Replies())
	act := a.Activity("message")
	act["text"] = "ldap search salary"
	conv := act["conversation"].(map[string]any)
	conv["conversationType"], conv["isGroup"] = "groupChat", true
	if r, err := a.Post(ctx, act); err != nil || r.Status != http.StatusOK {
		t.Fatal(err, r)
	}
	rep, _ := a.WaitReplies(ctx, before+1)
	if got := texts(rep[before:]); strings.Contains(got, "hr-record") || !strings.Contains(got, "only in a 1:1 chat") {
		t.Fatalf("group chat: %s", got)
	}
	if strings.Contains(h.logs.String(), slapd.ServicePassword) {
		t.Fatal("the bind password reached the log")
	}
}

// A user whose sign-in maps to cn=admin (outside ou=people) is refused by slapd, with a
// sentence telling them so.
func TestLDAPProxyForAdminRefusedWithAClearMessage(t *testing.T) {
	srv := slapd.Start(t)
	h := newSSOHarness(t, ldapSettings(srv, "LDAP_USER_BASE_DN", slapd.Base))
	admin := entra.User{ObjectID: slapd.AdminOID, Name: "Directory Admin", UPN: "admin@contoso.example"}
	h.st.Entra.AddUser(admin)
	c := h.client(admin)
	ldapSignIn(t, h, c)
	for _, cmd := range []string{"ldap whoami", "ldap search salary", "directory bob"} {
		got := ask(t, h, c, cmd)
		if !strings.Contains(got, "does not allow me to act for your directory entry") || strings.Contains(got, "hr-record") {
			t.Fatalf("%s as admin: %s", cmd, got)
		}
	}
	if !strings.Contains(srv.Log(), "err=123") {
		t.Fatal("slapd was not asked (no authorizationDenied in its log)")
	}
}

// slapd stopped mid-session: a clear "unavailable", no crash; recovery when it returns.
func TestLDAPDirectoryStoppedThenBack(t *testing.T) {
	srv := slapd.Start(t)
	h := newSSOHarness(t, ldapSettings(srv))
	c := h.client(bob)
	ldapSignIn(t, h, c)
	if got := ask(t, h, c, "directory bob"); !strings.Contains(got, "bob@contoso.example") {
		t.Fatal(got)
	}
	srv.Stop()
	if got := ask(t, h, c, "directory bob"); !strings.Contains(got, "directory is unavailable") {
		t.Fatalf("while stopped: %s", got)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, h, c, "directory bob"); !strings.Contains(got, "bob@contoso.example") {
		t.Fatalf("after restart: %s", got)
	}
}

// A wrong service password: the user is told the connection is misconfigured, the operator's
// log names the setting (at start-up and on use), and the password never reaches the log.
func TestLDAPWrongServiceCredentialNamesTheSetting(t *testing.T) {
	srv := slapd.Start(t)
	h := newSSOHarness(t, ldapSettings(srv, "LDAP_BIND_PASSWORD", "wrong-password-123"))
	h.app.Warm(context.Background())
	if logs := h.logs.String(); !strings.Contains(logs, `"setting":"LDAP_BIND_PASSWORD_SECRET_NAME"`) {
		t.Fatalf("start-up log does not name the setting:\n%s", logs)
	}
	c := h.client(bob)
	ldapSignIn(t, h, c)
	if got := ask(t, h, c, "ldap search bob"); !strings.Contains(got, "misconfigured") || strings.Contains(got, "bob@contoso.example") {
		t.Fatalf("user sees: %s", got)
	}
	logs := h.logs.String()
	if strings.Count(logs, `"setting":"LDAP_BIND_PASSWORD_SECRET_NAME"`) < 2 || strings.Contains(logs, "wrong-password-123") {
		t.Fatalf("log:\n%s", logs)
	}
}
