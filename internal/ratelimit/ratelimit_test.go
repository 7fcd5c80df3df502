package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/ratelimit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }
func allowN(l *ratelimit.Limiter, key string, n int) (ok int) {
	for range n {
		if a, _ := l.Allow(key); a {
			ok++
		}
	}
	return ok
}

// A user may spend the burst at once, is then told how long to wait, and regains requests
// at the configured rate; another user is never affected.
func TestBurstThenRefill(t *testing.T) {
	c := newClock()
	l := &ratelimit.Limiter{PerMinute: 6, Burst: 3, Now: c.now}
	if got := allowN(l, "alice", 3); got != 3 {
		t.Fatalf("burst: %d of 3 allowed", got)
	}
	ok, wait := l.Allow("alice")
	if ok || wait != 10*time.Second {
		t.Fatalf("over the burst: allowed=%v wait=%v, want refused for 10s (6 per minute)", ok, wait)
	}
	if got := allowN(l, "bob", 3); got != 3 {
		t.Fatalf("another user is limited too: %d of 3 allowed", got)
	}
	c.add(9 * time.Second)
	if ok, wait := l.Allow("alice"); ok || wait != time.Second {
		t.Fatalf("after 9s: allowed=%v wait=%v, want refused for 1s more", ok, wait)
	}
	c.add(time.Second)
	if ok, _ := l.Allow("alice"); !ok {
		t.Fatal("after 10s one request is allowed again")
	}
	c.add(time.Hour)
	if got := allowN(l, "alice", 5); got != 3 {
		t.Fatalf("after an hour the bucket holds the burst, not more: %d allowed", got)
	}
}

// Refused requests do not push the wait further out: hammering does not lock a user out.
func TestRefusalsCostNothing(t *testing.T) {
	c := newClock()
	l := &ratelimit.Limiter{PerMinute: 60, Burst: 1, Now: c.now}
	l.Allow("u")
	for range 100 {
		l.Allow("u")
	}
	c.add(time.Second)
	if ok, _ := l.Allow("u"); !ok {
		t.Fatal("one second after the last allowed request, at 60 per minute, one more is allowed")
	}
}

// Zero PerMinute (or a nil limiter) turns limiting off.
func TestOff(t *testing.T) {
	var nilL *ratelimit.Limiter
	if ok, _ := nilL.Allow("u"); !ok {
		t.Fatal("nil limiter refuses")
	}
	l := &ratelimit.Limiter{PerMinute: 0, Burst: 1}
	if got := allowN(l, "u", 1000); got != 1000 {
		t.Fatalf("off: %d of 1000 allowed", got)
	}
}

// However many users arrive, memory stays bounded, and a limited user who is still within
// their window is remembered over idle ones.
func TestMemoryIsBounded(t *testing.T) {
	c := newClock()
	l := &ratelimit.Limiter{PerMinute: 1, Burst: 1, MaxKeys: 100, Now: c.now}
	l.Allow("limited")
	for i := range 10000 {
		c.add(time.Millisecond)
		l.Allow(fmt.Sprintf("user-%d", i))
		if l.Len() > 100 {
			t.Fatalf("%d keys remembered, bound is 100", l.Len())
		}
	}
	c.add(2 * time.Minute) // every bucket has refilled
	l.Allow("limited")
	l.Allow("fresh")
	if l.Len() > 3 {
		t.Fatalf("refilled buckets are dropped first when room is needed: %d keys left", l.Len())
	}
}
