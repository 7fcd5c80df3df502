package logcheck

import (
	"fmt"
	"strings"
	"testing"
)

func TestFindsWholeAndPartialSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6ImJvdCJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1hYmM"
	secrets := []Secret{
		{"channel token", jwt},
		{"refresh token", "rt-Qm9ic1JlZnJlc2hUb2tlbjEyMzQ1"},
		{"magic code", "482913"},
		{"client secret", "test-secret"},
	}
	x := newIndex(secrets)
	cases := []struct {
		name string
		log  string
		want []string
	}{
		{"whole JWT in a header value", `{"authz":"Bearer ` + jwt + `"}`, []string{"channel token"}},
		{"JWT signature alone", `sig=` + strings.Split(jwt, ".")[2], []string{"channel token"}},
		{"JWT payload alone", `"p":"` + strings.Split(jwt, ".")[1] + `"`, []string{"channel token"}},
		{"JWT header only is not a leak", `"h":"eyJhbGciOiJSUzI1NiJ9"`, nil},
		{"opaque token inside a URL", `url=https://x/cb?rt=rt-Qm9ic1JlZnJlc2hUb2tlbjEyMzQ1&x=1`, []string{"refresh token"}},
		{"magic code as a word", `"state":"482913"`, []string{"magic code"}},
		{"magic code inside a longer number is not it", `"n":14829130`, nil},
		{"client secret", `secret test-secret`, []string{"client secret"}},
		{"clean log", `{"msg":"activity","status":200,"latency_ms":1.25}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range x.find(tc.log) {
				got = append(got, s.Kind)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("found %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIssueIgnoresShortValuesAndRedactHidesTheValue(t *testing.T) {
	before := len(Issued())
	Issue("x", "12345")
	if len(Issued()) != before {
		t.Fatal("a five-character value was recorded")
	}
	if r := redact("rt-Qm9ic1JlZnJlc2hUb2tlbjEyMzQ1"); strings.Contains(r, "Qm9ic1JlZnJl") {
		t.Fatalf("redact shows the secret: %s", r)
	}
}

// BenchmarkFind is the cost of the end-of-test check with a large record and log: 5,000
// JWT-sized secrets and a 1 MB log.
func BenchmarkFind(b *testing.B) {
	var secrets []Secret
	for i := range 5000 {
		v := fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.%s.%s", strings.Repeat(fmt.Sprintf("p%07d", i), 60), strings.Repeat(fmt.Sprintf("s%07d", i), 40))
		secrets = append(secrets, Secret{"token", v})
	}
	line := `{"time":"2026-12-01T16:43:14.123Z","level":"INFO","msg":"activity","status":200,"latency_ms":1.25,"id":"f3c1","user":"9f86d081884c7d65"}` + "\n"
	log := strings.Repeat(line, (1<<20)/len(line))
	b.ResetTimer()
	for b.Loop() {
		if len(newIndex(secrets).find(log)) != 0 {
			b.Fatal("false positive")
		}
	}
}
