package secrets_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/secrets"
	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newVault(t *testing.T) (*keyvault.Server, *secrets.Vault, *clock) {
	t.Helper()
	kv := keyvault.Start(t, keyvault.Options{})
	clk := &clock{t: time.Now()}
	v, err := secrets.NewVault(secrets.VaultOptions{VaultURL: kv.URL(), Credential: kv.Credential(), HTTPClient: kv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return kv, v, clk
}

func TestVaultReadsCachesAndPicksUpRotation(t *testing.T) {
	kv, v, clk := newVault(t)
	kv.SetSecret("atlassian-client-secret", "first")
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := v.Secret(ctx, "atlassian-client-secret"); err != nil || s != "first" {
				t.Errorf("got %q, %v", s, err)
			}
		}()
	}
	wg.Wait()
	before := kv.Requests()
	if _, err := v.Secret(ctx, "atlassian-client-secret"); err != nil {
		t.Fatal(err)
	}
	if kv.Requests() != before {
		t.Fatal("a cached secret was fetched again within the TTL")
	}

	kv.SetSecret("atlassian-client-secret", "second")
	clk.Advance(6 * time.Minute)
	if s, _ := v.Secret(ctx, "atlassian-client-secret"); s != "second" {
		t.Fatalf("after the TTL got %q, want the rotated secret", s)
	}
}

func TestVaultOutageAndMissingSecrets(t *testing.T) {
	kv, v, clk := newVault(t)
	kv.SetSecret("github-client-secret", "gh")
	ctx := context.Background()
	if _, err := v.Secret(ctx, "no-such-secret"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing secret: err = %v, want ErrNotFound", err)
	}
	if _, err := v.Secret(ctx, "github-client-secret"); err != nil {
		t.Fatal(err)
	}
	kv.SetDown(true)
	clk.Advance(10 * time.Minute)
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if s, err := v.Secret(short, "github-client-secret"); err != nil || s != "gh" {
		t.Fatalf("during an outage got %q, %v; want the last value", s, err)
	}
	kv.SetDown(false)
	kv.DeleteSecret("github-client-secret")
	clk.Advance(10 * time.Minute)
	if _, err := v.Secret(ctx, "github-client-secret"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("deleted secret: err = %v, want ErrNotFound (never the cached value)", err)
	}
}

func TestWithOverrides(t *testing.T) {
	f := secrets.WithOverrides(map[string]string{"atlassian-client-secret": "dev"}, nil)
	if s, err := f(context.Background(), "atlassian-client-secret"); err != nil || s != "dev" {
		t.Fatalf("got %q, %v", s, err)
	}
	if _, err := f(context.Background(), "other"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}
