package tokenstore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/keyring"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

func sampleToken(tag string) tokenstore.Token {
	return tokenstore.Token{
		AccessToken:  "access-" + tag,
		RefreshToken: "refresh-" + tag,
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC(),
		Scopes:       []string{"read:jira-work", "offline_access"},
		Extra:        map[string]string{"cloudid": "c-" + tag},
	}
}

func TestTokenRoundTripIsSealedAndPerUser(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	want := sampleToken("alice")
	if err := s.PutToken(ctx, alice, jira, want); err != nil {
		t.Fatal(err)
	}
	// A second instance has a cold L1: this read comes from Table Storage.
	got, err := e.store().GetToken(ctx, alice, jira)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := s.GetToken(ctx, bob, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("bob reads alice's token: err = %v", err)
	}
	if _, err := s.GetToken(ctx, alice, wiki); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("other resource: err = %v", err)
	}

	row := e.onlyTokenRow(alice)
	all, _ := json.Marshal(e.rows("users"))
	for _, secret := range []string{want.AccessToken, want.RefreshToken, "cloudid", alice.ObjectID, "atlassian"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("table holds %q in clear", secret)
		}
	}
	if row["KeyVer"] != e.v1 {
		t.Errorf("KeyVer = %v, want %s", row["KeyVer"], e.v1)
	}
	data, _ := base64.StdEncoding.DecodeString(row["Data"].(string))
	if len(data) == 0 || data[0] != 0x01 {
		t.Errorf("sealed value lacks the format byte: % x", data[:min(4, len(data))])
	}

	if err := s.DeleteToken(ctx, alice, jira); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("after delete: err = %v", err)
	}
	if err := s.DeleteToken(ctx, alice, jira); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestTamperedRowsNeverOpen(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	if err := s.PutToken(ctx, alice, jira, sampleToken("a-jira")); err != nil {
		t.Fatal(err)
	}
	aliceJira := e.onlyTokenRow(alice)
	if err := s.PutToken(ctx, bob, jira, sampleToken("b-jira")); err != nil {
		t.Fatal(err)
	}
	bobJira := e.onlyTokenRow(bob)
	if err := s.PutToken(ctx, alice, wiki, sampleToken("a-wiki")); err != nil {
		t.Fatal(err)
	}
	var aliceWiki map[string]any
	for _, r := range e.tokenRows(alice) {
		if r["RowKey"] != aliceJira["RowKey"] {
			aliceWiki = r
		}
	}
	v2 := e.kv.SetSecret(e.keyName, newKeyValue()) // exists and is enabled: only the label is wrong

	data := func(r map[string]any) []byte {
		b, _ := base64.StdEncoding.DecodeString(r["Data"].(string))
		return b
	}
	with := func(r map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range r {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	b64 := base64.StdEncoding.EncodeToString
	flipped := data(aliceJira)
	flipped[len(flipped)/2] ^= 0x04

	cases := []struct {
		name   string
		write  map[string]any
		user   tokenstore.UserKey
		key    tokenstore.TokenKey
		reason error
	}{
		{"flipped bit", with(aliceJira, "Data", b64(flipped)), alice, jira, tokenstore.ErrTampered},
		{"truncated", with(aliceJira, "Data", b64(data(aliceJira)[:len(data(aliceJira))-3])), alice, jira, tokenstore.ErrTampered},
		{"not base64", with(aliceJira, "Data", "%%%"), alice, jira, tokenstore.ErrTampered},
		{"moved to another row", with(with(aliceWiki, "Data", aliceJira["Data"]), "KeyVer", aliceJira["KeyVer"]), alice, wiki, tokenstore.ErrTampered},
		{"moved to another user", with(with(bobJira, "Data", aliceJira["Data"]), "KeyVer", aliceJira["KeyVer"]), bob, jira, tokenstore.ErrTampered},
		{"wrong key version", with(aliceJira, "KeyVer", v2), alice, jira, tokenstore.ErrTampered},
		{"unknown key version", with(aliceJira, "KeyVer", "00000000000000000000000000000000"), alice, jira, keyring.ErrKeyUnavailable},
		{"kind relabelled", with(aliceJira, "Kind", "parked"), alice, jira, tokenstore.ErrSignInNeeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.rawPut("users", tc.write)
			got, err := e.store().GetToken(ctx, tc.user, tc.key)
			if !errors.Is(err, tokenstore.ErrSignInNeeded) || !errors.Is(err, tc.reason) {
				t.Fatalf("err = %v, want ErrSignInNeeded caused by %v", err, tc.reason)
			}
			if !reflect.DeepEqual(got, tokenstore.Token{}) {
				t.Fatalf("returned %+v with the error", got)
			}
		})
	}
	// A fresh write replaces the damaged row: signing in again recovers.
	if err := s.PutToken(ctx, alice, jira, sampleToken("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store().GetToken(ctx, alice, jira); err != nil || got.AccessToken != "access-again" {
		t.Fatalf("after re-sign-in: %v, %v", got.AccessToken, err)
	}
}

func TestInvalidUsersAndKeysChangeNothing(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	for _, u := range []tokenstore.UserKey{
		{},
		{TenantID: alice.TenantID},
		{TenantID: "not-a-guid", ObjectID: alice.ObjectID},
		{TenantID: alice.TenantID, ObjectID: "aaaaaaaa-0000-0000-0000-00000000000g"},
		{TenantID: alice.TenantID, ObjectID: "' or 1 eq 1 or '"},
	} {
		if err := s.PutToken(ctx, u, jira, sampleToken("x")); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("PutToken(%+v) err = %v, want ErrInvalid", u, err)
		}
		if _, err := s.ForgetUser(ctx, u); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("ForgetUser(%+v) err = %v", u, err)
		}
	}
	if err := s.PutToken(ctx, alice, tokenstore.TokenKey{}, sampleToken("x")); !errors.Is(err, tokenstore.ErrInvalid) {
		t.Errorf("empty connector: err = %v", err)
	}
	if n := len(e.rows("users")); n != 0 {
		t.Fatalf("%d rows written by invalid calls", n)
	}
	// The partition is case-insensitive in the ids: the same user whatever the casing.
	upper := tokenstore.UserKey{TenantID: strings.ToUpper(alice.TenantID), ObjectID: strings.ToUpper(alice.ObjectID)}
	if upper.Partition() != alice.Partition() {
		t.Error("partition depends on GUID casing")
	}
}

func TestExpiredRowsReadAsAbsentAndAreDeleted(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := e.store(func(o *tokenstore.Options) { o.Now = c.Now; o.TokenTTL = time.Hour })
	if err := s.PutToken(ctx, alice, jira, sampleToken("x")); err != nil {
		t.Fatal(err)
	}
	state, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian", PKCEVerifier: "v"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Park(ctx, alice, tokenstore.Parked{Connector: "atlassian", Payload: []byte("hi")}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimExchange(ctx, alice, "x1", time.Minute); err != nil {
		t.Fatal(err)
	}

	c.Advance(2 * time.Hour)
	if _, err := s.GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("expired token: err = %v (L1 must not outlive the row)", err)
	}
	if _, err := s.ConsumeSignIn(ctx, state); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("expired sign-in state: err = %v", err)
	}
	if p, err := s.TakeParked(ctx, alice, "atlassian"); err != nil || len(p) != 0 {
		t.Errorf("expired parked: %v, %v", p, err)
	}
	if _, err := s.ExchangeResult(ctx, alice, "x1"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("expired exchange: err = %v", err)
	}
	if err := s.ClaimExchange(ctx, alice, "x1", time.Minute); err != nil {
		t.Errorf("reclaiming an expired exchange id: %v", err)
	}
	if len(e.tokenRows(alice)) != 0 {
		t.Error("expired token row was not deleted")
	}
	// An update over an expired token starts from nothing.
	if err := s.PutToken(ctx, bob, jira, sampleToken("old")); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)
	got, err := s.UpdateToken(ctx, bob, jira, func(cur *tokenstore.Token) (*tokenstore.Token, error) {
		if cur != nil {
			t.Errorf("update saw the expired token %q", cur.AccessToken)
		}
		n := sampleToken("new")
		return &n, nil
	})
	if err != nil || got.AccessToken != "access-new" {
		t.Fatalf("update over expired row: %v, %v", got, err)
	}
	if n := len(e.rows("signin")); n != 0 {
		t.Errorf("%d expired sign-in rows left", n)
	}
}

func TestSignInStateIsSingleUse(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	want := tokenstore.SignInState{User: alice, Connector: "atlassian", Resource: "r", PKCEVerifier: "verifier-123", RedirectURI: "https://bot/api/oauth/callback"}
	state, err := s.CreateSignIn(ctx, want, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(state) < 43 {
		t.Fatalf("state %q is too short to be unguessable", state)
	}
	all, _ := json.Marshal(append(e.rows("signin"), e.rows("users")...))
	if bytes.Contains(all, []byte("verifier-123")) || bytes.Contains(all, []byte(state)) {
		t.Fatal("PKCE verifier or state stored in clear")
	}

	// Two instances race to consume it, many times each: exactly one wins.
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	stores := []*tokenstore.Store{s, e.store()}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(st *tokenstore.Store) {
			defer wg.Done()
			got, err := st.ConsumeSignIn(ctx, state)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && reflect.DeepEqual(got, want):
				wins++
			case errors.Is(err, tokenstore.ErrNotFound):
				losses++
			default:
				t.Errorf("consume: %+v, %v", got, err)
			}
		}(stores[i%2])
	}
	wg.Wait()
	if wins != 1 || losses != 9 {
		t.Fatalf("wins=%d losses=%d, want 1 and 9", wins, losses)
	}
	for _, bad := range []string{"", "unknown-state", strings.Repeat("x", 1000), "a'b"} {
		if _, err := s.ConsumeSignIn(ctx, bad); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Errorf("ConsumeSignIn(%q) err = %v", bad, err)
		}
	}
	if n := len(e.rows("users")); n != 0 {
		t.Errorf("%d index rows left after consumption", n)
	}
}

func TestTokenExchangeDuplicatesGetTheFirstOutcome(t *testing.T) {
	e := newEnv(t)
	s1, s2 := e.store(), e.store()
	for _, tc := range []struct {
		id  string
		out tokenstore.ExchangeOutcome
	}{
		{"exchange-ok", tokenstore.ExchangeOutcome{State: tokenstore.ExchangeSucceeded}},
		{"exchange-consent", tokenstore.ExchangeOutcome{State: tokenstore.ExchangeFailed, FailureDetail: "consent required"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			var first, dups int
			var mu sync.Mutex
			var wg sync.WaitGroup
			results := make(chan tokenstore.ExchangeOutcome, 8)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func(st *tokenstore.Store) {
					defer wg.Done()
					err := st.ClaimExchange(ctx, alice, tc.id, time.Minute)
					switch {
					case err == nil:
						mu.Lock()
						first++
						mu.Unlock()
						time.Sleep(50 * time.Millisecond) // the exchange itself
						if err := st.CompleteExchange(ctx, alice, tc.id, tc.out); err != nil {
							t.Error(err)
						}
						results <- tc.out
					case errors.Is(err, tokenstore.ErrDuplicate) && errors.Is(err, tokenstore.ErrConflict):
						mu.Lock()
						dups++
						mu.Unlock()
						out, err := st.AwaitExchange(ctx, alice, tc.id, 10*time.Millisecond)
						if err != nil {
							t.Error(err)
						}
						results <- out
					default:
						t.Errorf("claim: %v", err)
					}
				}([]*tokenstore.Store{s1, s2}[i%2])
			}
			wg.Wait()
			close(results)
			if first != 1 || dups != 7 {
				t.Fatalf("first=%d duplicates=%d, want 1 and 7", first, dups)
			}
			for out := range results {
				if out != tc.out {
					t.Fatalf("a caller saw %+v, want the first outcome %+v", out, tc.out)
				}
			}
		})
	}
	// The same id for another user is another exchange.
	if err := s1.ClaimExchange(ctx, bob, "exchange-ok", time.Minute); err != nil {
		t.Fatalf("bob's exchange collided with alice's: %v", err)
	}
}

func TestParkedRequestsAreTakenOnceInOrder(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	c := time.Now()
	for i, msg := range []string{"first", "second", "third"} {
		if _, err := s.Park(ctx, alice, tokenstore.Parked{Connector: "atlassian", Payload: []byte(msg), Created: c.Add(time.Duration(i) * time.Second)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Park(ctx, alice, tokenstore.Parked{Connector: "graph", Payload: []byte("other")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Park(ctx, bob, tokenstore.Parked{Connector: "atlassian", Payload: []byte("bob's")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	all, _ := json.Marshal(e.rows("users"))
	if bytes.Contains(all, []byte("second")) || bytes.Contains(all, []byte(base64.StdEncoding.EncodeToString([]byte("second")))) {
		t.Fatal("parked message stored in clear")
	}
	got, err := s.TakeParked(ctx, alice, "atlassian")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range got {
		msgs = append(msgs, string(p.Payload))
	}
	if strings.Join(msgs, ",") != "first,second,third" {
		t.Fatalf("took %v", msgs)
	}
	if again, _ := e.store().TakeParked(ctx, alice, "atlassian"); len(again) != 0 {
		t.Fatalf("taken twice: %d", len(again))
	}
	if g, _ := s.TakeParked(ctx, alice, "graph"); len(g) != 1 || string(g[0].Payload) != "other" {
		t.Fatalf("graph parked = %+v", g)
	}
	if b, _ := s.TakeParked(ctx, bob, "atlassian"); len(b) != 1 || string(b[0].Payload) != "bob's" {
		t.Fatalf("bob parked = %+v", b)
	}
}

func TestForgetUserRemovesEveryRowOfThatUserOnly(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutToken(ctx, alice, jira, sampleToken("a")))
	must(s.PutToken(ctx, alice, wiki, sampleToken("a2")))
	state, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian"}, time.Minute)
	must(err)
	_, err = s.Park(ctx, alice, tokenstore.Parked{Connector: "atlassian", Payload: []byte("p")}, time.Hour)
	must(err)
	must(s.ClaimExchange(ctx, alice, "x", time.Minute))
	must(s.PutConversationRef(ctx, alice, json.RawMessage(`{"conversation":{"id":"a:1"}}`)))
	must(s.PutToken(ctx, bob, jira, sampleToken("b")))
	bobState, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: bob, Connector: "atlassian"}, time.Minute)
	must(err)

	if _, err := s.GetToken(ctx, alice, jira); err != nil { // warm alice's L1 entry
		t.Fatal(err)
	}
	n, err := s.ForgetUser(ctx, alice)
	must(err)
	if n != 7 { // 2 tokens, sign-in state + its index, parked, exchange, conversation reference
		t.Errorf("ForgetUser deleted %d rows, want 7", n)
	}
	if _, err := s.GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("token after forget (L1 must be cleared too): err = %v", err)
	}
	if _, err := s.ConversationRef(ctx, alice); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("conversation ref after forget: err = %v", err)
	}
	if _, err := s.ConsumeSignIn(ctx, state); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("sign-in state after forget: err = %v", err)
	}
	for _, r := range e.rows("users") {
		if r["PartitionKey"] == alice.Partition() {
			t.Errorf("row %v left", r["RowKey"])
		}
	}
	if _, err := s.GetToken(ctx, bob, jira); err != nil {
		t.Errorf("bob's token gone: %v", err)
	}
	if st, err := s.ConsumeSignIn(ctx, bobState); err != nil || st.User != bob {
		t.Errorf("bob's sign-in state: %+v, %v", st, err)
	}
	if n, err := s.ForgetUser(ctx, alice); err != nil || n != 0 {
		t.Errorf("second forget: %d, %v", n, err)
	}
}

func TestConversationRefRoundTrip(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	ref := json.RawMessage(`{"serviceUrl":"https://smba.trafficmanager.net/emea/","conversation":{"id":"a:1"}}`)
	if err := s.PutConversationRef(ctx, alice, ref); err != nil {
		t.Fatal(err)
	}
	got, err := e.store().ConversationRef(ctx, alice)
	if err != nil || !bytes.Equal(got, ref) {
		t.Fatalf("got %s, %v", got, err)
	}
	if err := s.PutConversationRef(ctx, alice, json.RawMessage("{not json")); !errors.Is(err, tokenstore.ErrInvalid) {
		t.Fatalf("bad JSON: err = %v", err)
	}
}

func TestUpdateTokenRetriesConflictsAcrossInstances(t *testing.T) {
	e := newEnv(t)
	stores := []*tokenstore.Store{e.store(), e.store()}
	if err := stores[0].PutToken(ctx, alice, jira, tokenstore.Token{AccessToken: "a", Extra: map[string]string{"n": "0"}}); err != nil {
		t.Fatal(err)
	}
	const per = 10
	var wg sync.WaitGroup
	for i := 0; i < 2*per; i++ {
		wg.Add(1)
		go func(s *tokenstore.Store) {
			defer wg.Done()
			_, err := s.UpdateToken(ctx, alice, jira, func(cur *tokenstore.Token) (*tokenstore.Token, error) {
				if cur == nil {
					return nil, errors.New("token vanished")
				}
				next := *cur
				var n int
				fmt.Sscan(cur.Extra["n"], &n)
				next.Extra = map[string]string{"n": fmt.Sprint(n + 1)}
				return &next, nil
			})
			if err != nil {
				t.Error(err)
			}
		}(stores[i%2])
	}
	wg.Wait()
	got, err := e.store().GetToken(ctx, alice, jira)
	if err != nil || got.Extra["n"] != fmt.Sprint(2*per) {
		t.Fatalf("counter = %v (%v), want %d: an update was lost", got.Extra["n"], err, 2*per)
	}
	// fn returning nil deletes.
	if _, err := stores[1].UpdateToken(ctx, alice, jira, func(*tokenstore.Token) (*tokenstore.Token, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[1].GetToken(ctx, alice, jira); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("after delete via update (own L1 invalidated): err = %v", err)
	}
}
