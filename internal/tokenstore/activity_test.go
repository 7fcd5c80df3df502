package tokenstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// A user's activity is theirs alone, newest first, bounded by the window asked for, sealed at
// rest, and gone once its time to live has passed.
func TestActivityIsPerUserNewestFirstAndExpires(t *testing.T) {
	e := newEnv(t)
	clk := newClock()
	s := e.store(func(o *tokenstore.Options) { o.Now = clk.Now })
	now := clk.Now()
	for i, r := range []string{"a-old", "a-mid", "a-new"} {
		if err := s.AddActivity(ctx, alice, now.Add(time.Duration(i-3)*time.Hour), []byte(`{"r":"`+r+`"}`), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddActivity(ctx, bob, now, []byte(`{"r":"b-only"}`), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got := func(u tokenstore.UserKey, since time.Time, max int) string {
		t.Helper()
		recs, err := s.Activity(ctx, u, since, max)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, string(r))
		}
		return strings.Join(out, ",")
	}
	if g := got(alice, now.Add(-24*time.Hour), 0); g != `{"r":"a-new"},{"r":"a-mid"},{"r":"a-old"}` {
		t.Fatalf("Alice's activity = %s", g)
	}
	if g := got(alice, now.Add(-150*time.Minute), 0); g != `{"r":"a-new"},{"r":"a-mid"}` {
		t.Fatalf("since 2.5 h ago = %s", g)
	}
	if g := got(alice, now.Add(-24*time.Hour), 1); g != `{"r":"a-new"}` {
		t.Fatalf("max 1 = %s", g)
	}
	if g := got(bob, now.Add(-24*time.Hour), 0); g != `{"r":"b-only"}` {
		t.Fatalf("Bob's activity = %s", g)
	}
	for _, row := range e.rows("users") {
		if d, _ := row["Data"].(string); strings.Contains(row["RowKey"].(string), "act|") && (d == "" || strings.Contains(d, "a-new")) {
			t.Fatalf("activity row not sealed: %v", row)
		}
	}
	if err := s.AddActivity(ctx, tokenstore.UserKey{TenantID: "x", ObjectID: "y"}, now, []byte(`{}`), time.Hour); err == nil {
		t.Fatal("an activity without a valid user was stored")
	}
	clk.Advance(25 * time.Hour)
	if g := got(alice, now.Add(-48*time.Hour), 0); g != "" {
		t.Fatalf("expired activity still listed: %s", g)
	}
}
