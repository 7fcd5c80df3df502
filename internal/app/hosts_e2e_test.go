package app_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/tokenservice"
)

// copilotChannel is the composite channel id Microsoft 365 Copilot sends (Agents-for-net#827).
const copilotChannel = "msteams:COPILOT"

// In Microsoft 365 Copilot the activities carry the composite channel id: the silent sign-in
// completes, the token service holds Alice's sign-in under the base channel "msteams" (where
// the next turn finds it), and the parked question is answered with her profile.
func TestCopilotChannelSilentSignInAndAnswer(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	c.ChannelID = copilotChannel
	ctx := ctxTimeout(t, 20*time.Second)

	if r, err := c.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("whoami from Copilot: %v %+v\n%s", err, r, h.logs.String())
	}
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	res, err := c.ExchangeSSO(ctx, 2, entra.SSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Status != http.StatusOK {
			t.Fatalf("client %d: exchange answered %d %+v\n%s", i, r.Status, r.Body, h.logs.String())
		}
	}
	rep, err := c.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(texts(rep[1:]), "Alice Example") {
		t.Fatalf("the parked whoami was not answered with Alice's profile:\n%s", texts(rep))
	}
	user := "29:" + alice.ObjectID
	if !h.ts.SignedInOn(tokenservice.TeamsChannel, user) || h.ts.SignedInOn(copilotChannel, user) {
		t.Fatalf("the sign-in was kept under the wrong channel: msteams=%v composite=%v",
			h.ts.SignedInOn(tokenservice.TeamsChannel, user), h.ts.SignedInOn(copilotChannel, user))
	}
	for _, r := range rep {
		if r.Activity["channelId"] != copilotChannel {
			t.Fatalf("a reply left Copilot's conversation: channelId %v", r.Activity["channelId"])
		}
	}
}

// Consent needed inside Copilot: every exchange is answered 412 (so Copilot asks for consent,
// Agents-for-js#829), the user opens the card's sign-in link, and the code the page shows
// completes sign-in through signin/verifyState; the parked question is answered.
func TestCopilotChannelConsentThenSignInLink(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(bob)
	c.ChannelID = copilotChannel
	ctx := ctxTimeout(t, 20*time.Second)
	h.st.Entra.RevokeAdminConsent(stack.BotAppID)

	c.Say(ctx, "mail quarterly")
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	res, err := c.ExchangeSSO(ctx, 1, entra.SSOOptions{})
	if err != nil || res[0].Status != http.StatusPreconditionFailed {
		t.Fatalf("consent needed: want 412, got %v %+v", err, res)
	}
	card, _ := c.LastOAuthCard()
	resp, err := testenv.SharedCA().Client().Get(card.SignInLink + "&oid=" + bob.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="magic">(\d{6})</code>`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	r, err := c.Invoke(ctx, "signin/verifyState", map[string]any{"state": string(m[1])})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("verifyState from Copilot: %v %+v\n%s", err, r, h.logs.String())
	}
	rep, err := c.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(rep[1:]); !strings.Contains(got, "Quarterly report for Bob") || strings.Contains(got, "Alice") {
		t.Fatalf("after sign-in the parked mail search was not answered with Bob's mail:\n%s", texts(rep))
	}
}

// BOTFRAMEWORK_TOKEN_SERVICE_URL alone decides where every token-service call goes: here it
// names the stand-in, and the sign-in resource (whose link the card shows), the exchange, the
// token look-up and the sign-out all reach it, from Copilot as from Teams. A regional URL is
// taken as it is.
func TestOneSettingMovesEveryTokenServiceCall(t *testing.T) {
	const europe = "https://europe.token.botframework.com"
	hEU := newSSOHarness(t, map[string]string{"BOTFRAMEWORK_TOKEN_SERVICE_URL": europe})
	if got := hEU.app.SSO.M.TokenService.BaseURL; got != europe {
		t.Fatalf("token service base URL %q, want %q", got, europe)
	}

	h := newSSOHarness(t)
	c := h.client(alice)
	c.ChannelID = copilotChannel
	h.signIn(t, c)
	card, err := c.LastOAuthCard()
	if err != nil || !strings.HasPrefix(card.SignInLink, h.ts.URL+"/") {
		t.Fatalf("the card's sign-in link %q is not the configured token service's (%v)", card.SignInLink, err)
	}
	ctx := ctxTimeout(t, 15*time.Second)
	before := len(c.Replies())
	if r, err := c.Say(ctx, "signout"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("signout: %v %+v", err, r)
	}
	if _, err := c.WaitReplies(ctx, before+1); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"GetSignInResource", "exchange", "SignOut"} {
		if h.ts.Count(op) == 0 {
			t.Errorf("no %s reached the configured token service", op)
		}
	}
	if h.ts.SignedIn("29:" + alice.ObjectID) {
		t.Fatal("sign-out from Copilot did not reach the base-channel sign-in")
	}
}
