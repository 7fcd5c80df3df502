package tokenstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// One Azurite serves the package's tests; each test uses its own table prefix. The outage
// test starts its own.
var (
	shared     *azurite.Server
	sharedSkip string
)

func TestMain(m *testing.M) {
	s, err := azurite.Launch(azurite.Options{})
	switch {
	case errors.Is(err, azurite.ErrNotInstalled):
		sharedSkip = err.Error()
	case err != nil:
		fmt.Fprintln(os.Stderr, "start azurite:", err)
		os.Exit(1)
	default:
		shared = s
	}
	code := logcheck.RunMain(m)
	if shared != nil {
		// Whatever the tests left in the shared Azurite must be sealed values and metadata.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rows, err := shared.Rows(ctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "logcheck: list the tables:", err)
			code = 1
		}
		for _, f := range logcheck.FindInRows(rows) {
			fmt.Fprintln(os.Stderr, "logcheck: found in Table Storage:", f)
			code = 1
		}
		_ = shared.Close()
	}
	os.Exit(code)
}

var (
	alice = tokenstore.UserKey{TenantID: "11111111-1111-1111-1111-111111111111", ObjectID: "aaaaaaaa-0000-0000-0000-000000000001"}
	bob   = tokenstore.UserKey{TenantID: "11111111-1111-1111-1111-111111111111", ObjectID: "bbbbbbbb-0000-0000-0000-000000000002"}
	jira  = tokenstore.TokenKey{Connector: "atlassian", Resource: "cloud-1"}
	wiki  = tokenstore.TokenKey{Connector: "atlassian", Resource: "cloud-2"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's world: Azurite, a Key Vault stand-in with one key version, and a prefix.
type env struct {
	t       testing.TB
	az      *azurite.Server
	kv      *keyvault.Server
	prefix  string
	keyName string
	v1      string
	kclock  *clock // the keyrings' clock, to expire their caches
}

func newEnv(t testing.TB) *env {
	t.Helper()
	if shared == nil {
		t.Skip(sharedSkip)
	}
	return newEnvOn(t, shared)
}

func newEnvOn(t testing.TB, az *azurite.Server) *env {
	e := &env{t: t, az: az, kv: keyvault.Start(t, keyvault.Options{}), prefix: "t" + randHex(6), keyName: keyring.DefaultSecretName, kclock: newClock()}
	e.v1 = e.kv.SetSecret(e.keyName, newKeyValue())
	return e
}

func newKeyValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) ring() *keyring.Vault {
	e.t.Helper()
	r, err := keyring.NewVault(keyring.VaultOptions{
		VaultURL:   e.kv.URL(),
		SecretName: e.keyName,
		Credential: e.kv.Credential(),
		HTTPClient: e.kv.Client(),
		Retry:      policy.RetryOptions{MaxRetries: -1},
		CacheTTL:   time.Minute,
		Now:        e.kclock.Now,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// fastRetry keeps outages quick to detect in tests: one retry, short delays and try timeout.
var fastRetry = policy.RetryOptions{MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, TryTimeout: 3 * time.Second}

func (e *env) store(mods ...func(*tokenstore.Options)) *tokenstore.Store {
	e.t.Helper()
	o := tokenstore.Options{
		ConnectionString: e.az.ConnectionString(),
		Keys:             e.ring(),
		TablePrefix:      e.prefix,
		Retry:            fastRetry,
	}
	for _, m := range mods {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := tokenstore.New(ctx, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func noL1(o *tokenstore.Options) { o.L1Entries = -1 }

// raw is a direct table client, for looking at and tampering with stored rows.
func (e *env) raw(table string) *aztables.Client {
	e.t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(e.az.ConnectionString(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc.NewClient(e.prefix + table)
}

func (e *env) rows(table string) []map[string]any {
	e.t.Helper()
	p := e.raw(table).NewListEntitiesPager(nil)
	var out []map[string]any
	for p.More() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, b := range page.Entities {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			out = append(out, m)
		}
	}
	return out
}

func (e *env) rawGet(table, pk, rk string) map[string]any {
	e.t.Helper()
	resp, err := e.raw(table).GetEntity(context.Background(), pk, rk, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(resp.Value, &m)
	return m
}

func (e *env) rawPut(table string, m map[string]any) {
	e.t.Helper()
	clean := map[string]any{}
	for k, v := range m {
		if len(k) > 6 && k[:6] == "odata." {
			continue
		}
		if k == "Timestamp" || k == "Timestamp@odata.type" {
			continue
		}
		clean[k] = v
	}
	b, _ := json.Marshal(clean)
	if _, err := e.raw(table).UpsertEntity(context.Background(), b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		e.t.Fatal(err)
	}
}

// tokenRows returns u's raw token rows.
func (e *env) tokenRows(u tokenstore.UserKey) []map[string]any {
	var out []map[string]any
	for _, r := range e.rows("users") {
		if r["PartitionKey"] == u.Partition() && r["Kind"] == "token" {
			out = append(out, r)
		}
	}
	return out
}

// onlyTokenRow returns the single token row of u, failing otherwise.
func (e *env) onlyTokenRow(u tokenstore.UserKey) map[string]any {
	e.t.Helper()
	rs := e.tokenRows(u)
	if len(rs) != 1 {
		e.t.Fatalf("%d token rows for %s, want 1", len(rs), u)
	}
	return rs[0]
}

// countingTransport counts HTTP requests, to report Table round trips.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

var ctx = context.Background()
