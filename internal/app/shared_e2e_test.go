package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/openai"
	"github.com/onbehalf/onbehalf/internal/testenv/samlapp"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// sharedChatCases is every command the bot registers, with a message that runs it. A command
// that shows or acts on a user's own data must refuse in a group chat and in a channel, where
// everyone in the conversation reads the answer; only commands marked shared may answer
// there. TestEveryCommandIsCheckedInSharedChats fails for a registered command missing here,
// so a new command cannot be added without this check.
var sharedChatCases = []struct {
	command string // the registered name
	text    string // a message that runs it
	shared  bool   // answers in shared conversations
}{
	{"help", "help", true},
	{"whoami", "whoami", false},
	{"mail", "mail quarterly", false},
	{"files", "files", false},
	{"api", "api contoso /me/leave", false},
	{"saml", "saml sap /me", false},
	{"jira", "jira PROJ-1", false},
	{"jira search", "jira search payment", false},
	{"my jira issues", "my jira issues", false},
	{"jira site", "jira site " + standin.AcmeSite, false},
	{"jira comment", "jira comment confirm AAAAAAAAAAAAAAAA", false},
	{"confluence", "confluence", false},
	{"confluence search", "confluence search runbook", false},
	{"confluence page", "confluence page 1001", false},
	{"connect", "connect jira", false},
	{"disconnect", "disconnect jira", false},
	{"reconnect", "reconnect jira", false},
	{"connections", "connections", false},
	{"link", "link 12345678", false},
	{"signout", "signout", false},
	{"forget", "forget", true}, // clears only the asker's own memory of this conversation
	{"activity", "activity", false},
	{"admin revoke", "admin revoke b0b00000-0000-4000-8000-00000000000b", false},
}

// Alice is signed in (Microsoft 365 through SSO), so a data command that ran would answer with
// her data or start a sign-in in front of everyone. Each one refuses, in a group chat and in a
// channel, before any back end is called.
func TestEveryCommandIsCheckedInSharedChats(t *testing.T) {
	atl := standin.Start(standin.Options{RedirectURIs: []string{"https://bot.example/api/oauth/callback"}})
	t.Cleanup(atl.Close)
	api := startCompanyAPI(t)
	sp := samlapp.Start(samlapp.Config{EntityID: samlEntityID, ClientID: "ONBEHALF_BOT", ClientSecret: "sap-s3cret",
		Data: map[string][]string{alice.UPN: {"Sales order 4711 for Alice"}}})
	t.Cleanup(sp.Close)
	model := openai.New("gpt-test", "unused", "2024-10-21") // the assistant, so its commands are registered too
	t.Cleanup(model.Close)
	h := newSSOHarness(t, map[string]string{
		"AZURE_OPENAI_ENDPOINT":   model.URL,
		"AZURE_OPENAI_DEPLOYMENT": "gpt-test",
		"ENTRA_APIS":              `[{"name":"contoso","display":"Contoso HR","baseUrl":"` + api.url + `","scopes":["api://contoso-hr/access_as_user"]}]`,
		"BOT_PUBLIC_URL":          "https://bot.example",
		"ATLASSIAN_CLIENT_ID":     atl.ClientID(),
		"ATLASSIAN_CLIENT_SECRET": atl.ClientSecret(),
		"ATLASSIAN_AUTH_URL":      atl.URL,
		"ATLASSIAN_API_URL":       atl.URL,
		"OAUTH2_CONNECTORS": `[{"name":"acme","displayName":"Acme API","authURL":"` + atl.URL + `/authorize","tokenURL":"` + atl.URL +
			`/oauth/token","apiBaseURL":"` + atl.URL + `","scopes":["read:me"],"clientID":"` + atl.ClientID() + `","clientSecretName":"acme-secret"}]`,
		"OAUTH2_DEV_SECRETS": `{"acme-secret":"` + atl.ClientSecret() + `","sap-client-secret":"sap-s3cret"}`,
		"BOT_ADMIN_ROLES":    "Bot.Admin",
		"SAML_APPS":          `[{"name":"sap","entityId":"` + samlEntityID + `","tokenUrl":"` + sp.TokenURL + `","apiBaseUrl":"` + sp.APIURL + `","clientId":"ONBEHALF_BOT","clientSecretName":"sap-client-secret"}]`,
	})
	api.tenant.Store(h.st.Entra)
	h.st.Entra.AddSAMLApp(entra.SAMLApp{EntityID: samlEntityID, ReplyURLs: []string{sp.TokenURL}})
	h.st.Entra.SetPermissions(stack.BotAppID, samlEntityID, "user_impersonation")
	sp.TrustIdP("https://sts.windows.net/"+h.st.Entra.Tenant+"/", h.st.Entra.SAMLSigningCertificate())

	inTable := map[string]bool{}
	for _, c := range sharedChatCases {
		inTable[c.command] = true
	}
	registered := map[string]bool{}
	for _, c := range h.app.Bot.Commands() {
		registered[c.Name] = true
		if !inTable[c.Name] {
			t.Errorf("command %q is not in sharedChatCases: add it with a message that runs it", c.Name)
		}
	}
	for _, c := range sharedChatCases {
		if !registered[c.command] {
			t.Errorf("sharedChatCases names %q, which is not a registered command (every connector must be configured here)", c.command)
		}
	}

	c := h.client(alice)
	h.signIn(t, c)
	ctx := ctxTimeout(t, 60*time.Second)
	for _, tc := range sharedChatCases {
		for _, convType := range []string{"groupChat", "channel"} {
			t.Run(tc.command+" in a "+convType, func(t *testing.T) {
				graphCalls, obo, signIns := h.graph.Calls(alice.ObjectID), h.st.Entra.OBOCount("https://graph.microsoft.com")+h.st.Entra.OBOCount("api://contoso-hr"), h.ts.Count("GetSignInResource")
				apiCalls, atlCalls := api.requests.Load(), atl.TokenCalls()
				samlCalls := h.st.Entra.SAMLCount(samlEntityID) + sp.Exchanges() + sp.APICalls()
				before := len(c.Replies())
				act := c.Activity("message")
				act["text"] = tc.text
				conv := act["conversation"].(map[string]any)
				conv["conversationType"], conv["isGroup"] = convType, true
				if r, err := c.Post(ctx, act); err != nil || r.Status != http.StatusOK {
					t.Fatalf("%v %+v", err, r)
				}
				rep, err := c.WaitReplies(ctx, before+1)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // anything the turn sent after its first reply
				rep = c.Replies()[before:]
				got := texts(rep)
				refused := len(rep) == 1 && strings.Contains(got, "only in a 1:1 chat") && rep[0].Activity["attachments"] == nil
				switch {
				case tc.shared && refused:
					t.Fatalf("a shared command was refused:\n%s", got)
				case !tc.shared && !refused:
					t.Fatalf("a command that shows or acts on the user's data answered in a %s:\n%s", convType, got)
				}
				if tc.shared {
					return
				}
				if strings.Contains(got, "Alice Example") || strings.Contains(got, "Quarterly report") {
					t.Fatalf("Alice's data was posted to the %s:\n%s", convType, got)
				}
				if h.graph.Calls(alice.ObjectID) != graphCalls || api.requests.Load() != apiCalls || atl.TokenCalls() != atlCalls ||
					h.st.Entra.OBOCount("https://graph.microsoft.com")+h.st.Entra.OBOCount("api://contoso-hr") != obo ||
					h.ts.Count("GetSignInResource") != signIns ||
					h.st.Entra.SAMLCount(samlEntityID)+sp.Exchanges()+sp.APICalls() != samlCalls {
					t.Fatal("a back end was called for a command refused in a shared conversation")
				}
			})
		}
	}
	if t.Failed() {
		t.Logf("bot's commands: %s", strings.Join(commandNames(h), ", "))
	}
}

func commandNames(h *ssoHarness) []string {
	var out []string
	for _, c := range h.app.Bot.Commands() {
		out = append(out, c.Name)
	}
	return out
}
