package aisearch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/aisearch"
	"github.com/onbehalf/onbehalf/internal/testenv"
	stub "github.com/onbehalf/onbehalf/internal/testenv/aisearch"
	"github.com/onbehalf/onbehalf/internal/testenv/azuretoken"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

const (
	tenant = "72f988bf-0000-4000-8000-0000000000ab"
	bot    = "5e7a0000-0000-4000-8000-0000000000b2"
	alice  = "a11ce000-0000-4000-8000-00000000000a"
)

type env struct {
	e   *entra.Server
	s   *stub.Server
	c   *aisearch.Client
	now time.Time
}

func newEnv(t *testing.T, callerOID string) *env {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddUser(entra.User{ObjectID: alice, Name: "Alice"})
	s := stub.New("handbook")
	t.Cleanup(s.Close)
	s.Trust(e)
	s.GrantReader(bot)
	s.AddDocument(stub.Document{ID: "1", Title: "Alice's plan", URL: "https://kb.example/1", Content: "holiday plan", UserIDs: []string{alice}})
	s.AddDocument(stub.Document{ID: "2", Title: "Someone else's plan", URL: "https://kb.example/2", Content: "holiday plan", UserIDs: []string{"none"}})
	now := time.Now()
	mi := e.Sign(map[string]any{"iss": e.Issuer(), "aud": aisearch.Audience, "tid": tenant, "oid": callerOID, "idtyp": "app", "exp": now.Add(time.Hour).Unix()})
	c, err := aisearch.New(aisearch.Config{
		Endpoint: s.URL, Index: "handbook", APIVersion: "2025-11-01-preview",
		Fields:     aisearch.Fields{Title: "title", URL: "url", Content: "content"},
		Credential: azuretoken.New(map[string]string{aisearch.Audience + "/.default": mi}),
		HTTPClient: testenv.SharedCA().Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{e: e, s: s, c: c, now: now}
}

func (v *env) user(aud string, exp time.Time) string {
	return v.e.Sign(map[string]any{"iss": v.e.Issuer(), "aud": aud, "tid": tenant, "oid": alice, "scp": "user_impersonation", "exp": exp.Unix()})
}

// The client queries as the user: their documents come back, with the selected fields only.
func TestSearchAsTheUser(t *testing.T) {
	v := newEnv(t, bot)
	docs, err := v.c.Search(context.Background(), v.user(aisearch.Audience, v.now.Add(time.Hour)), "holiday", 5)
	if err != nil || len(docs) != 1 || docs[0].Title != "Alice's plan" || docs[0].URL != "https://kb.example/1" || docs[0].Content != "holiday plan" {
		t.Fatalf("%v %+v", err, docs)
	}
	if q := v.s.Queries(); len(q) != 1 || q[0].User != alice || q[0].Caller != bot {
		t.Fatalf("queries %+v", q)
	}
}

// Refusals map to errors the tool turns into sentences; nothing is searched without the
// user's token, and no error text carries a token.
func TestSearchFailures(t *testing.T) {
	v := newEnv(t, bot)
	ctx := context.Background()
	if _, err := v.c.Search(ctx, "  ", "holiday", 5); err == nil || len(v.s.Queries()) != 0 {
		t.Fatalf("searched without a user token: %v", err)
	}
	for _, c := range []struct {
		name string
		tok  string
		want error
	}{
		{"expired user token", v.user(aisearch.Audience, v.now.Add(-time.Hour)), aisearch.ErrUserRefused},
		{"user token for Graph", v.user("https://graph.microsoft.com", v.now.Add(time.Hour)), aisearch.ErrUserRefused},
	} {
		_, err := v.c.Search(ctx, c.tok, "holiday", 5)
		if !errors.Is(err, c.want) || strings.Contains(err.Error(), "eyJ") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	v.s.FailNext(1)
	if _, err := v.c.Search(ctx, v.user(aisearch.Audience, v.now.Add(time.Hour)), "holiday", 5); !errors.Is(err, aisearch.ErrUnavailable) {
		t.Errorf("503: %v", err)
	}
	w := newEnv(t, "00000000-0000-4000-8000-0000000000dd") // an identity without the role
	if _, err := w.c.Search(ctx, w.user(aisearch.Audience, w.now.Add(time.Hour)), "holiday", 5); !errors.Is(err, aisearch.ErrForbidden) {
		t.Errorf("no role: %v", err)
	}
}
