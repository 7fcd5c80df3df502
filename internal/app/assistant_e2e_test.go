package app_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/openai"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

const modelAudience = "https://cognitiveservices.azure.com"

// newAssistantEnv is the Atlassian environment plus the model, which accepts only the
// managed identity's Entra token for Cognitive Services (no key exists).
func newAssistantEnv(t *testing.T, extra ...map[string]string) (*atlEnv, *openai.Server) {
	t.Helper()
	return newAssistantEnvN(t, 1, extra...)
}

// newAssistantEnvN is newAssistantEnv with n app instances sharing one Azurite.
func newAssistantEnvN(t *testing.T, n int, extra ...map[string]string) (*atlEnv, *openai.Server) {
	t.Helper()
	model := openai.New("gpt-test", "unused", "2024-10-21")
	t.Cleanup(model.Close)
	settings := map[string]string{
		"AZURE_OPENAI_ENDPOINT":   model.URL,
		"AZURE_OPENAI_DEPLOYMENT": "gpt-test",
	}
	for _, m := range extra {
		for k, v := range m {
			settings[k] = v
		}
	}
	e := newAtlEnvWith(t, n, false, settings, nil)
	model.Verify = func(tok string) (int, error) {
		claims, err := e.st.Entra.Verify(tok, modelAudience)
		if err != nil {
			return http.StatusUnauthorized, err
		}
		if claims["oid"] != e.st.MIPrincipal {
			return http.StatusForbidden, errors.New("no data-plane role for this principal")
		}
		return 0, nil
	}
	return e, model
}

func toolCall(name, args string) []openai.ToolCall {
	return []openai.ToolCall{{ID: "call-1", Name: name, Arguments: args}}
}

// "What's the status of PROJ-1?" in plain words: the Jira tool runs as the asker through the
// command's own path, so Alice gets the answer with its link and Bob, who may not see PROJ-1,
// gets "not found or no permission" with no detail of it.
func TestAssistantAnswersAsTheAskingUser(t *testing.T) {
	e, model := newAssistantEnv(t)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	e.link(t, ada, atlassian.Alice, false)
	e.submit(t, ada, "jira site "+atlassian.AcmeSite)
	e.link(t, bo, atlassian.Bob, true)
	proj1 := e.issue("PROJ-1")

	model.Script(openai.Turn{ToolCalls: toolCall("jira_issue", `{"key":"PROJ-1"}`)},
		openai.Turn{Content: "PROJ-1 is **In Progress**: [PROJ-1](https://acme.atlassian.net/browse/PROJ-1)"})
	calls := map[string]int{}
	n := e.atl.APICalls()
	d := dump(e.say(t, 0, ada, "what's the status of PROJ-1?"))
	calls[ada.aad] = e.atl.APICalls() - n
	if !strings.Contains(d, "[PROJ-1](https://acme.atlassian.net/browse/PROJ-1)") {
		t.Fatalf("Ada's answer:\n%s\nlog:\n%s", d, e.logs.String())
	}
	reqs := model.Requests()
	if shown := reqs[len(reqs)-1].Messages[3].Text(); !strings.Contains(shown, proj1.Summary) || !strings.Contains(shown, "acme.atlassian.net/browse/PROJ-1") {
		t.Fatalf("the model was not shown Alice's issue: %s", shown)
	}

	model.Script(openai.Turn{ToolCalls: toolCall("jira_issue", `{"key":"PROJ-1"}`)},
		openai.Turn{Content: "PROJ-1 does not exist, or you do not have permission to see it."})
	n = e.atl.APICalls()
	d = dump(e.say(t, 0, bo, "what's the status of PROJ-1?"))
	calls[bo.aad] = e.atl.APICalls() - n
	reqs = model.Requests()
	shown := reqs[len(reqs)-1].Messages[3].Text()
	if !strings.Contains(shown, "not_found_or_no_permission") || strings.Contains(shown, proj1.Summary) {
		t.Fatalf("Bob's model was shown: %s", shown)
	}
	if strings.Contains(d, proj1.Summary) || !strings.Contains(d, "do not have permission") {
		t.Fatalf("Bob's answer:\n%s", d)
	}
	for _, r := range reqs {
		for _, m := range r.Messages {
			if strings.Contains(m.Text(), "eyJ") {
				t.Fatalf("a token reached the model: %s", m.Text())
			}
		}
	}
	if l := e.logs.String(); strings.Contains(l, "eyJ") || strings.Contains(l, proj1.Summary) {
		t.Fatalf("a token or back-end content reached the log:\n%s", l)
	}
	// Each Jira request the tool made is one audit record of the asker, naming the tool.
	lines := auditLines(t, e.logs.String())
	for _, u := range []chatUser{ada, bo} {
		got := 0
		for _, l := range lines {
			if l.ObjectID == u.aad && l.Asker == "assistant:jira_issue" && l.Connector == "atlassian" {
				got++
			}
		}
		if got != calls[u.aad] || got == 0 {
			t.Errorf("%s: %d audit records naming the tool for %d Jira requests", u.name, got, calls[u.aad])
		}
	}
}

// A user who has not linked Atlassian gets the connect card; the model is told, and the
// question waits for the link like a command's would.
func TestAssistantToolWithoutALinkShowsTheConnectCard(t *testing.T) {
	e, model := newAssistantEnv(t)
	cy := newChatUser("cy")
	model.Script(openai.Turn{ToolCalls: toolCall("jira_issue", `{"key":"PROJ-1"}`)}, openai.Turn{Content: ""})
	d := dump(e.say(t, 0, cy, "what's the status of PROJ-1?"))
	if !strings.Contains(d, "application/vnd.microsoft.card.signin") {
		t.Fatalf("no connect card:\n%s", d)
	}
	reqs := model.Requests()
	if shown := reqs[len(reqs)-1].Messages[3].Text(); !strings.Contains(shown, "user_prompted") {
		t.Fatalf("the model was not told: %s", shown)
	}
}

// Commands keep working with the assistant on, and never reach the model.
func TestCommandsBypassTheAssistant(t *testing.T) {
	e, model := newAssistantEnv(t)
	d := dump(e.say(t, 0, newChatUser("dee"), "help"))
	if !strings.Contains(d, "Here is what I can do") || len(model.Requests()) != 0 {
		t.Fatalf("help:\n%s (model requests: %d)", d, len(model.Requests()))
	}
}

var confirmRE = regexp.MustCompile(`jira comment confirm ([A-Za-z0-9_-]+)`)

// "Comment on PROJ-1": the model can only propose; the card shows the exact text; nothing
// reaches Jira until Alice herself confirms, and then exactly once, as Alice. Bob cannot
// confirm Alice's card, and a second click posts nothing.
func TestAssistantWriteNeedsTheUsersConfirmation(t *testing.T) {
	// Writes are off unless the organisation's policy allows them (CONNECTOR_POLICY).
	e, model := newAssistantEnv(t, map[string]string{"CONNECTOR_POLICY": `{"atlassian":{"write":true,"confirm":true}}`})
	ada, bo := newChatUser("ada"), newChatUser("bo")
	e.link(t, ada, atlassian.Alice, false)
	e.submit(t, ada, "jira site "+atlassian.AcmeSite)
	e.link(t, bo, atlassian.Bob, true)
	const text = "Deployed the fix to staging, please verify."

	model.Script(openai.Turn{ToolCalls: toolCall("jira_comment", `{"key":"PROJ-1","text":"`+text+`"}`)}, openai.Turn{Content: ""})
	d := dump(e.say(t, 0, ada, "comment on PROJ-1 that I deployed the fix to staging"))
	if !strings.Contains(d, "Post this comment on PROJ-1?") || !strings.Contains(d, text) {
		t.Fatalf("no confirmation card with the exact text:\n%s", d)
	}
	if n := len(e.atl.Comments()); n != 0 {
		t.Fatalf("%d comments reached Jira before confirmation", n)
	}
	m := confirmRE.FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("no confirm button:\n%s", d)
	}

	if d := dump(e.submit(t, bo, "jira comment confirm "+m[1])); !strings.Contains(d, "no longer valid") || len(e.atl.Comments()) != 0 {
		t.Fatalf("Bob confirmed Alice's comment:\n%s", d)
	}
	if d := dump(e.submit(t, ada, "jira comment confirm "+m[1])); !strings.Contains(d, "Posted your comment on [PROJ-1](https://acme.atlassian.net/browse/PROJ-1)") {
		t.Fatalf("confirmation:\n%s\nlog:\n%s", d, e.logs.String())
	}
	if d := dump(e.submit(t, ada, "jira comment confirm "+m[1])); !strings.Contains(d, "no longer valid") {
		t.Fatalf("second click:\n%s", d)
	}
	cs := e.atl.Comments()
	if len(cs) != 1 || cs[0].Author != atlassian.Alice || cs[0].Key != "PROJ-1" || cs[0].Text != text {
		t.Fatalf("comments in Jira: %+v", cs)
	}
}

// Two clicks on the same confirmation card reaching two instances at once post the comment
// once: the pending comment is taken from Table Storage on a condition of its ETag, even when
// the second instance still remembers it in its memory.
func TestAssistantConfirmationPostsOnceAcrossInstances(t *testing.T) {
	e, model := newAssistantEnvN(t, 2, map[string]string{"CONNECTOR_POLICY": `{"atlassian":{"write":true,"confirm":true}}`})
	ada := newChatUser("ada")
	e.link(t, ada, atlassian.Alice, false)
	e.submit(t, ada, "jira site "+atlassian.AcmeSite)
	const text = "Released in 4.2."
	model.Script(openai.Turn{ToolCalls: toolCall("jira_comment", `{"key":"PROJ-1","text":"`+text+`"}`)}, openai.Turn{Content: ""})
	m := confirmRE.FindStringSubmatch(dump(e.say(t, 0, ada, "comment on PROJ-1: released in 4.2")))
	if m == nil {
		t.Fatal("no confirmation card")
	}
	// The second instance reads Alice's facts (the pending comment among them) into its memory.
	if d := dump(e.say(t, 1, ada, "jira PROJ-1")); !strings.Contains(d, "PROJ-1") {
		t.Fatalf("jira PROJ-1 on the second instance:\n%s", d)
	}
	from := len(e.ch.Recorded())
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.send(t, i, ada, map[string]any{"type": "message", "value": map[string]any{"command": "jira comment confirm " + m[1]}})
		}()
	}
	wg.Wait()
	replies := dump(e.ch.Recorded()[from:])
	if cs := e.atl.Comments(); len(cs) != 1 || cs[0].Text != text || cs[0].Author != atlassian.Alice {
		t.Fatalf("comments in Jira after two confirmations: %+v\nreplies:\n%s", cs, replies)
	}
	if strings.Count(replies, "Posted your comment on") != 1 || strings.Count(replies, "no longer valid") != 1 {
		t.Fatalf("want one \"posted\" and one \"no longer valid\":\n%s", replies)
	}
}

// Table Storage round trips of an assistant turn once the user is linked and their token is
// in this instance's memory: the figure the benchmark report quotes.
func TestAssistantTableRoundTripsPerTurn(t *testing.T) {
	e, model := newAssistantEnv(t)
	ada := newChatUser("ada")
	e.link(t, ada, atlassian.Alice, false)
	e.submit(t, ada, "jira site "+atlassian.AcmeSite)
	// Each turn is counted with its background writes (the audit record of a tool call) in,
	// and none of the turn before it.
	settled := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !e.apps[0].Wait(ctx) {
			t.Fatal("background writes did not finish")
		}
	}
	turn := func(turns ...openai.Turn) int {
		model.Script(turns...)
		settled()
		before := e.table.count()
		e.say(t, 0, ada, "what's the status of PROJ-1?")
		settled()
		return e.table.count() - before
	}
	jira := []openai.Turn{{ToolCalls: toolCall("jira_issue", `{"key":"PROJ-1"}`)}, {Content: "In Progress."}}
	turn(jira...) // warm
	noTool := turn(openai.Turn{Content: "Hello."})
	withTool := turn(jira...)
	t.Logf("Table round trips per assistant turn: %d without a tool, %d with the Jira tool", noTool, withTool)
	// The one write is the conversation memory; reads come from the instance's memory (L1).
	if noTool > 1 {
		t.Errorf("a turn without tools cost %d Table round trips, want at most 1", noTool)
	}
	if withTool > 2 {
		t.Errorf("a Jira tool turn cost %d Table round trips, want at most 2", withTool)
	}
}

// Memory is per user and conversation: a follow-up sees the earlier exchange, another user
// in their own chat sees nothing of it, and "forget" clears it.
func TestAssistantMemoryIsPerUserAndForgettable(t *testing.T) {
	e, model := newAssistantEnv(t)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	history := func() string {
		reqs := model.Requests()
		var b strings.Builder
		for _, m := range reqs[len(reqs)-1].Messages[1:] {
			b.WriteString(m.Role + ":" + m.Text() + "\n")
		}
		return b.String()
	}
	model.Script(openai.Turn{Content: "The launch code name is Bluebird."})
	e.say(t, 0, ada, "remember that our launch is called Bluebird")
	model.Script(openai.Turn{Content: "Bluebird."})
	e.say(t, 0, ada, "what is our launch called?")
	if h := history(); !strings.Contains(h, "user:remember that our launch is called Bluebird") || !strings.Contains(h, "assistant:The launch code name is Bluebird.") {
		t.Fatalf("Ada's follow-up lacks her earlier exchange:\n%s", h)
	}
	model.Script(openai.Turn{Content: "I don't know."})
	e.say(t, 0, bo, "what is our launch called?")
	if h := history(); strings.Contains(h, "Bluebird") {
		t.Fatalf("Bob's turn saw Ada's memory:\n%s", h)
	}
	if d := dump(e.say(t, 0, ada, "forget")); !strings.Contains(d, "no longer remember") {
		t.Fatalf("forget:\n%s", d)
	}
	model.Script(openai.Turn{Content: "I don't know."})
	e.say(t, 0, ada, "what is our launch called?")
	if h := history(); strings.Contains(h, "Bluebird") {
		t.Fatalf("memory survived forget:\n%s", h)
	}

	// Memory expires.
	model.Script(openai.Turn{Content: "Noted: Redwing."})
	e.say(t, 0, ada, "the next launch is Redwing")
	e.clk.Advance(3 * time.Hour)
	model.Script(openai.Turn{Content: "I don't know."})
	e.say(t, 0, ada, "what is the next launch?")
	if h := history(); strings.Contains(h, "Redwing") {
		t.Fatalf("memory outlived its expiry:\n%s", h)
	}
}

// The mail tool reads the asker's own mailbox through the mail command's Graph path with
// their SSO/OBO token: Alice's question shows the model Alice's mail, Bob's shows Bob's.
func TestAssistantMailToolReadsTheAskersMailbox(t *testing.T) {
	model := openai.New("gpt-test", "unused", "2024-10-21")
	t.Cleanup(model.Close)
	h := newSSOHarness(t, map[string]string{"AZURE_OPENAI_ENDPOINT": model.URL, "AZURE_OPENAI_DEPLOYMENT": "gpt-test"})
	model.Verify = func(tok string) (int, error) {
		if _, err := h.st.Entra.Verify(tok, modelAudience); err != nil {
			return http.StatusUnauthorized, err
		}
		return 0, nil
	}
	ctx := ctxTimeout(t, 30*time.Second)
	for _, u := range []struct {
		c          *teamsclient.Client
		own, other string
	}{{h.client(alice), "Alice", "Bob"}, {h.client(bob), "Bob", "Alice"}} {
		h.signIn(t, u.c)
		model.Script(openai.Turn{ToolCalls: toolCall("mail_search", `{"words":"quarterly"}`)}, openai.Turn{Content: "You have a quarterly report."})
		before := len(u.c.Replies())
		if r, err := u.c.Say(ctx, "do I have mail about the quarterly report?"); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%v %+v", err, r)
		}
		if _, err := u.c.WaitReplies(ctx, before+1); err != nil {
			t.Fatal(err)
		}
		reqs := model.Requests()
		shown := reqs[len(reqs)-1].Messages[3].Text()
		if !strings.Contains(shown, "Quarterly report for "+u.own) || strings.Contains(shown, u.other) {
			t.Fatalf("%s's model was shown: %s", u.own, shown)
		}
		if strings.Contains(shown, "eyJ") {
			t.Fatalf("a token reached the model: %s", shown)
		}
	}
}

// With the default policy (Atlassian read only), a comment the assistant proposed and Ada
// confirmed is refused before it reaches Jira; she is told why, and the refusal is audited.
func TestAssistantProposedWriteRefusedByReadOnlyPolicyIsAudited(t *testing.T) {
	e, model := newAssistantEnv(t)
	ada := newChatUser("ada")
	e.link(t, ada, atlassian.Alice, false)
	e.submit(t, ada, "jira site "+atlassian.AcmeSite)
	model.Script(openai.Turn{ToolCalls: toolCall("jira_comment", `{"key":"PROJ-1","text":"Ship it"}`)}, openai.Turn{Content: ""})
	m := confirmRE.FindStringSubmatch(dump(e.say(t, 0, ada, "comment on PROJ-1: ship it")))
	if m == nil {
		t.Fatal("no confirmation card")
	}
	d := dump(e.submit(t, ada, "jira comment confirm "+m[1]))
	if !strings.Contains(d, "policy lets me only read Atlassian") || len(e.atl.Comments()) != 0 {
		t.Fatalf("read-only policy did not refuse (%d comments):\n%s", len(e.atl.Comments()), d)
	}
	var denied []auditLine
	for _, l := range auditLines(t, e.logs.String()) {
		if l.Outcome == "denied" {
			denied = append(denied, l)
		}
	}
	if len(denied) != 1 || denied[0].ObjectID != ada.aad || denied[0].Connector != "atlassian" || strings.Contains(denied[0].raw, "Ship it") {
		t.Fatalf("refusal not audited once: %+v", denied)
	}
}
