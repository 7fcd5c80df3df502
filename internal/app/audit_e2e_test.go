package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/testenv/appinsights"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/samlapp"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// auditLine is one audit record as the log pipeline carries it.
type auditLine struct {
	Msg       string `json:"msg"`
	TenantID  string `json:"tenantId"`
	ObjectID  string `json:"objectId"`
	Connector string `json:"connector"`
	Operation string `json:"operation"`
	Audience  string `json:"audience"`
	Scopes    string `json:"scopes"`
	Asker     string `json:"asker"`
	Outcome   string `json:"outcome"`
	Status    int    `json:"status"`
	raw       string
}

// auditLines returns the audit records in a handler's log.
func auditLines(t *testing.T, logs string) []auditLine {
	t.Helper()
	var out []auditLine
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, audit.EventName) {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if a.Msg == audit.EventName {
			a.raw = l
			out = append(out, a)
		}
	}
	return out
}

// count is how many records of user oid went to connector.
func count(lines []auditLine, oid, connector string) int {
	n := 0
	for _, l := range lines {
		if l.ObjectID == oid && l.Connector == connector {
			n++
		}
	}
	return n
}

// Alice and Bob use Microsoft Graph, the company's Entra-protected API and the SAML
// application. Every request each stand-in received is matched by exactly one audit record
// naming the right user, and no record carries a token, an assertion or the user's words.
// Each then reads their own activity, and only their own.
func TestEveryBackEndCallIsAuditedOnceForTheRightUser(t *testing.T) {
	api := startCompanyAPI(t)
	sp := samlapp.Start(samlapp.Config{EntityID: samlEntityID, ClientID: "ONBEHALF_BOT", ClientSecret: "sap-s3cret",
		Data: map[string][]string{alice.UPN: {"Sales order 4711 for Alice"}, bob.UPN: {"Sales order 4712 for Bob"}}})
	t.Cleanup(sp.Close)
	// Application Insights with local authentication off: the handler's managed identity
	// holds Monitoring Metrics Publisher on it.
	var verify appinsights.Verifier
	ai := appinsights.Start("5f0c7a4e-61b2-4c1d-9e8f-0a1b2c3d4e5f", func(tok, aud string) (map[string]any, error) { return verify(tok, aud) })
	t.Cleanup(ai.Close)
	h := newSSOHarness(t, map[string]string{
		"APPLICATIONINSIGHTS_CONNECTION_STRING": ai.ConnectionString(),
		"ENTRA_APIS":                            `[{"name":"contoso","display":"Contoso HR","baseUrl":"` + api.url + `","scopes":["api://contoso-hr/access_as_user"]}]`,
		"OAUTH2_DEV_SECRETS":                    `{"sap-client-secret":"sap-s3cret"}`,
		"SAML_APPS": `[{"name":"sap","entityId":"` + samlEntityID + `","tokenUrl":"` + sp.TokenURL + `","apiBaseUrl":"` + sp.APIURL +
			`","clientId":"ONBEHALF_BOT","clientSecretName":"sap-client-secret","nameId":"upn"}]`,
	})
	verify = h.st.Entra.Verify
	ai.Grant(h.st.MIPrincipal)
	api.tenant.Store(h.st.Entra)
	h.st.Entra.SetPermissions(stack.BotAppID, "api://contoso-hr", "access_as_user")
	h.st.Entra.AddSAMLApp(entra.SAMLApp{EntityID: samlEntityID, ReplyURLs: []string{sp.TokenURL}, NameID: "upn"})
	h.st.Entra.SetPermissions(stack.BotAppID, samlEntityID, "user_impersonation")
	sp.TrustIdP("https://sts.windows.net/"+h.st.Entra.Tenant+"/", h.st.Entra.SAMLSigningCertificate())

	// Alice: Graph (sign-in, mail search, files), the company API (its own sign-in), SAML.
	ca := h.client(alice)
	h.signIn(t, ca)
	ask(t, h, ca, "mail quarterly salary")
	ask(t, h, ca, "files")
	// Signed in already: the API's token comes on Alice's behalf without another prompt.
	if got := ask(t, h, ca, "api contoso /me/leave"); !strings.Contains(got, `"employee":"Alice Example"`) {
		t.Fatalf("api: %s", got)
	}
	for range 2 {
		if got := askSAML(t, ca, "saml sap /me"); !strings.Contains(got, "Sales order 4711") {
			t.Fatalf("saml: %s", got)
		}
	}
	aliceSAP := sp.Exchanges() + sp.APICalls()

	// Bob: Graph and SAML only.
	cb := h.client(bob)
	h.signIn(t, cb)
	askSAML(t, cb, "saml sap /me")
	bobSAP := sp.Exchanges() + sp.APICalls() - aliceSAP

	lines := auditLines(t, h.logs.String())
	for _, c := range []struct {
		user      entra.User
		connector string
		standIn   int
	}{
		{alice, "graph", h.graph.Calls(alice.ObjectID)},
		{bob, "graph", h.graph.Calls(bob.ObjectID)},
		{alice, "contoso", int(api.requests.Load())},
		{bob, "contoso", 0},
		{alice, "sap", aliceSAP},
		{bob, "sap", bobSAP},
	} {
		if got := count(lines, c.user.ObjectID, c.connector); got != c.standIn || (c.standIn == 0 && c.user.ObjectID == alice.ObjectID) {
			t.Errorf("%s → %s: %d audit records for %d requests at the stand-in", c.user.Name, c.connector, got, c.standIn)
		}
	}
	if len(lines) != h.graph.Calls(alice.ObjectID)+h.graph.Calls(bob.ObjectID)+int(api.requests.Load())+aliceSAP+bobSAP {
		t.Errorf("%d audit records in all, more than the stand-ins received", len(lines))
	}

	secrets := append(h.st.Entra.IssuedSAML(), sp.IssuedTokens()...)
	for _, l := range lines {
		if l.TenantID != h.st.Entra.Tenant || (l.ObjectID != alice.ObjectID && l.ObjectID != bob.ObjectID) {
			t.Errorf("record without the right user: %s", l.raw)
		}
		if !strings.HasPrefix(l.Asker, "command:") || l.Outcome != "ok" || l.Audience == "" ||
			(l.Scopes == "" && !strings.HasSuffix(l.Operation, "/token")) { // a SAML redeem names no scope unless configured
			t.Errorf("record incomplete: %s", l.raw)
		}
		for _, bad := range []string{"eyJ", "Bearer", "salary", "quarterly", alice.Name, alice.UPN, "sap-s3cret", "Sales order"} {
			if strings.Contains(l.raw, bad) {
				t.Errorf("record holds %q: %s", bad, l.raw)
			}
		}
		for _, s := range secrets {
			if strings.Contains(l.raw, s[:min(len(s), 40)]) {
				t.Errorf("record holds an issued token or assertion: %s", l.raw)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The same records reached Application Insights as custom events: one per line, with the
	// same user, connector and operation, sent as the managed identity, and no secret.
	if !h.app.AuditEvents.Flush(context.Background()) {
		t.Fatal("audit events not flushed")
	}
	events := ai.Events()
	if len(events) != len(lines) {
		t.Fatalf("%d custom events for %d audit records", len(events), len(lines))
	}
	want := map[string]int{}
	for _, l := range lines {
		want[l.TenantID+"|"+l.ObjectID+"|"+l.Connector+"|"+l.Operation+"|"+l.Asker+"|"+l.Outcome]++
	}
	for _, e := range events {
		p := e.Properties
		want[p["tenantId"]+"|"+p["objectId"]+"|"+p["connector"]+"|"+p["operation"]+"|"+p["asker"]+"|"+p["outcome"]]--
		if e.Name != audit.EventName || e.Publisher != h.st.MIPrincipal || p["audience"] == "" {
			t.Errorf("event: %+v", e)
		}
		raw := fmt.Sprint(p)
		for _, bad := range []string{"eyJ", "Bearer", "salary", "quarterly", alice.Name, alice.UPN, "sap-s3cret", "Sales order"} {
			if strings.Contains(raw, bad) {
				t.Errorf("event holds %q: %s", bad, raw)
			}
		}
	}
	for k, n := range want {
		if n != 0 {
			t.Errorf("records and events differ for %s by %d", k, n)
		}
	}

	// Each user's activity lists their own calls and nobody else's.
	graphBefore := h.graph.Calls(alice.ObjectID)
	got := ask(t, h, ca, "activity")
	if n := strings.Count(got, "\n- "); n != count(lines, alice.ObjectID, "graph")+count(lines, alice.ObjectID, "contoso")+count(lines, alice.ObjectID, "sap") {
		t.Errorf("Alice's activity lists %d calls:\n%s", n, got)
	}
	if !strings.Contains(got, "**contoso**") || !strings.Contains(got, "GET /v1.0/me/messages") || !strings.Contains(got, "your command") {
		t.Errorf("Alice's activity:\n%s", got)
	}
	got = ask(t, h, cb, "activity")
	if strings.Contains(got, "contoso") || strings.Count(got, "\n- ") != count(lines, bob.ObjectID, "graph")+count(lines, bob.ObjectID, "sap") {
		t.Errorf("Bob's activity shows calls that are not his:\n%s", got)
	}
	if h.graph.Calls(alice.ObjectID) != graphBefore {
		t.Error("reading the activity called a back end")
	}
}

// Two Teams users link Jira as different Atlassian accounts and ask questions: every request
// the Atlassian stand-in received for the REST APIs is matched by one record of the user who
// asked, with Atlassian's audience and the granted scopes.
func TestAtlassianCallsAreAuditedOncePerRequest(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	calls := map[string]int{}
	run := func(u chatUser, f func()) {
		n := e.atl.APICalls()
		f()
		calls[u.aad] += e.atl.APICalls() - n
	}
	run(ada, func() {
		e.say(t, 0, ada, "jira PROJ-1")
		e.link(t, ada, standin.Alice, false)
		e.submit(t, ada, "jira site "+standin.AcmeSite+" jira PROJ-1")
		e.say(t, 0, ada, "jira search payment")
		e.say(t, 0, ada, "confluence page 1001")
	})
	run(bo, func() {
		e.link(t, bo, standin.Bob, true)
		e.say(t, 0, bo, "my jira issues")
		e.say(t, 0, bo, "jira PROJ-1") // not his: refused by Jira, still one call
	})
	lines := auditLines(t, e.logs.String())
	for _, u := range []chatUser{ada, bo} {
		if got := count(lines, u.aad, "atlassian"); got != calls[u.aad] || got == 0 {
			t.Errorf("%s: %d audit records for %d Atlassian API requests", u.name, got, calls[u.aad])
		}
	}
	for _, l := range lines {
		if l.TenantID != stack.TenantID || l.Connector != "atlassian" || !strings.Contains(l.Scopes, "read:jira-work") ||
			strings.Contains(l.raw, "PROJ-1") || strings.Contains(l.raw, "payment") {
			t.Errorf("record: %s", l.raw)
		}
	}
	if len(lines) != calls[ada.aad]+calls[bo.aad] {
		t.Errorf("%d records for %d requests", len(lines), calls[ada.aad]+calls[bo.aad])
	}
}

// LDAP has no HTTP: each operation the directory runs as the user (proxied authorization)
// records itself once, with the user and the directory's host; mapping the user to their entry
// (done as the bot) and the user's search words are not recorded.
func TestLDAPOperationsAreAuditedAsTheUser(t *testing.T) {
	srv := slapd.Start(t)
	h := newSSOHarness(t, ldapSettings(srv))
	c := h.client(alice)
	ldapSignIn(t, h, c)
	time.Sleep(100 * time.Millisecond) // the parked whoami answered after sign-in
	before := count(auditLines(t, h.logs.String()), alice.ObjectID, "ldap")
	ask(t, h, c, "ldap whoami")
	ask(t, h, c, "directory bob")
	ask(t, h, c, "ldap search salary")
	lines := auditLines(t, h.logs.String())
	if n := count(lines, alice.ObjectID, "ldap") - before; n != 3 {
		t.Fatalf("%d LDAP audit records for 3 operations", n)
	}
	for _, l := range lines {
		if l.Connector != "ldap" {
			continue
		}
		if l.TenantID != h.st.Entra.Tenant || l.Outcome != "ok" || l.Audience == "" || strings.Contains(l.raw, "salary") ||
			strings.Contains(l.raw, "bob") || strings.Contains(l.raw, slapd.ServicePassword) {
			t.Errorf("record: %s", l.raw)
		}
	}
}
