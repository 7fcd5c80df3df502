package tokenstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/sync/singleflight"

	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/seal"
)

// Keys supplies sealing keys: the current version for writes, any recorded version for reads.
// Implementations must be safe for concurrent use. Version returns an error wrapping
// keyring.ErrKeyUnavailable for a version that is gone, and keyring.ErrVaultUnavailable when
// the key source cannot be reached.
type Keys interface {
	Current(ctx context.Context) (seal.Key, error)
	Version(ctx context.Context, version string) (seal.Key, error)
}

var (
	_ Keys = (*keyring.Vault)(nil)
	_ Keys = (*keyring.Static)(nil)
)

// Options configures New. Exactly one of TableEndpoint (with Credential) or ConnectionString
// must be set.
//
// Example (in Azure; the handler builds Keys with keyring.NewVault):
//
//	store, err := tokenstore.New(ctx, tokenstore.Options{
//		TableEndpoint: "https://onbehalfst.table.core.windows.net", // TOKENSTORE_TABLE_ENDPOINT
//		Credential:    managedIdentityCredential,
//		Keys:          ring,
//	})
//
// Example (local development with Azurite and TOKENSTORE_DEV_KEY):
//
//	ring, _ := keyring.NewDev(os.Getenv("TOKENSTORE_DEV_KEY"), false)
//	store, err := tokenstore.New(ctx, tokenstore.Options{
//		ConnectionString: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
//		Keys:             ring,
//	})
type Options struct {
	// TableEndpoint is the account's table service URL, https://<account>.table.core.windows.net
	// (TOKENSTORE_TABLE_ENDPOINT). Used with Credential; shared keys stay disabled.
	TableEndpoint string
	// Credential authenticates to TableEndpoint (normally the managed identity).
	Credential azcore.TokenCredential
	// ConnectionString is an explicit storage connection string, for Azurite
	// (TOKENSTORE_CONNECTION_STRING; local development and tests only).
	ConnectionString string
	// Keys supplies sealing keys. Required.
	Keys Keys
	// TablePrefix starts both table names (<prefix>users, <prefix>signin). Letters and digits,
	// starting with a letter, at most 50 characters. Empty: "onbehalf".
	TablePrefix string
	// HTTPClient sends Table Storage requests. Nil: the SDK default.
	HTTPClient *http.Client
	// Retry tunes the SDK retry policy for transient failures. Zero value: SDK defaults.
	Retry policy.RetryOptions
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// L1Entries and L1MaxAge bound the in-memory cache. Zero: 1024 entries, 30 s.
	// A negative value disables it.
	L1Entries int
	L1MaxAge  time.Duration
	// TokenTTL is how long a connector token row lives after its last write. Zero: 90 days
	// (the inactivity expiry of rotating refresh tokens at Atlassian).
	TokenTTL time.Duration
	// ConversationTTL is how long a conversation reference lives after its last write. Zero: 365 days.
	ConversationTTL time.Duration
	// RefreshLease is how long FreshToken holds a row while it refreshes; another instance
	// waits for it. Zero: 30 s. The refresh call is bounded to 3/4 of it.
	RefreshLease time.Duration
	// LeasePoll is how often a waiting caller re-reads a leased row. Zero: 50 ms.
	LeasePoll time.Duration
}

// Store is the token store. Safe for concurrent use.
type Store struct {
	users  table
	signin table
	keys   Keys
	now    func() time.Time
	l1     *l1
	flight singleflight.Group

	tokenTTL, convTTL time.Duration
	lease, leasePoll  time.Duration
}

// table pairs an SDK client with the logical name sealed into associated data. The logical
// name, not the prefixed one, is bound, so a renamed prefix does not invalidate rows.
type table struct {
	client *aztables.Client
	name   string
}

var prefixRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,49}$`)

// New connects to Table Storage, creates the tables if missing, and returns the Store.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Keys == nil {
		return nil, errors.New("tokenstore: Keys is required")
	}
	if (o.TableEndpoint == "") == (o.ConnectionString == "") {
		return nil, errors.New("tokenstore: set exactly one of TOKENSTORE_TABLE_ENDPOINT or TOKENSTORE_CONNECTION_STRING")
	}
	prefix := o.TablePrefix
	if prefix == "" {
		prefix = "onbehalf"
	}
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("tokenstore: table prefix %q: letters and digits only, starting with a letter, at most 50", prefix)
	}
	co := &aztables.ClientOptions{ClientOptions: policy.ClientOptions{Retry: o.Retry}}
	if o.HTTPClient != nil {
		co.Transport = o.HTTPClient
	}
	var svc *aztables.ServiceClient
	var err error
	if o.ConnectionString != "" {
		svc, err = aztables.NewServiceClientFromConnectionString(o.ConnectionString, co)
	} else {
		if o.Credential == nil {
			return nil, errors.New("tokenstore: TOKENSTORE_TABLE_ENDPOINT needs a credential")
		}
		svc, err = aztables.NewServiceClient(o.TableEndpoint, o.Credential, co)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenstore: table client: %w", err)
	}
	s := &Store{
		keys: o.Keys, now: o.Now,
		tokenTTL: o.TokenTTL, convTTL: o.ConversationTTL, lease: o.RefreshLease, leasePoll: o.LeasePoll,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tokenTTL = orDefault(s.tokenTTL, 90*24*time.Hour)
	s.convTTL = orDefault(s.convTTL, 365*24*time.Hour)
	s.lease = orDefault(s.lease, 30*time.Second)
	s.leasePoll = orDefault(s.leasePoll, 50*time.Millisecond)
	entries, age := o.L1Entries, o.L1MaxAge
	if entries == 0 {
		entries = 1024
	}
	if age == 0 {
		age = 30 * time.Second
	}
	s.l1 = newL1(entries, age, s.now)

	for _, t := range []struct {
		dst  *table
		name string
	}{{&s.users, "users"}, {&s.signin, "signin"}} {
		full := prefix + t.name
		if _, err := svc.CreateTable(ctx, full, nil); err != nil {
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.ErrorCode != string(aztables.TableAlreadyExists) {
				return nil, storageErr(ctx, "tokenstore: create table "+full, err)
			}
		}
		*t.dst = table{client: svc.NewClient(full), name: t.name}
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// row is one entity as stored. Data is sealed; everything else is routing or bookkeeping
// that reveals nothing secret.
type row struct {
	pk, rk     string
	kind       string
	exp        time.Time
	keyVer     string
	data       []byte
	user       string // sign-in rows: the owner's partition, so ForgetUser can find them
	leaseUntil time.Time
	leaseOwner string
	etag       azcore.ETag
}

// Table Storage keeps DateTime to 100 ns; seven fraction digits avoid rounding surprises.
const edmTime = "2006-01-02T15:04:05.0000000Z"

func (r *row) entity() ([]byte, error) {
	m := map[string]any{
		"PartitionKey":   r.pk,
		"RowKey":         r.rk,
		"Kind":           r.kind,
		"Exp":            r.exp.UTC().Format(edmTime),
		"Exp@odata.type": "Edm.DateTime",
	}
	if r.keyVer != "" {
		m["KeyVer"] = r.keyVer
		m["Data"] = base64.StdEncoding.EncodeToString(r.data)
	}
	if r.user != "" {
		m["User"] = r.user
	}
	if !r.leaseUntil.IsZero() {
		m["LeaseUntil"] = r.leaseUntil.UTC().Format(edmTime)
		m["LeaseUntil@odata.type"] = "Edm.DateTime"
		m["LeaseOwner"] = r.leaseOwner
	}
	return json.Marshal(m)
}

func parseRow(b []byte, etag azcore.ETag) (*row, error) {
	var m struct {
		ETag       string `json:"odata.etag"`
		PK         string `json:"PartitionKey"`
		RK         string `json:"RowKey"`
		Kind       string `json:"Kind"`
		Exp        string `json:"Exp"`
		KeyVer     string `json:"KeyVer"`
		Data       string `json:"Data"`
		User       string `json:"User"`
		LeaseUntil string `json:"LeaseUntil"`
		LeaseOwner string `json:"LeaseOwner"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tokenstore: decode entity: %w", err)
	}
	r := &row{pk: m.PK, rk: m.RK, kind: m.Kind, keyVer: m.KeyVer, user: m.User, leaseOwner: m.LeaseOwner, etag: etag}
	if r.etag == "" {
		r.etag = azcore.ETag(m.ETag)
	}
	var err error
	if r.exp, err = time.Parse(time.RFC3339Nano, m.Exp); err != nil {
		// A row without a readable expiry is treated as expired: never served.
		r.exp = time.Time{}
	}
	if m.LeaseUntil != "" {
		r.leaseUntil, _ = time.Parse(time.RFC3339Nano, m.LeaseUntil)
	}
	if m.Data != "" {
		if r.data, err = base64.StdEncoding.DecodeString(m.Data); err != nil {
			r.data = nil // opens as tampered
		}
	}
	return r, nil
}

// envelope is what gets sealed: the payload together with its kind and expiry, so neither
// can be changed from outside without the value failing to open.
type envelope struct {
	Kind    string          `json:"k"`
	Exp     int64           `json:"e"` // Unix milliseconds
	Payload json.RawMessage `json:"p,omitempty"`
}

// newRow seals payload for (t, pk, rk) under the current key.
func (s *Store) newRow(ctx context.Context, t table, pk, rk, kind string, payload any, exp time.Time) (*row, error) {
	r := &row{pk: pk, rk: rk, kind: kind, exp: exp}
	if payload == nil {
		return r, nil
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: encode %s: %w", kind, err)
	}
	env, _ := json.Marshal(envelope{Kind: kind, Exp: exp.UnixMilli(), Payload: p})
	k, err := s.keys.Current(ctx)
	if err != nil {
		return nil, keyErr("tokenstore: sealing key", err)
	}
	r.keyVer = k.Version()
	r.data, err = seal.Seal(k, seal.Binding{Table: t.name, Partition: pk, Row: rk}, env)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: seal %s: %w", kind, err)
	}
	return r, nil
}

func keyErr(op string, err error) error {
	switch {
	case errors.Is(err, keyring.ErrKeyUnavailable):
		return fmt.Errorf("%s: %w: %w", op, ErrSignInNeeded, err)
	case errors.Is(err, keyring.ErrVaultUnavailable):
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// open checks expiry and kind and unseals r's payload into out (nil: only check). An expired
// row is deleted (if unchanged) and reported as ErrNotFound.
func (s *Store) open(ctx context.Context, t table, r *row, kind string, out any) error {
	now := s.now()
	if !now.Before(r.exp) {
		s.dropExpiredBy(ctx, t, r, now, r.exp)
		return fmt.Errorf("tokenstore: %s: %w (expired)", kind, ErrNotFound)
	}
	if r.kind != kind {
		return fmt.Errorf("tokenstore: %s: %w: row holds kind %q", kind, ErrSignInNeeded, r.kind)
	}
	if r.keyVer == "" {
		if out != nil {
			return fmt.Errorf("tokenstore: %s: %w: %w: no sealed data", kind, ErrSignInNeeded, ErrTampered)
		}
		return nil
	}
	k, err := s.keys.Version(ctx, r.keyVer)
	if err != nil {
		return keyErr("tokenstore: open "+kind, err)
	}
	plain, err := seal.Open(k, seal.Binding{Table: t.name, Partition: r.pk, Row: r.rk}, r.data)
	if err != nil {
		return fmt.Errorf("tokenstore: open %s: %w: %w", kind, ErrSignInNeeded, ErrTampered)
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || env.Kind != kind {
		return fmt.Errorf("tokenstore: open %s: %w: %w: bad envelope", kind, ErrSignInNeeded, ErrTampered)
	}
	if sealedExp := time.UnixMilli(env.Exp); !now.Before(sealedExp) {
		s.dropExpiredBy(ctx, t, r, now, sealedExp)
		return fmt.Errorf("tokenstore: %s: %w (expired)", kind, ErrNotFound)
	}
	if out != nil {
		if err := json.Unmarshal(env.Payload, out); err != nil {
			return fmt.Errorf("tokenstore: decode %s: %w", kind, err)
		}
	}
	return nil
}

// dropExpiredBy deletes a row that expired at exp only once it is past exp by ClockSkew
// too: an instance whose clock runs ahead must not delete what the others still use (a
// pending exchange claim, a sign-in state). Until then the row only reads as absent here.
func (s *Store) dropExpiredBy(ctx context.Context, t table, r *row, now, exp time.Time) {
	if now.Before(exp.Add(ClockSkew)) {
		return
	}
	s.dropExpired(ctx, t, r)
}

// dropExpired deletes an expired row unless it changed since it was read. Failure is harmless:
// the row still reads as absent and the next read tries again.
func (s *Store) dropExpired(ctx context.Context, t table, r *row) {
	etag := r.etag
	_, _ = t.client.DeleteEntity(ctx, r.pk, r.rk, &aztables.DeleteEntityOptions{IfMatch: &etag})
	s.l1.drop(l1Key(t, r.pk, r.rk))
}

func l1Key(t table, pk, rk string) string { return pk + "\x00" + t.name + "\x00" + rk }

func (s *Store) read(ctx context.Context, t table, pk, rk string) (*row, error) {
	resp, err := t.client.GetEntity(ctx, pk, rk, nil)
	if err != nil {
		return nil, storageErr(ctx, "tokenstore: read", err)
	}
	return parseRow(resp.Value, resp.ETag)
}

func (s *Store) insert(ctx context.Context, t table, r *row) (azcore.ETag, error) {
	b, err := r.entity()
	if err != nil {
		return "", err
	}
	resp, err := t.client.AddEntity(ctx, b, nil)
	s.l1.drop(l1Key(t, r.pk, r.rk))
	if err != nil {
		return "", storageErr(ctx, "tokenstore: insert", err)
	}
	return resp.ETag, nil
}

func (s *Store) replace(ctx context.Context, t table, r *row, ifMatch azcore.ETag) (azcore.ETag, error) {
	b, err := r.entity()
	if err != nil {
		return "", err
	}
	resp, err := t.client.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &ifMatch, UpdateMode: aztables.UpdateModeReplace})
	s.l1.drop(l1Key(t, r.pk, r.rk))
	if err != nil {
		return "", storageErr(ctx, "tokenstore: replace", err)
	}
	return resp.ETag, nil
}

func (s *Store) upsert(ctx context.Context, t table, r *row) error {
	b, err := r.entity()
	if err != nil {
		return err
	}
	_, err = t.client.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	s.l1.drop(l1Key(t, r.pk, r.rk))
	return storageErr(ctx, "tokenstore: write", err)
}

// remove deletes a row; an empty ifMatch deletes unconditionally.
func (s *Store) remove(ctx context.Context, t table, pk, rk string, ifMatch azcore.ETag) error {
	if ifMatch == "" {
		ifMatch = azcore.ETagAny
	}
	_, err := t.client.DeleteEntity(ctx, pk, rk, &aztables.DeleteEntityOptions{IfMatch: &ifMatch})
	s.l1.drop(l1Key(t, pk, rk))
	return storageErr(ctx, "tokenstore: delete", err)
}

// list returns the rows of partition pk whose row key lies in [from, to).
func (s *Store) list(ctx context.Context, t table, pk, from, to string) ([]*row, error) {
	f := fmt.Sprintf("PartitionKey eq '%s'", odataQuote(pk))
	if from != "" {
		f += fmt.Sprintf(" and RowKey ge '%s' and RowKey lt '%s'", odataQuote(from), odataQuote(to))
	}
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
	var out []*row
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, storageErr(ctx, "tokenstore: list", err)
		}
		for _, e := range page.Entities {
			r, err := parseRow(e, "")
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// odataQuote doubles single quotes, the only escape an OData string literal needs.
func odataQuote(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}
