package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

// benchSay sends text from c b.N times; each request returns after the bot's reply reached
// the connector stand-in.
func benchSay(b *testing.B, c *teamsclient.Client, text string) {
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if r, err := c.Say(ctx, text); err != nil || r.Status != http.StatusOK {
			b.Fatalf("%v %+v", err, r)
		}
	}
}

// BenchmarkEchoPath is the Foundation's path: token validation, routing, a text reply.
func BenchmarkEchoPath(b *testing.B) {
	h := newSSOHarness(b)
	benchSay(b, h.client(alice), "help")
}

// BenchmarkGraphWithCachedOBOToken is a Graph command whose OBO token is already stored:
// token validation, token-store read (L1), a Graph call, an Adaptive Card reply.
func BenchmarkGraphWithCachedOBOToken(b *testing.B) {
	h := newSSOHarness(b)
	c := h.client(alice)
	ctx := context.Background()
	c.Say(ctx, "whoami")
	time.Sleep(50 * time.Millisecond)
	if res, err := c.ExchangeSSO(ctx, 1, withApp(alice0())); err != nil || res[0].Status != http.StatusOK {
		b.Fatalf("sign-in: %v %+v", err, res)
	}
	benchSay(b, c, "whoami")
	b.ReportMetric(float64(h.table.count())/float64(b.N), "table-requests/op")
}
