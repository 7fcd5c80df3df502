package aisearch_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/aisearch"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

const (
	tenant  = "72f988bf-0000-4000-8000-0000000000aa"
	botMI   = "5e7a0000-0000-4000-8000-0000000000b1"
	alice   = "a11ce000-0000-4000-8000-00000000000a"
	bob     = "b0b00000-0000-4000-8000-00000000000b"
	finance = "f1000000-0000-4000-8000-0000000000f1"
)

type env struct {
	e   *entra.Server
	s   *aisearch.Server
	hc  *http.Client
	now time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddUser(entra.User{ObjectID: alice, Name: "Alice", Groups: []string{finance}})
	e.AddUser(entra.User{ObjectID: bob, Name: "Bob"})
	s := aisearch.New("kb")
	s.Trust(e)
	t.Cleanup(s.Close)
	s.GrantReader(botMI)
	for _, d := range []aisearch.Document{
		{ID: "alice-only", Title: "Alice's plan", Content: "travel policy for Alice", UserIDs: []string{alice}, GroupIDs: []string{"none"}},
		{ID: "finance", Title: "Finance handbook", Content: "travel policy for finance", UserIDs: []string{"none"}, GroupIDs: []string{finance}},
		{ID: "public", Title: "Public policy", Content: "travel policy for everyone", UserIDs: []string{"all"}, GroupIDs: []string{}},
		{ID: "nobody", Title: "Locked", Content: "travel policy nobody reads", UserIDs: []string{"none"}, GroupIDs: []string{}},
		{ID: "bob-only", Title: "Bob's notes", Content: "travel policy for Bob", UserIDs: []string{bob}},
	} {
		s.AddDocument(d)
	}
	return &env{e: e, s: s, hc: testenv.SharedCA().Client(), now: time.Now()}
}

// appToken is the managed identity's token (an app token: no scp).
func (v *env) appToken(oid, aud string) string {
	return v.e.Sign(map[string]any{"iss": v.e.Issuer(), "aud": aud, "tid": tenant, "oid": oid, "sub": oid, "idtyp": "app",
		"iat": v.now.Unix(), "nbf": v.now.Unix(), "exp": v.now.Add(time.Hour).Unix()})
}

func (v *env) userToken(oid string, edit func(map[string]any)) string {
	c := map[string]any{"iss": v.e.Issuer(), "aud": aisearch.Audience, "tid": tenant, "oid": oid, "sub": oid, "scp": "user_impersonation",
		"iat": v.now.Unix(), "nbf": v.now.Unix(), "exp": v.now.Add(time.Hour).Unix(), "ver": "2.0"}
	if edit != nil {
		edit(c)
	}
	return v.e.Sign(c)
}

type call struct {
	path, version, caller, user, body string
	header                            map[string]string
}

func (v *env) do(t *testing.T, c call) (int, []string, string) {
	t.Helper()
	if c.path == "" {
		c.path = "/indexes('kb')/docs/search.post.search"
	}
	if c.version == "" {
		c.version = "2025-11-01-preview"
	}
	if c.body == "" {
		c.body = `{"search":"travel policy","select":"id,title,url"}`
	}
	req, _ := http.NewRequest(http.MethodPost, v.s.URL+c.path+"?api-version="+c.version, strings.NewReader(c.body))
	req.Header.Set("Content-Type", "application/json")
	if c.caller != "" {
		req.Header.Set("Authorization", "Bearer "+c.caller)
	}
	if c.user != "" {
		req.Header.Set("x-ms-query-source-authorization", c.user)
	}
	for k, val := range c.header {
		req.Header.Set(k, val)
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Value []map[string]any `json:"value"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	var ids []string
	for _, d := range out.Value {
		if _, leaked := d["UserIds"]; leaked {
			t.Errorf("a permission field was returned although not selected: %v", d)
		}
		id, _ := d["id"].(string)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return resp.StatusCode, ids, out.Error.Message
}

// Each user sees the documents whose userIds name them, whose groupIds name one of their
// groups (as the directory says, not the token), or that are public; never anyone else's.
func TestDocumentsAreTrimmedToTheUser(t *testing.T) {
	v := newEnv(t)
	mi := v.appToken(botMI, aisearch.Audience)
	for _, c := range []struct {
		name, user string
		want       []string
	}{
		{"alice raw token", v.userToken(alice, nil), []string{"alice-only", "finance", "public"}},
		{"alice Bearer form", "Bearer " + v.userToken(alice, nil), []string{"alice-only", "finance", "public"}},
		{"bob", v.userToken(bob, nil), []string{"bob-only", "public"}},
		{"no user token: public only", "", []string{"public"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ids, msg := v.do(t, call{caller: mi, user: c.user})
			if status != http.StatusOK || !slices.Equal(ids, c.want) {
				t.Fatalf("got %d %v (%s), want %v", status, ids, msg, c.want)
			}
		})
	}
	// The other route Learn shows answers the same.
	if status, ids, _ := v.do(t, call{path: "/indexes/kb/docs/search", caller: mi, user: v.userToken(bob, nil)}); status != http.StatusOK || !slices.Equal(ids, []string{"bob-only", "public"}) {
		t.Fatalf("/indexes/kb/docs/search: %d %v", status, ids)
	}
	qs := v.s.Queries()
	if len(qs) == 0 || qs[0].User != alice || qs[0].Caller != botMI {
		t.Fatalf("queries: %+v", qs)
	}
}

// A user token that is not a valid Search token of this tenant for a user is refused, and
// nothing is returned.
func TestBadUserTokensAreRefused(t *testing.T) {
	v := newEnv(t)
	mi := v.appToken(botMI, aisearch.Audience)
	other := entra.New("0ther000-0000-4000-8000-000000000000")
	t.Cleanup(other.Close)
	for _, c := range []struct{ name, user string }{
		{"wrong audience (Graph)", v.userToken(alice, func(m map[string]any) { m["aud"] = "https://graph.microsoft.com" })},
		{"expired", v.userToken(alice, func(m map[string]any) { m["exp"] = v.now.Add(-time.Hour).Unix() })},
		{"another tenant's signer", other.Sign(map[string]any{"iss": other.Issuer(), "aud": aisearch.Audience, "tid": other.Tenant, "oid": alice, "scp": "user_impersonation", "exp": v.now.Add(time.Hour).Unix()})},
		{"another tenant's tid", v.userToken(alice, func(m map[string]any) { m["tid"] = other.Tenant })},
		{"an app token", v.appToken(botMI, aisearch.Audience)},
		{"garbage", "not-a-jwt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ids, msg := v.do(t, call{caller: mi, user: c.user})
			if status != http.StatusUnauthorized || len(ids) != 0 {
				t.Fatalf("got %d %v %q", status, ids, msg)
			}
		})
	}
	if _, _, msg := v.do(t, call{caller: mi, user: v.userToken(alice, func(m map[string]any) { m["aud"] = "https://graph.microsoft.com" })}); msg != "Audience claim is invalid in the JWT token." {
		t.Fatalf("wrong-audience message: %q", msg)
	}
}

// The caller must be keyless, hold a Search token and a data-plane role; the elevated-read
// bypass, unsupported api-versions and unknown request properties are refused.
func TestCallerAndRequestRules(t *testing.T) {
	v := newEnv(t)
	mi := v.appToken(botMI, aisearch.Audience)
	user := v.userToken(alice, nil)
	for _, c := range []struct {
		name string
		c    call
		want int
	}{
		{"no Authorization", call{user: user}, http.StatusUnauthorized},
		{"caller token for another audience", call{caller: v.appToken(botMI, "https://cognitiveservices.azure.com"), user: user}, http.StatusUnauthorized},
		{"caller without a role", call{caller: v.appToken("00000000-0000-4000-8000-0000000000cc", aisearch.Audience), user: user}, http.StatusForbidden},
		{"api key", call{caller: mi, user: user, header: map[string]string{"api-key": "k"}}, http.StatusUnauthorized},
		{"elevated read", call{caller: mi, user: user, header: map[string]string{"x-ms-enable-elevated-read": "true"}}, http.StatusForbidden},
		{"GA api-version", call{caller: mi, user: user, version: "2024-07-01"}, http.StatusBadRequest},
		{"unknown property", call{caller: mi, user: user, body: `{"search":"x","filter":"UserIds/any()"}`}, http.StatusBadRequest},
		{"unknown index", call{caller: mi, user: user, path: "/indexes('other')/docs/search.post.search"}, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status, ids, msg := v.do(t, c.c); status != c.want || len(ids) != 0 {
				t.Fatalf("got %d %v %q, want %d", status, ids, msg, c.want)
			}
		})
	}
	v.s.FailNext(1)
	if status, ids, _ := v.do(t, call{caller: mi, user: user}); status != http.StatusServiceUnavailable || len(ids) != 0 {
		t.Fatalf("ACL evaluation failure: %d %v", status, ids)
	}
}
