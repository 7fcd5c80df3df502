package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// extInvoke sends a message-extension invoke from u, as Teams does from the compose box, and
// returns the HTTP status and the composeExtension of the answer.
func (e *atlEnv) extInvoke(t *testing.T, u chatUser, name string, value any) (int, map[string]any) {
	t.Helper()
	act := map[string]any{
		"type": "invoke", "name": name, "value": value, "id": uuid.NewString(),
		"serviceUrl": e.ch.ServiceURL, "channelId": "msteams",
		"from":         map[string]any{"id": u.fromID, "name": u.name, "aadObjectId": u.aad},
		"recipient":    map[string]any{"id": "28:bot", "name": "onbehalf"},
		"conversation": map[string]any{"id": u.conv, "conversationType": "personal", "tenantId": stack.TenantID},
	}
	body, _ := json.Marshal(act)
	req, _ := http.NewRequest(http.MethodPost, e.srvs[0].URL+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	now := e.clk.Now()
	req.Header.Set("Authorization", "Bearer "+e.st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID, NotBefore: now.Add(-time.Minute), Expiry: now.Add(time.Hour)}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ComposeExtension map[string]any `json:"composeExtension"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.ComposeExtension
}

func search(command, words string) map[string]any {
	return map[string]any{"commandId": command, "parameters": []any{map[string]any{"name": "query", "value": words}},
		"queryOptions": map[string]any{"skip": 0, "count": 25}}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// The compose box searches Jira and Confluence as the user typing: without a link the answer
// is the documented "auth" response whose openUrl is the user's connect link; once linked,
// each result is an issue or page the user can see; a link to an issue on the user's site
// unfurls as that user sees it. Bob, linked to his own account, finds none of Alice's work in
// the same searches and unfurls nothing of it.
func TestMessageExtensionSearchAndUnfurlAsTheUser(t *testing.T) {
	e := newAtlEnv(t, 1)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	proj1 := e.issue("PROJ-1")

	status, ce := e.extInvoke(t, ada, "composeExtension/query", search("jiraSearch", "payment"))
	acts, _ := ce["suggestedActions"].(map[string]any)["actions"].([]any)
	if status != http.StatusOK || ce["type"] != "auth" || len(acts) != 1 ||
		acts[0].(map[string]any)["type"] != "openUrl" || !strings.Contains(acts[0].(map[string]any)["value"].(string), "/api/oauth/start?state=") {
		t.Fatalf("unlinked search: %d %s", status, jsonOf(ce))
	}
	if strings.Contains(jsonOf(ce), proj1.Summary) {
		t.Fatal("answered before linking")
	}

	e.link(t, ada, standin.Alice, false)
	e.submit(t, ada, "jira site "+standin.AcmeSite)
	_, ce = e.extInvoke(t, ada, "composeExtension/query", search("jiraSearch", "payment"))
	if ce["type"] != "result" || ce["attachmentLayout"] != "list" || !strings.Contains(jsonOf(ce["attachments"]), proj1.Summary) ||
		!strings.Contains(jsonOf(ce["attachments"]), `"preview"`) {
		t.Fatalf("Alice's Jira search: %s\n%s", jsonOf(ce), e.logs.String())
	}
	_, ce = e.extInvoke(t, ada, "composeExtension/query", search("confluenceSearch", "payment runbook"))
	if ce["type"] != "result" || !strings.Contains(jsonOf(ce["attachments"]), "Payment service runbook") {
		t.Fatalf("Alice's Confluence search: %s", jsonOf(ce))
	}
	_, ce = e.extInvoke(t, ada, "composeExtension/queryLink", map[string]any{"url": "https://acme.atlassian.net/browse/PROJ-1"})
	if ce["type"] != "result" || !strings.Contains(jsonOf(ce["attachments"]), proj1.Summary) {
		t.Fatalf("Alice's unfurl: %s", jsonOf(ce))
	}
	_, ce = e.extInvoke(t, ada, "composeExtension/queryLink", map[string]any{"url": "https://evil.example/browse/PROJ-1"})
	if atts, _ := ce["attachments"].([]any); ce["type"] != "result" || len(atts) != 0 {
		t.Fatalf("a link to another host was unfurled: %s", jsonOf(ce))
	}

	e.link(t, bo, standin.Bob, true)
	var bobSaw strings.Builder
	for _, q := range []map[string]any{search("jiraSearch", "payment"), search("jiraSearch", "PROJ-1"), search("confluenceSearch", "payment runbook")} {
		_, ce = e.extInvoke(t, bo, "composeExtension/query", q)
		bobSaw.WriteString(jsonOf(ce))
	}
	for _, u := range []string{"https://acme.atlassian.net/browse/PROJ-1", "https://acme.atlassian.net/wiki/spaces/ENG/pages/1001/Payment+service+runbook"} {
		_, ce = e.extInvoke(t, bo, "composeExtension/queryLink", map[string]any{"url": u})
		bobSaw.WriteString(jsonOf(ce))
	}
	for _, s := range []string{proj1.Summary, "Payment service runbook"} {
		if strings.Contains(bobSaw.String(), s) {
			t.Errorf("Bob obtained Alice's %q:\n%s", s, bobSaw.String())
		}
	}
	for _, r := range e.ch.Recorded() {
		if r.ConversationID == bo.conv && strings.Contains(r.Text(), "Payment") {
			t.Errorf("a search posted to Bob's chat: %q", r.Text())
		}
	}
}
