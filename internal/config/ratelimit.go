package config

import "strconv"

// RateLimit bounds how often one user makes the bot call back ends (commands, assistant turns,
// card actions; help and other local commands are never limited). Kept per instance.
//
//	USER_RATE_LIMIT = 20   # requests a user regains per minute; 0 turns the limit off
//	USER_RATE_BURST = 10   # requests a user may make at once
type RateLimit struct {
	// PerMinute is USER_RATE_LIMIT (default 20; 0 off).
	PerMinute int
	// Burst is USER_RATE_BURST (default 10).
	Burst int
}

// Defaults of the per-user rate limit.
const (
	DefaultUserRateLimit = 20
	DefaultUserRateBurst = 10
)

func (r *reader) rateLimit(c *Config) {
	c.RateLimit.PerMinute = r.count("USER_RATE_LIMIT", DefaultUserRateLimit, 0, 100000)
	c.RateLimit.Burst = r.count("USER_RATE_BURST", DefaultUserRateBurst, 1, 100000)
}

// count reads a whole number between lo and hi, def when unset.
func (r *reader) count(name string, def, lo, hi int) int {
	v := r.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, "must be a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
		return def
	}
	return n
}
