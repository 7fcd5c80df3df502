package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/seal"
	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
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

func newKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

type fixture struct {
	kv    *keyvault.Server
	ring  *keyring.Vault
	clock *clock
	logs  *bytes.Buffer
}

func setup(t *testing.T) *fixture {
	t.Helper()
	c := &clock{t: time.Now()}
	kv := keyvault.Start(t, keyvault.Options{Now: c.Now})
	f := &fixture{kv: kv, clock: c, logs: &bytes.Buffer{}}
	logcheck.Watch(t, f.logs.String)
	ring, err := keyring.NewVault(keyring.VaultOptions{
		VaultURL:   kv.URL(),
		Credential: kv.Credential(),
		HTTPClient: kv.Client(),
		Retry:      policy.RetryOptions{MaxRetries: -1},
		CacheTTL:   time.Minute,
		Logger:     slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:        f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ring = ring
	return f
}

func sealOpen(t *testing.T, w, r seal.Key) error {
	t.Helper()
	b := seal.Binding{Table: "t", Partition: "p", Row: "r"}
	s, err := seal.Seal(w, b, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = seal.Open(r, b, s)
	return err
}

func TestCurrentIsNewestEnabledAndOldVersionsStillOpen(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	v1 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())

	k1, err := f.ring.Current(ctx)
	if err != nil || k1.Version() != v1 {
		t.Fatalf("Current = %q, %v; want %s", k1.Version(), err, v1)
	}
	f.clock.Advance(time.Second)
	v2 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	if k, _ := f.ring.Current(ctx); k.Version() != v1 {
		t.Fatalf("within the cache TTL Current = %s, want the cached %s", k.Version(), v1)
	}
	f.clock.Advance(2 * time.Minute)
	k2, err := f.ring.Current(ctx)
	if err != nil || k2.Version() != v2 {
		t.Fatalf("after TTL Current = %q, %v; want %s", k2.Version(), err, v2)
	}
	old, err := f.ring.Version(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealOpen(t, k1, old); err != nil {
		t.Fatalf("v1 from Version does not open v1 values: %v", err)
	}

	// A newer but disabled version is skipped for writes.
	f.clock.Advance(time.Second)
	v3 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	f.kv.SetEnabled(keyring.DefaultSecretName, v3, false)
	f.clock.Advance(2 * time.Minute)
	if k, _ := f.ring.Current(ctx); k.Version() != v2 {
		t.Fatalf("Current = %s, want %s (v3 is disabled)", k.Version(), v2)
	}
}

func TestUnusableVersionsAreKeyUnavailable(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	v1 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	bad := f.kv.SetSecret(keyring.DefaultSecretName, "not-a-key")
	short := f.kv.SetSecret(keyring.DefaultSecretName, base64.StdEncoding.EncodeToString(make([]byte, 16)))
	if _, err := f.ring.Version(ctx, v1); err != nil {
		t.Fatal(err)
	}
	f.kv.SetEnabled(keyring.DefaultSecretName, v1, false)
	f.clock.Advance(2 * time.Minute)

	for name, ver := range map[string]string{
		"disabled": v1, "unknown": "0123456789abcdef0123456789abcdef", "malformed": bad, "short": short, "empty": "",
	} {
		_, err := f.ring.Version(ctx, ver)
		if !errors.Is(err, keyring.ErrKeyUnavailable) {
			t.Errorf("%s: err = %v, want ErrKeyUnavailable", name, err)
		}
	}

	f.kv.DeleteSecret(keyring.DefaultSecretName)
	if _, err := f.ring.Current(ctx); !errors.Is(err, keyring.ErrKeyUnavailable) {
		t.Errorf("deleted secret: Current err = %v, want ErrKeyUnavailable", err)
	}
}

func TestVaultDownUsesCachedKeysAndLogsOncePerInterval(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	v1 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	cur, err := f.ring.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.kv.SetDown(true)
	for i := 0; i < 5; i++ {
		f.clock.Advance(2 * time.Minute) // past TTL and log interval each time
		if k, err := f.ring.Current(ctx); err != nil || k.Version() != v1 {
			t.Fatalf("down, round %d: Current = %q, %v", i, k.Version(), err)
		}
		k, err := f.ring.Version(ctx, v1)
		if err != nil {
			t.Fatalf("down, round %d: Version = %v", i, err)
		}
		if err := sealOpen(t, cur, k); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(f.logs.String(), "key vault unreachable"); n != 5 {
		t.Errorf("logged %d warnings over 5 intervals, want 5:\n%s", n, f.logs)
	}
	f.logs.Reset()
	for i := 0; i < 20; i++ {
		f.clock.Advance(11 * time.Second) // past the failure back-off, within one log interval
		if _, err := f.ring.Version(ctx, v1); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(f.logs.String(), "key vault unreachable"); n > 4 {
		t.Errorf("logged %d warnings in ~4 intervals", n)
	}
	if strings.Contains(f.logs.String(), "kv-") {
		t.Error("log contains a bearer token")
	}
	// A version never fetched cannot be served from cache.
	if _, err := f.ring.Version(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Errorf("uncached version while down: err = %v, want ErrVaultUnavailable", err)
	}
	f.kv.SetDown(false)
	v2 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	f.clock.Advance(2 * time.Minute)
	if k, err := f.ring.Current(ctx); err != nil || k.Version() != v2 {
		t.Fatalf("after recovery Current = %q, %v; want %s", k.Version(), err, v2)
	}
}

func TestColdStartWithVaultDownFails(t *testing.T) {
	f := setup(t)
	f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	f.kv.SetDown(true)
	if _, err := f.ring.Current(context.Background()); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Fatalf("err = %v, want ErrVaultUnavailable", err)
	}
}

// A process that starts while the vault is down fails its requests at once after the first
// attempt, instead of each waiting out the client's retries, and fetches the key once the
// vault is back.
func TestColdStartWithVaultDownFailsFastThenRecovers(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	v1 := f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	f.kv.SetDown(true)
	if _, err := f.ring.Current(ctx); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Fatalf("err = %v, want ErrVaultUnavailable", err)
	}
	asked := f.kv.Requests()
	f.clock.Advance(9 * time.Second)
	if _, err := f.ring.Current(ctx); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Fatalf("Current within the back-off: err = %v, want ErrVaultUnavailable", err)
	}
	if _, err := f.ring.Version(ctx, v1); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Fatalf("Version within the back-off: err = %v, want ErrVaultUnavailable", err)
	}
	if n := f.kv.Requests() - asked; n != 0 {
		t.Fatalf("%d requests reached the vault within the back-off, want 0", n)
	}

	// Past the back-off the vault is asked again: still down, then back.
	f.clock.Advance(2 * time.Second)
	if _, err := f.ring.Version(ctx, v1); !errors.Is(err, keyring.ErrVaultUnavailable) {
		t.Fatalf("err = %v, want ErrVaultUnavailable", err)
	}
	if f.kv.Requests() == asked {
		t.Fatal("the vault was not asked again after the back-off")
	}
	f.kv.SetDown(false)
	f.clock.Advance(11 * time.Second)
	if k, err := f.ring.Current(ctx); err != nil || k.Version() != v1 {
		t.Fatalf("after the vault came back: Current = %q, %v; want %s", k.Version(), err, v1)
	}
	if k, err := f.ring.Version(ctx, v1); err != nil || k.Version() != v1 {
		t.Fatalf("after the vault came back: Version = %q, %v", k.Version(), err)
	}
}

func TestDevKey(t *testing.T) {
	good := newKey()
	if _, err := keyring.NewDev(good, true); err == nil || !strings.Contains(err.Error(), "refused when running in Azure") {
		t.Fatalf("dev key in Azure: err = %v", err)
	}
	for _, bad := range []string{"", "!!!", base64.StdEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := keyring.NewDev(bad, false); err == nil {
			t.Errorf("NewDev(%q) accepted", bad)
		}
	}
	a, err := keyring.NewDev(good, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := keyring.NewDev(newKey(), false)
	ka, _ := a.Current(context.Background())
	kb, _ := b.Current(context.Background())
	if ka.Version() == kb.Version() {
		t.Fatal("two dev keys share a version label")
	}
	if _, err := a.Version(context.Background(), kb.Version()); !errors.Is(err, keyring.ErrKeyUnavailable) {
		t.Fatalf("other dev key's version: err = %v", err)
	}
	if got, _ := a.Version(context.Background(), ka.Version()); got.Version() != ka.Version() {
		t.Fatal("own version not found")
	}
}

// Versions set within one second tie on Key Vault's whole-second "created" time, and the list
// is not in creation order: the version written last must still be the one that seals.
func TestCurrentIsLastSetWhenVersionsShareASecond(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var last string
	for range 6 {
		last = f.kv.SetSecret(keyring.DefaultSecretName, newKey())
	}
	k, err := f.ring.Current(ctx)
	if err != nil || k.Version() != last {
		t.Fatalf("Current = %q, %v; want the version set last, %s", k.Version(), err, last)
	}

	// With the newest disabled, the choice among the remaining tied versions is the same on
	// every instance.
	f.kv.SetEnabled(keyring.DefaultSecretName, last, false)
	f.clock.Advance(2 * time.Minute)
	a, err := f.ring.Current(ctx)
	if err != nil || a.Version() == last {
		t.Fatalf("Current = %q, %v; want an enabled version", a.Version(), err)
	}
	// A second ring on the same vault must agree.
	other, err := keyring.NewVault(keyring.VaultOptions{
		VaultURL: f.kv.URL(), Credential: f.kv.Credential(), HTTPClient: f.kv.Client(),
		Retry: policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := other.Current(ctx)
	if err != nil || b.Version() != a.Version() {
		t.Fatalf("two instances chose %q and %q (%v)", a.Version(), b.Version(), err)
	}
}
