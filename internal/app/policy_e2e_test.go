package app_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/connector/entraapi"
	"github.com/onbehalf/onbehalf/internal/policy"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// With the default policy (read only), a write to the company's API made for Alice — as an
// assistant tool or a command would, through the bot's own client — is refused before it
// leaves the bot, recorded as denied, and shown in her activity; her reads still work.
func TestPolicyRefusesWritesAndAuditsTheRefusal(t *testing.T) {
	api := startCompanyAPI(t)
	h := newSSOHarness(t, map[string]string{
		"ENTRA_APIS":       `[{"name":"contoso","display":"Contoso HR","baseUrl":"` + api.url + `","scopes":["api://contoso-hr/access_as_user"]}]`,
		"CONNECTOR_POLICY": `{"contoso":{"write":false}}`,
	})
	api.tenant.Store(h.st.Entra)
	h.st.Entra.SetPermissions(stack.BotAppID, "api://contoso-hr", "access_as_user")
	c := h.client(alice)
	h.signIn(t, c)
	if got := ask(t, h, c, "api contoso /me/leave"); !strings.Contains(got, `"employee":"Alice Example"`) {
		t.Fatalf("read refused: %s", got)
	}
	sent := api.requests.Load()

	caller := sso.Caller{User: userKey(alice)}
	ctx := audit.WithAsker(audit.WithUser(context.Background(), audit.User{TenantID: caller.User.TenantID, ObjectID: caller.User.ObjectID}), "assistant:book_leave")
	client, err := entraapi.HTTPClient(h.app.SSO.M, caller, "contoso", h.app.HTTPClient.Transport)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.url+"/me/leave", strings.NewReader(`{"days":3}`))
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, policy.ErrWriteDenied) {
		t.Fatalf("write not refused by policy: %v", err)
	}
	if api.requests.Load() != sent {
		t.Fatal("the refused write reached the API")
	}
	var denied []auditLine
	for _, l := range auditLines(t, h.logs.String()) {
		if l.Outcome == "denied" {
			denied = append(denied, l)
		}
	}
	if len(denied) != 1 || denied[0].ObjectID != alice.ObjectID || denied[0].Operation != "POST /api/me/leave" ||
		denied[0].Asker != "assistant:book_leave" || denied[0].Connector != "contoso" {
		t.Fatalf("refusal not audited once: %+v", denied)
	}
	if got := ask(t, h, c, "activity"); !strings.Contains(got, "the assistant (tool `book_leave`): denied") {
		t.Fatalf("Alice's activity does not show the refusal:\n%s", got)
	}
}
