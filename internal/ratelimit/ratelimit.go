// Package ratelimit bounds how often one user may make the bot call back ends, so a single
// user cannot spend a back end's quota (Graph's, Atlassian's, the model's) for everyone.
//
// Limits are kept in the memory of one instance: a token bucket per user, bounded in number,
// with no storage round trip on the request path. With n instances a user's effective limit is
// at most n times the configured one; the back ends' own per-user throttling remains the
// outer bound (docs/reliability.md says why this trade was made).
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limiter is a token bucket per key: each key may spend Burst requests at once and regains
// PerMinute of them per minute. The zero value is not usable; set PerMinute and Burst. Safe
// for concurrent use.
//
// Configuration example (the defaults of USER_RATE_LIMIT and USER_RATE_BURST):
//
//	l := &ratelimit.Limiter{PerMinute: 20, Burst: 10, Now: time.Now}
type Limiter struct {
	// PerMinute is how many requests a key regains per minute; 0 or less turns limiting off.
	PerMinute float64
	// Burst is how many requests a key may make at once (at least 1).
	Burst int
	// MaxKeys bounds the number of keys remembered (default 100,000). When full, keys whose
	// bucket has refilled are dropped first (they lose nothing), then the least recently
	// used: memory stays bounded whatever the number of users.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Allow spends one request of key. It reports whether the request may go on and, when not,
// how long until one more is allowed (rounded up to a whole second).
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.PerMinute <= 0 {
		return true, 0
	}
	burst := float64(max(l.Burst, 1))
	rate := l.PerMinute / 60 // per second
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	b, ok := l.buckets[key]
	if !ok {
		l.makeRoom(now, burst, rate)
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1-b.tokens)/rate)) * time.Second
	return false, wait
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// makeRoom keeps the map under MaxKeys: refilled buckets go first, then the least recently
// used one. Called with mu held, only when a new key arrives at a full map.
func (l *Limiter) makeRoom(now time.Time, burst, rate float64) {
	limit := l.MaxKeys
	if limit <= 0 {
		limit = 100000
	}
	if len(l.buckets) < limit {
		return
	}
	full := time.Duration(burst / rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	for len(l.buckets) >= limit {
		var oldest string
		var at time.Time
		for k, b := range l.buckets {
			if oldest == "" || b.last.Before(at) {
				oldest, at = k, b.last
			}
		}
		delete(l.buckets, oldest)
	}
}
