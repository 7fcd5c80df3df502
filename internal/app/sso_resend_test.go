package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// The channel sends an activity again when the bot failed it. A question the first attempt
// parked before failing (here: the sign-in card could not be delivered) is not an error the
// second time: the user gets the card, and the question waits once.
func TestSSOResentQuestionAfterAFailedCardGetsTheCard(t *testing.T) {
	h := newSSOHarness(t)
	c := h.client(alice)
	ctx := ctxTimeout(t, 60*time.Second)
	busy := channel.Fault{Status: http.StatusServiceUnavailable}
	h.st.Channel.FailNext(busy, busy, busy, busy, busy)
	act := c.Activity("message")
	act["text"] = "whoami"
	if r, err := c.Post(ctx, act); err != nil || r.Status < 500 {
		t.Fatalf("first attempt, the card undeliverable: %v %+v, want a 5xx so that the channel sends it again", err, r)
	}
	r, err := c.Post(ctx, act) // the same activity, as the channel resends it
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("resent activity: %v %+v\n%s", err, r, h.logs.String())
	}
	if _, err := c.LastOAuthCard(); err != nil {
		t.Fatalf("no sign-in card after the resend: %v\n%s", err, texts(c.Replies()))
	}
}
