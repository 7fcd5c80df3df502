package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

// Atlassian refresh tokens lapse after 90 days unused. Ada keeps talking to the bot (never
// about Jira) for four months: each time her refresh token has gone unused for 30 days, her
// next message has it refreshed in the background — once, although both instances see her
// messages — and the rotated token is stored, so Jira still answers her on day 125. Bo, linked
// the same day but silent, is not refreshed, and his connection lapses as Atlassian says.
func TestActiveUsersConnectionIsKeptAliveInTheBackground(t *testing.T) {
	e := newAtlEnv(t, 2)
	ada, bo := newChatUser("ada"), newChatUser("bo")
	e.link(t, ada, standin.Alice, false)
	e.say(t, 0, ada, "jira site "+standin.AcmeSite+" jira PROJ-1")
	e.link(t, bo, standin.Bob, true)
	ctx := context.Background()
	wait := func() {
		for _, a := range e.apps {
			a.Wait(ctx)
		}
	}
	wait()
	base := e.atl.Refreshes(standin.Alice)

	// 29 days: nothing is due yet.
	e.clk.Advance(29 * 24 * time.Hour)
	e.say(t, 0, ada, "help")
	wait()
	if n := e.atl.Refreshes(standin.Alice) - base; n != 0 {
		t.Fatalf("refreshed %d times before 30 days unused", n)
	}

	day := 29
	for day < 120 {
		e.clk.Advance(2 * 24 * time.Hour) // 31 days unused since the last refresh
		day += 2
		before := e.atl.Refreshes(standin.Alice)
		// Both instances get messages from her at once.
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); e.say(t, i, ada, "help") }()
		}
		wg.Wait()
		wait()
		if n := e.atl.Refreshes(standin.Alice) - before; n != 1 {
			t.Fatalf("day %d: %d refreshes for one stale connection, want 1", day, n)
		}
		// A further message the same hour does not look again.
		e.say(t, 0, ada, "help")
		wait()
		if n := e.atl.Refreshes(standin.Alice) - before; n != 1 {
			t.Fatalf("day %d: %d refreshes after another message", day, n)
		}
		renewed := e.clk.Now().Add(90 * 24 * time.Hour).UTC().Format("2 Jan 2006")
		if d := dump(e.say(t, 0, ada, "connections")); !strings.Contains(d, "Stops working on "+renewed) {
			t.Fatalf("day %d: the card does not show the renewed lapse %s:\n%s", day, renewed, d)
		}
		e.clk.Advance(29 * 24 * time.Hour)
		day += 29
	}
	if e.atl.Refreshes(standin.Bob) != 0 {
		t.Fatal("a silent user's connection was refreshed")
	}

	// Day 124: Ada asks about Jira and it answers; Bo's connection lapsed at 90 days.
	got := dump(e.say(t, 0, ada, "jira PROJ-1"))
	if !strings.Contains(got, "PROJ-1") || strings.Contains(got, "connect") && strings.Contains(got, "again") {
		t.Fatalf("day %d: Ada's Jira after months without using it:\n%s", day, got)
	}
	got = dump(e.say(t, 0, bo, "my jira issues"))
	if !strings.Contains(strings.ToLower(got), "connect") {
		t.Fatalf("day %d: Bo's lapsed connection still answers:\n%s", day, got)
	}
}
