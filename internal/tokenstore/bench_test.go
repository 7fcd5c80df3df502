package tokenstore_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

func counting() (*countingTransport, func(*tokenstore.Options)) {
	ct := &countingTransport{next: http.DefaultTransport}
	return ct, func(o *tokenstore.Options) { o.HTTPClient = &http.Client{Transport: ct} }
}

// Table round trips are part of the contract callers plan around: a warm read costs none, a
// cold read one, a write one, and a refresh three (read, lease, write).
func TestTableRoundTrips(t *testing.T) {
	e := newEnv(t)
	ct, withCount := counting()
	s := e.store(withCount)
	measure := func(name string, want int64, f func() error) {
		t.Helper()
		before := ct.n.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := ct.n.Load() - before
		t.Logf("%-34s %d Table round trip(s)", name, got)
		if got != want {
			t.Errorf("%s: %d round trips, want %d", name, got, want)
		}
	}
	measure("put token", 1, func() error { return s.PutToken(ctx, alice, jira, sampleToken("a")) })
	measure("get token, warm (L1)", 0, func() error { _, err := s.GetToken(ctx, alice, jira); return err })
	cold := e.store(withCount)
	measure("get token, cold", 1, func() error { _, err := cold.GetToken(ctx, alice, jira); return err })
	measure("fresh token, warm and valid", 0, func() error {
		_, err := cold.FreshToken(ctx, alice, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
			t.Error("refresh called for a valid token")
			return cur, nil
		})
		return err
	})
	if err := s.PutToken(ctx, bob, jira, tokenstore.Token{AccessToken: "x", RefreshToken: "r", Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	measure("fresh token, expired: refresh", 3, func() error {
		_, err := cold.FreshToken(ctx, bob, jira, time.Minute, func(_ context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
			return tokenstore.Token{AccessToken: "y", RefreshToken: "r2", Expiry: time.Now().Add(time.Hour)}, nil
		})
		return err
	})
	measure("forget user (1 row)", 2, func() error { _, err := s.ForgetUser(ctx, bob); return err })
}

func BenchmarkPutToken(b *testing.B) {
	e := newEnv(b)
	ct, withCount := counting()
	s := e.store(withCount)
	tok := sampleToken("bench")
	ct.n.Store(0)
	for b.Loop() {
		if err := s.PutToken(ctx, alice, jira, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ct.n.Load())/float64(b.N), "roundtrips/op")
}

func BenchmarkGetTokenCold(b *testing.B) {
	e := newEnv(b)
	ct, withCount := counting()
	s := e.store(withCount, noL1)
	if err := s.PutToken(ctx, alice, jira, sampleToken("bench")); err != nil {
		b.Fatal(err)
	}
	ct.n.Store(0)
	for b.Loop() {
		if _, err := s.GetToken(ctx, alice, jira); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ct.n.Load())/float64(b.N), "roundtrips/op")
}

func BenchmarkGetTokenWarm(b *testing.B) {
	e := newEnv(b)
	ct, withCount := counting()
	s := e.store(withCount)
	if err := s.PutToken(ctx, alice, jira, sampleToken("bench")); err != nil {
		b.Fatal(err)
	}
	if _, err := s.GetToken(ctx, alice, jira); err != nil {
		b.Fatal(err)
	}
	ct.n.Store(0)
	for b.Loop() {
		if _, err := s.GetToken(ctx, alice, jira); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ct.n.Load())/float64(b.N), "roundtrips/op")
}
