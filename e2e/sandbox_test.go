package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/playground"
	"github.com/onbehalf/onbehalf/internal/testenv/sandbox"
)

// sandboxRun is what make dev runs, started by the test: Azurite, the Atlassian stand-in, the
// Microsoft stand-ins with the channel bridge, the handler binary with the sandbox bot
// identity, and one real Agents Playground per sandbox user.
type sandboxRun struct {
	sb    *sandbox.Sandbox
	atl   *standin.Server
	h     *handler
	alice *playground.Playground
	bob   *playground.Playground
}

func startSandbox(t *testing.T) *sandboxRun {
	t.Helper()
	az := azurite.Start(t)
	port := freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	atl := standin.Start(standin.Options{RedirectURIs: []string{public + "/api/oauth/callback"}, ClientID: "sandbox-client", ClientSecret: "sandbox-secret"})
	t.Cleanup(atl.Close)
	sb, err := sandbox.Start(sandbox.Options{Addr: "127.0.0.1:0", BotEndpoint: public + "/api/messages"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)

	// The handler trusts the system CAs and the stand-ins' certificates, as make dev sets up.
	bundle := filepath.Join(t.TempDir(), "ca-bundle.pem")
	var pems []byte
	if sys, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		pems = append(pems, sys...)
	}
	pems = append(append(pems, atl.CertificatePEM()...), sb.CertificatePEM()...)
	if err := os.WriteFile(bundle, pems, 0o644); err != nil {
		t.Fatal(err)
	}
	env := sb.Env()
	for k, v := range map[string]string{
		"TOKENSTORE_CONNECTION_STRING": az.ConnectionString(),
		"TOKENSTORE_DEV_KEY":           "c2FuZGJveC1lMmUtdG9rZW5zdG9yZS1rZXktMzJieXQ=",
		"BOT_PUBLIC_URL":               public,
		"ATLASSIAN_CLIENT_ID":          "sandbox-client", "ATLASSIAN_CLIENT_SECRET": "sandbox-secret",
		"ATLASSIAN_AUTH_URL": atl.URL, "ATLASSIAN_API_URL": atl.URL,
		"SSL_CERT_FILE": bundle,
	} {
		env[k] = v
	}
	r := &sandboxRun{sb: sb, atl: atl, h: startHandlerOn(t, port, env)}
	users := map[string]*playground.Playground{}
	for _, u := range sb.Users {
		users[u.PlaygroundID] = playground.StartWithOptions(t, sb.URL+"/api/messages", playground.Options{Config: sb.PlaygroundConfig(u), StartTimeout: 60 * time.Second})
	}
	r.alice, r.bob = users["sandbox-alice"], users["sandbox-bob"]
	return r
}

// shown is what the Playground shows for a message: its text and its cards.
func shown(m playground.Message) string {
	var b strings.Builder
	b.WriteString(m.Text)
	for _, a := range m.Attachments {
		b.WriteString("\n")
		b.Write(a.Content)
	}
	return b.String()
}

// say types text into p and returns the first message from the bot that contains every one
// of want (later messages, such as an answer resumed after sign-in, included).
func say(t *testing.T, p *playground.Playground, text string, want ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Send(ctx, text); err != nil {
		t.Fatalf("%s says %q: %v", p.User.Name, text, err)
	}
	return await(t, ctx, p, text, want...)
}

func await(t *testing.T, ctx context.Context, p *playground.Playground, what string, want ...string) string {
	t.Helper()
	m, err := p.WaitForReply(ctx, func(m playground.Message) bool {
		if m.Action == playground.ActionTyping {
			return false
		}
		s := shown(m)
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("%s, %q: no reply containing %q: %v", p.User.Name, what, want, err)
	}
	if testing.Verbose() {
		t.Logf("%s> %s\n%s", p.User.Name, what, brief(shown(m)))
	}
	return shown(m)
}

// brief is a message cut to a few hundred characters for the verbose log.
func brief(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

var (
	consentRE = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/signin\?id=[A-Za-z0-9_-]+`)
	startRE   = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/api/oauth/start\?state=[A-Za-z0-9_.~-]+`)
	linkRE    = regexp.MustCompile(`link ([0-9]{8})`)
)

// signIn presses the card's Sign in button and accepts on the consent page, as the user.
func (r *sandboxRun) signIn(t *testing.T, card, name string) {
	t.Helper()
	link := consentRE.FindString(card)
	if link == "" {
		t.Fatalf("no sign-in button in %s", card)
	}
	page := httpGet(t, http.DefaultClient, link)
	if !strings.Contains(page, "Sign in as "+name) {
		t.Fatalf("consent page is not %s's:\n%s", name, page)
	}
	resp, err := http.PostForm(r.sb.URL+"/signin", url.Values{"id": {strings.SplitN(link, "id=", 2)[1]}, "action": {"accept"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Signed in as "+name) {
		t.Fatalf("consent: %d %s", resp.StatusCode, body)
	}
}

// connectJira presses Connect on the card, signs in at the Atlassian stand-in as account and
// types the code the page shows.
func (r *sandboxRun) connectJira(t *testing.T, p *playground.Playground, account, name string) {
	t.Helper()
	card := say(t, p, "connect jira", "/api/oauth/start")
	start := startRE.FindString(card)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := noRedirect.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb, err := r.atl.AuthorizeAs(account, resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize at the stand-in: %v (start answered %d)", err, resp.StatusCode)
	}
	page := httpGet(t, http.DefaultClient, cb)
	m := linkRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("callback page shows no code:\n%s", page)
	}
	say(t, p, "link "+m[1], "Connected to Jira as "+name+".")
}

func httpGet(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Every command of the README's table, and the assistant, typed into real Playgrounds by the two sandbox users,
// with the bot's identity and token checks on: answers are each user's own data, and Bob never
// sees Alice's.
func TestSandboxEveryCommandAsAliceAndBob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Playgrounds")
	}
	r := startSandbox(t)
	alice, bob := r.alice, r.bob

	say(t, alice, "help", "jira <KEY-123>", "mail <words>")

	// Microsoft 365: the first question brings the sign-in card; after consent the parked
	// question is answered through the token service and On-Behalf-Of.
	card := say(t, alice, "whoami", "Sign in")
	r.signIn(t, card, "Alice Example")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	await(t, ctx, alice, "whoami after sign-in", "Alice Example", "alice@contoso.example")
	cancel()
	say(t, alice, "whoami", "Alice Example", "Payments lead")
	say(t, alice, "mail payment", "Quarterly report: payments")
	say(t, alice, "files", "payments-roadmap.docx")
	say(t, alice, "api contoso /me/leave", "contoso** answered HTTP 200", `"daysLeft":12`, "Alice Example")

	// Atlassian: link Alice's account, then every Jira and Confluence command.
	r.connectJira(t, alice, standin.Alice, "Alice Example")
	say(t, alice, "jira PROJ-1", "jira site "+standin.AcmeSite+" jira PROJ-1")
	say(t, alice, "jira site "+standin.AcmeSite+" jira PROJ-1", "Payment service leaks memory under load")
	say(t, alice, "my jira issues", "PROJ-2")
	say(t, alice, "jira search payment", "PROJ-1")
	say(t, alice, "confluence search payment", "Payment service runbook")
	say(t, alice, "confluence page 1001", "Payment service runbook")
	say(t, alice, "connections", "jira")
	say(t, alice, "jira site", "jira site "+standin.GlobexSite)

	// Bob: his own profile, mail and files, and none of Alice's.
	card = say(t, bob, "whoami", "Sign in")
	r.signIn(t, card, "Bob Example")
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	got := await(t, ctx, bob, "whoami after sign-in", "Bob Example", "bob@contoso.example")
	cancel()
	for _, step := range []struct{ text, want string }{
		{"mail payment", ""}, {"mail on-call", "On-call rota for December"}, {"files", "runbook-ops.md"},
		{"api contoso /me/leave", `"daysLeft":3`},
	} {
		if step.want != "" {
			got += say(t, bob, step.text, step.want)
		} else {
			got += say(t, bob, step.text)
		}
	}
	r.connectJira(t, bob, standin.Bob, "Bob Example")
	got += say(t, bob, "jira PROJ-1", "does not exist, or you do not have permission")
	got += say(t, bob, "my jira issues", "OPS-7")
	got += say(t, bob, "confluence search payment", "Team handbook")
	got += say(t, bob, "confluence page 1001", "does not exist, or you do not have permission")
	got += say(t, bob, "jira site", "I will use acme.atlassian.net")
	// Plain words go to the assistant (the sandbox model), as each user.
	r.assistantTurns(t)
	for _, alices := range []string{"Alice", "alice@", `"daysLeft":12`, "Quarterly report", "payments-roadmap", "Payment service leaks", "Payment service runbook", "PROJ-2", "globex"} {
		if strings.Contains(got, alices) {
			t.Errorf("Bob saw %q:\n%s", alices, got)
		}
	}

	// Leaving: disconnect and sign out, then the data commands ask to sign in again.
	say(t, bob, "disconnect jira", "Disconnected")
	say(t, bob, "signout", "forgotten all your sign-ins")
	say(t, bob, "whoami", "Sign in")
	say(t, alice, "signout jira", "forgotten your jira sign-in")
	say(t, alice, "signout all", "forgotten all your sign-ins")
	say(t, alice, "api payroll /me", "I don't know an API called")
}

// streamOf is what the bot sent the Playground for one answer, in order: the stream types of
// its typing and message activities ("informative", "streaming", "final").
func streamOf(t *testing.T, p *playground.Playground, from int) []string {
	t.Helper()
	var kinds []string
	for _, ex := range p.Exchanges()[from:] {
		if ex.Direction != playground.FromBot {
			continue
		}
		var act struct {
			Type     string `json:"type"`
			Entities []struct {
				Type       string `json:"type"`
				StreamType string `json:"streamType"`
			} `json:"entities"`
		}
		if ex.Decode(&act) != nil {
			continue
		}
		for _, e := range act.Entities {
			if e.Type == "streaminfo" {
				kinds = append(kinds, act.Type+":"+e.StreamType)
			}
		}
	}
	return kinds
}

// assistantTurns is make dev's assistant, once Alice and Bob have linked Jira: the sandbox
// model answers free text in the Playground through the real assistant loop. Alice's "what's
// the status of PROJ-1?" runs the Jira tool as Alice and streams the answer with the issue's
// link (informative → streaming → final); Bob, who may not see PROJ-1, is told it is not found
// or not his to see, and nothing of it. A comment is only proposed until Alice confirms it,
// then posted once, as Alice.
func (r *sandboxRun) assistantTurns(t *testing.T) {
	t.Helper()
	alice, bob := r.alice, r.bob
	from := len(alice.Exchanges())
	got := say(t, alice, "what's the status of PROJ-1?", "Sandbox model", "[PROJ-1](https://acme.atlassian.net/browse/PROJ-1)")
	if !strings.Contains(got, "Payment service leaks memory under load") {
		t.Errorf("Alice's answer: %s", got)
	}
	kinds := streamOf(t, alice, from)
	if len(kinds) < 3 || kinds[0] != "typing:informative" || !slices.Contains(kinds, "typing:streaming") || kinds[len(kinds)-1] != "message:final" {
		t.Errorf("Alice's answer was not streamed (informative → streaming → final): %v", kinds)
	}

	got = say(t, bob, "what's the status of PROJ-1?", "Sandbox model", "PROJ-1 was not found, or you have no permission to see it.")
	if strings.Contains(got, "Payment service") || strings.Contains(got, "browse/PROJ-1") {
		t.Errorf("Bob saw Alice's issue: %s", got)
	}

	card := say(t, alice, "comment on PROJ-1: deployed the fix to staging", "Post this comment on PROJ-1?", "deployed the fix to staging")
	if n := len(r.atl.Comments()); n != 0 {
		t.Fatalf("%d comments posted before confirmation", n)
	}
	id := regexp.MustCompile(`jira comment confirm ([A-Za-z0-9_-]+)`).FindStringSubmatch(card)
	if id == nil {
		t.Fatalf("no confirm button: %s", card)
	}
	say(t, alice, "jira comment confirm "+id[1], "Posted your comment on [PROJ-1]")
	say(t, alice, "jira comment confirm "+id[1], "no longer valid")
	if cs := r.atl.Comments(); len(cs) != 1 || cs[0].Author != standin.Alice || cs[0].Text != "deployed the fix to staging" {
		t.Fatalf("comments in Jira: %+v", cs)
	}
}
