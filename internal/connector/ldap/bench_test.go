package ldap_test

import (
	"context"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/ldap"
	"github.com/onbehalf/onbehalf/internal/testenv/slapd"
)

// A warm `directory` lookup: the user's mapping is remembered and a bound connection is
// pooled, so one lookup is one proxied search on an open TLS connection. Reports the
// connections opened per 100 lookups (the pool's reuse).
//
//	go test -run '^$' -bench WarmDirectory -benchtime 2000x ./internal/connector/ldap/
func BenchmarkWarmDirectoryLookup(b *testing.B) {
	srv := slapd.Start(b)
	d := open(b, config(srv))
	ctx := context.Background()
	id := ldap.Identity{UPN: "bob@contoso.example"}
	lookup := func() {
		dn, err := d.MapUser(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		r, err := d.People(ctx, dn, "alice")
		if err != nil || len(r.Entries) != 1 {
			b.Fatalf("%v %+v", err, r)
		}
	}
	lookup() // warm: root DSE, mapping, one bound connection
	before := d.ConnectionsOpened()
	b.ResetTimer()
	for range b.N {
		lookup()
	}
	b.StopTimer()
	b.ReportMetric(float64(d.ConnectionsOpened()-before)*100/float64(b.N), "conns/100lookups")
}

// The same with concurrent users of one Directory: the pool bounds the connections.
func BenchmarkWarmDirectoryLookupParallel(b *testing.B) {
	srv := slapd.Start(b)
	d := open(b, config(srv))
	ctx := context.Background()
	id := ldap.Identity{UPN: "bob@contoso.example"}
	dn, err := d.MapUser(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	before := d.ConnectionsOpened()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.MapUser(ctx, id); err != nil {
				b.Error(err)
				return
			}
			if _, err := d.People(ctx, dn, "alice"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(d.ConnectionsOpened()-before)*100/float64(b.N), "conns/100lookups")
}

// For comparison, a cold lookup: a new connector each time, so TLS, bind, the root DSE check,
// the mapping search and the proxied search are all paid again.
func BenchmarkColdDirectoryLookup(b *testing.B) {
	srv := slapd.Start(b)
	ctx := context.Background()
	id := ldap.Identity{UPN: "bob@contoso.example"}
	opened := int64(0)
	b.ResetTimer()
	for range b.N {
		d, err := ldap.Open(config(srv))
		if err != nil {
			b.Fatal(err)
		}
		dn, err := d.MapUser(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.People(ctx, dn, "alice"); err != nil {
			b.Fatal(err)
		}
		opened += d.ConnectionsOpened()
		d.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(opened)*100/float64(b.N), "conns/100lookups")
}
