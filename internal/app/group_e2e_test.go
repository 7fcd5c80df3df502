package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

// waitSeen waits until the user of c sees a bot message containing want.
func waitSeen(ctx context.Context, t *testing.T, c *teamsclient.Client, want string) {
	t.Helper()
	if _, err := c.Channel.WaitFor(ctx, func([]channel.Recorded) bool { return strings.Contains(texts(c.Seen()), want) }); err != nil {
		t.Fatalf("%s never saw %q; they saw:\n%s", c.User.Name, want, texts(c.Seen()))
	}
}

// In a group chat (and a channel) with Alice and Bob and targeted messages on, Alice's sign-in
// card and every answer read with her identity reach Alice alone; Bob, in the same
// conversation, sees none of it, and the same holds the other way round. Help, which carries
// nobody's data, is posted for everyone.
func TestGroupChatAliceDataReachesOnlyAlice(t *testing.T) {
	for _, convType := range []string{"groupChat", "channel"} {
		t.Run(convType, func(t *testing.T) {
			h := newSSOHarness(t, map[string]string{"TEAMS_TARGETED_MESSAGES": "true"})
			conv := "19:" + uuid.NewString() + "@thread.v2"
			ca := h.client(alice).InGroup(conv, convType)
			cb := h.client(bob).InGroup(conv, convType)
			h.st.Channel.SetMembers(conv, ca.UserID(), cb.UserID())
			ctx := ctxTimeout(t, 30*time.Second)

			if r, err := ca.Say(ctx, "<at>onbehalf</at> whoami"); err != nil || r.Status != http.StatusOK {
				t.Fatalf("whoami: %v %+v", err, r)
			}
			if _, err := ca.Channel.WaitFor(ctx, func([]channel.Recorded) bool { _, err := ca.LastOAuthCard(); return err == nil }); err != nil {
				t.Fatalf("Alice got no sign-in card:\n%s", texts(ca.Seen()))
			}
			if _, err := cb.LastOAuthCard(); err == nil {
				t.Fatal("Bob sees Alice's sign-in card")
			}
			res, err := ca.ExchangeSSO(ctx, 2, entra.SSOOptions{})
			if err != nil || res[0].Status != http.StatusOK || res[1].Status != http.StatusOK {
				t.Fatalf("exchange: %v %+v\n%s", err, res, h.logs.String())
			}
			waitSeen(ctx, t, ca, "Alice Example")

			ca.Say(ctx, "<at>onbehalf</at> mail quarterly")
			waitSeen(ctx, t, ca, "Quarterly report for Alice")

			cb.Say(ctx, "<at>onbehalf</at> mail quarterly")
			if _, err := cb.Channel.WaitFor(ctx, func([]channel.Recorded) bool { _, err := cb.LastOAuthCard(); return err == nil }); err != nil {
				t.Fatalf("Bob got no sign-in card:\n%s", texts(cb.Seen()))
			}
			if res, err := cb.ExchangeSSO(ctx, 1, entra.SSOOptions{}); err != nil || res[0].Status != http.StatusOK {
				t.Fatalf("Bob's sign-in: %v %+v", err, res)
			}
			waitSeen(ctx, t, cb, "Quarterly report for Bob")

			ca.Say(ctx, "<at>onbehalf</at> help")
			waitSeen(ctx, t, ca, "Here is what I can do")
			waitSeen(ctx, t, cb, "Here is what I can do")
			time.Sleep(100 * time.Millisecond) // anything still being sent

			bobSaw, aliceSaw := texts(cb.Seen()), texts(ca.Seen())
			for _, leak := range []string{"Alice Example", "Quarterly report for Alice", "Numbers only Alice", "alice@contoso.example"} {
				if strings.Contains(bobSaw, leak) {
					t.Errorf("Bob sees Alice's %q:\n%s", leak, bobSaw)
				}
			}
			for _, leak := range []string{"Bob Example", "Quarterly report for Bob", "Numbers only Bob"} {
				if strings.Contains(aliceSaw, leak) {
					t.Errorf("Alice sees Bob's %q:\n%s", leak, aliceSaw)
				}
			}
			for _, r := range ca.Replies() {
				if !r.Targeted && !strings.Contains(r.Text(), "Here is what I can do") {
					t.Errorf("a message went to the whole %s: %q", convType, r.Text())
				}
			}
		})
	}
}

// Where Teams refuses the targeted message (a client or tenant without them), the requester's
// data is not posted to the chat: the conversation gets the hand-off to a 1:1 chat, once.
func TestGroupChatTargetedRefusedHandsOff(t *testing.T) {
	h := newSSOHarness(t, map[string]string{"TEAMS_TARGETED_MESSAGES": "true"})
	conv := "19:" + uuid.NewString() + "@thread.v2"
	ca := h.client(alice).InGroup(conv, "groupChat")
	cb := h.client(bob).InGroup(conv, "groupChat")
	h.st.Channel.SetMembers(conv, ca.UserID(), cb.UserID())
	h.signIn1to1(t)
	h.st.Channel.RefuseTargeted(true)
	ctx := ctxTimeout(t, 20*time.Second)

	ca.Say(ctx, "<at>onbehalf</at> mail quarterly")
	waitSeen(ctx, t, cb, "Open a 1:1 chat with me")
	time.Sleep(200 * time.Millisecond)
	seen := cb.Seen()
	if len(seen) != 1 || strings.Contains(texts(seen), "Quarterly") {
		t.Fatalf("want only the hand-off in the chat, Bob sees:\n%s", texts(seen))
	}
}

// signIn1to1 signs Alice in through her personal chat, so that a group-chat request needs no
// sign-in card.
func (h *ssoHarness) signIn1to1(t *testing.T) {
	t.Helper()
	h.signIn(t, h.client(alice))
}
