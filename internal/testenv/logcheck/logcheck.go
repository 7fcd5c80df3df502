// Package logcheck finds secrets where they must not be: in captured logs, in the replies the
// bot sends users, and in the rows it keeps in Table Storage. The stand-ins report every
// token, code and secret they hand out (Issue); a test harness registers Watch for the log it
// captures (WatchReplies, WatchTables for the others), and the test fails at its end if any
// of them — or a distinctive part of one — was written, or if anything there has the shape
// of a secret nobody recorded (Shapes: JWTs, bearer credentials, OAuth credential parameters,
// the providers' opaque token formats). Main does the same for a test binary's default
// slog output.
//
// The record is process-wide and never shrinks: a secret issued by an earlier test is as
// much a leak in this test's log as one issued by this test. A JWT is looked for by its
// payload and signature segments (either alone identifies the token); other values whole.
package logcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Secret is one issued value and what it is ("channel token", "magic code", …).
type Secret struct {
	Kind  string
	Value string
}

var (
	mu     sync.Mutex
	issued []Secret
)

// minLen is the shortest value recorded: shorter ones (none are issued) would match by chance.
const minLen = 6

// Issue records a secret a stand-in handed out. Values shorter than six characters are
// ignored.
func Issue(kind, value string) {
	if len(value) < minLen {
		return
	}
	mu.Lock()
	issued = append(issued, Secret{Kind: kind, Value: value})
	mu.Unlock()
}

// Issued returns every secret recorded so far.
func Issued() []Secret {
	mu.Lock()
	defer mu.Unlock()
	return append([]Secret(nil), issued...)
}

// Watch makes t fail at its end (t.Cleanup) when the log logs returns then contains an
// issued secret or a secret-shaped value (Find). Register it right after the log sink is created, so it runs after every
// other cleanup of the harness (servers closed, background work finished).
func Watch(t testing.TB, logs func() string) {
	t.Helper()
	t.Cleanup(func() {
		for _, f := range Find(logs()) {
			t.Errorf("logcheck: found in the log: %s %s", f.Kind, redact(f.Value))
		}
	})
}

// Find returns the issued secrets that appear in log, each once, followed by the
// secret-shaped values (Shapes) that are not one of them.
func Find(log string) []Secret {
	return findWith(newIndex(Issued()), log)
}

func findWith(idx *index, log string) []Secret {
	out := idx.find(log)
	for _, s := range Shapes(log) {
		if len(idx.find(s.Value)) == 0 {
			out = append(out, s)
		}
	}
	return out
}

// redact shows enough of a secret to find it in the test's own records, not to use it.
func redact(v string) string {
	if len(v) <= 8 {
		return fmt.Sprintf("%d characters", len(v))
	}
	return v[:4] + "…" + fmt.Sprintf(" (%d characters)", len(v))
}

// needle is a string whose presence in a log betrays a secret.
type needle struct {
	s      string
	secret int
}

// prefixLen splits needles: long ones are found anywhere (by a map keyed on their first
// prefixLen bytes), short ones (numeric codes) only as a whole word, where a chance match is
// unlikely.
const prefixLen = 16

type index struct {
	secrets []Secret
	long    map[string][]needle
	short   map[string]int
}

func newIndex(secrets []Secret) *index {
	x := &index{secrets: secrets, long: map[string][]needle{}, short: map[string]int{}}
	for i, s := range secrets {
		for _, n := range needles(s.Value) {
			if len(n) >= prefixLen {
				x.long[n[:prefixLen]] = append(x.long[n[:prefixLen]], needle{s: n, secret: i})
			} else {
				x.short[n] = i
			}
		}
	}
	return x
}

// needles are the parts of v to look for: a JWT's payload and signature (its header is
// shared by every token of one signer), otherwise v's word-character runs of at least minLen.
func needles(v string) []string {
	if parts := strings.Split(v, "."); len(parts) == 3 && strings.HasPrefix(parts[0], "eyJ") {
		var out []string
		for _, p := range parts[1:] {
			if len(p) >= minLen {
				out = append(out, p)
			}
		}
		return out
	}
	var out []string
	for _, w := range words(v) {
		if len(w) >= minLen {
			out = append(out, w)
		}
	}
	return out
}

// isWord reports the characters tokens and codes are made of (base64, base64url, digits).
func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '+' || c == '/' || c == '~'
}

func words(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isWord(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
	}
	return out
}

func (x *index) find(log string) []Secret {
	hit := map[int]bool{}
	if len(x.long) > 0 {
		for i := 0; i+prefixLen <= len(log); i++ {
			cands, ok := x.long[log[i:i+prefixLen]]
			if !ok {
				continue
			}
			for _, n := range cands {
				if strings.HasPrefix(log[i:], n.s) {
					hit[n.secret] = true
				}
			}
		}
	}
	if len(x.short) > 0 {
		for _, w := range words(log) {
			if i, ok := x.short[w]; ok {
				hit[i] = true
			}
		}
	}
	var out []Secret
	seen := map[string]bool{}
	for i := range x.secrets {
		if hit[i] && !seen[x.secrets[i].Value] {
			seen[x.secrets[i].Value] = true
			out = append(out, x.secrets[i])
		}
	}
	return out
}
