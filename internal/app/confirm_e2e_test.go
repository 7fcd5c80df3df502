package app_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/policy"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// With Atlassian writes allowed only after confirmation, "jira comment PROJ-1 …" shows the
// exact comment on a card and sends nothing; Ada's click on the card posts it once, as her.
// A write made as Ada without that click — whatever code path made it — is refused before it
// leaves the bot, and the refusal is audited.
func TestCommandWriteNeedsTheUsersConfirmation(t *testing.T) {
	e := newAtlEnvWith(t, 1, false, map[string]string{"CONNECTOR_POLICY": `{"atlassian":{"write":true,"confirm":true}}`}, nil)
	ada := newChatUser("ada")
	e.link(t, ada, standin.Alice, false)
	e.submit(t, ada, "jira site "+standin.AcmeSite)

	const text = "Deployed the fix to staging <b>not bold</b>"
	d := dump(e.say(t, 0, ada, "jira comment proj-1 "+text))
	if !strings.Contains(d, "Post this comment on PROJ-1?") || !strings.Contains(d, "Deployed the fix to staging") || len(e.atl.Comments()) != 0 {
		t.Fatalf("no confirmation card, or something was posted (%d):\n%s", len(e.atl.Comments()), d)
	}
	m := confirmRE.FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("no confirm button:\n%s", d)
	}
	if d := dump(e.submit(t, ada, "jira comment confirm "+m[1])); !strings.Contains(d, "Posted your comment on [PROJ-1]") {
		t.Fatalf("confirm:\n%s", d)
	}
	if cs := e.atl.Comments(); len(cs) != 1 || cs[0].Text != text || cs[0].Author != standin.Alice || cs[0].Key != "PROJ-1" {
		t.Fatalf("comments at Jira: %+v", cs)
	}

	// The same write without the click: refused by the policy, never sent, audited.
	ctx := audit.WithAsker(audit.WithUser(context.Background(), audit.User{TenantID: stack.TenantID, ObjectID: ada.aad}), "command:jira comment")
	hc, err := e.apps[0].OAuth.HTTPClient(ada.key(), "atlassian")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.atl.URL+"/ex/jira/"+standin.AcmeSite+"/rest/api/3/issue/PROJ-1/comment",
		strings.NewReader(`{"body":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"unconfirmed"}]}]}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, policy.ErrUnconfirmed) || len(e.atl.Comments()) != 1 {
		t.Fatalf("an unconfirmed write was not refused: %v; %d comments", err, len(e.atl.Comments()))
	}
	var denied []auditLine
	for _, l := range auditLines(t, e.logs.String()) {
		if l.Outcome == "denied" {
			denied = append(denied, l)
		}
	}
	if len(denied) != 1 || denied[0].ObjectID != ada.aad || denied[0].Connector != "atlassian" || !strings.HasPrefix(denied[0].Operation, "POST ") {
		t.Fatalf("refusal not audited once: %+v", denied)
	}
}

// With the default policy (read only), a comment Ada confirms is refused before it reaches
// Jira; she is told it is her organisation's policy, and the refusal is in the audit trail and
// her activity.
func TestReadOnlyPolicyRefusesAConfirmedCommandWrite(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada := newChatUser("ada")
	e.link(t, ada, standin.Alice, false)
	e.submit(t, ada, "jira site "+standin.AcmeSite)
	d := dump(e.say(t, 0, ada, "jira comment PROJ-1 Looks good to me"))
	m := confirmRE.FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("no confirmation card:\n%s", d)
	}
	d = dump(e.submit(t, ada, "jira comment confirm "+m[1]))
	if !strings.Contains(d, "policy lets me only read Atlassian") || len(e.atl.Comments()) != 0 {
		t.Fatalf("read-only policy did not refuse (%d comments):\n%s", len(e.atl.Comments()), d)
	}
	var denied []auditLine
	for _, l := range auditLines(t, e.logs.String()) {
		if l.Outcome == "denied" {
			denied = append(denied, l)
		}
	}
	if len(denied) != 1 || denied[0].ObjectID != ada.aad || !strings.Contains(denied[0].Asker, "jira comment") || strings.Contains(denied[0].raw, "Looks good") {
		t.Fatalf("refusal not audited once: %+v", denied)
	}
	if got := dump(e.say(t, 0, ada, "activity")); !strings.Contains(got, "denied") {
		t.Fatalf("activity does not show the refusal:\n%s", got)
	}
}
