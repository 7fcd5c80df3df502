package graphuser_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
)

const (
	tenant = "72f988bf-0000-4000-8000-0000000000aa"
	botID  = "b07a0000-0000-4000-8000-0000000000bb"
	aliceO = "a11ce000-0000-4000-8000-000000000001"
	bobO   = "b0b00000-0000-4000-8000-000000000002"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*entra.Server, *graphuser.Server) {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	g := graphuser.New(e)
	t.Cleanup(g.Close)
	g.AddUser(aliceO, graphuser.UserData{
		DisplayName: "Alice Example", Mail: "alice@contoso.example", UPN: "alice@contoso.example",
		JobTitle: "Buyer", Department: "Purchasing", OfficeLocation: "B12",
		Messages: []graphuser.Message{
			{ID: "a1", Subject: "Quarterly budget", From: "Carol <carol@contoso.example>", BodyPreview: "Numbers attached", WebLink: "https://outlook/a1", Received: t0},
			{ID: "a2", Subject: "Lunch?", From: "dave@contoso.example", BodyPreview: "About the BUDGET meeting", WebLink: "https://outlook/a2", Received: t0.Add(time.Hour)},
			{ID: "a3", Subject: "Holiday plan", From: "erin@contoso.example", BodyPreview: "Beach", WebLink: "https://outlook/a3", Received: t0.Add(2 * time.Hour)},
		},
		Files: []graphuser.DriveItem{
			{ID: "f1", Name: "budget.xlsx", WebURL: "https://onedrive/f1", LastModified: t0, Size: 2048},
			{ID: "f2", Name: "plan.docx", WebURL: "https://onedrive/f2", LastModified: t0.Add(time.Hour), Size: 512},
			{ID: "f3", Name: "Archive", WebURL: "https://onedrive/f3", LastModified: t0.Add(-time.Hour), Folder: true},
		},
		Shared: []graphuser.DriveItem{
			{ID: "s1", Name: "Team budget 2027.xlsx", WebURL: "https://sharepoint/s1", LastModified: t0.Add(2 * time.Hour), Size: 4096},
		},
	})
	g.AddUser(bobO, graphuser.UserData{
		DisplayName: "Bob Sample", UPN: "bob@contoso.example",
		Messages: []graphuser.Message{{ID: "b1", Subject: "Secret budget for Bob", From: "x@y", Received: t0}},
	})
	return e, g
}

// delegated mints a Graph token for the user with the scopes, as OBO would.
func delegated(e *entra.Server, oid, scp string) string {
	now := time.Now()
	return e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": oid, "scp": scp,
		"azp": botID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0"})
}

func get(t *testing.T, g *graphuser.Server, path, tok string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", g.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := testenv.SharedCA().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: body is not JSON: %s", path, raw)
	}
	return resp.StatusCode, resp.Header, m
}

func errCode(m map[string]any) any {
	e, _ := m["error"].(map[string]any)
	return e["code"]
}

func TestMeAndSelect(t *testing.T) {
	e, g := setup(t)
	tok := delegated(e, aliceO, "User.Read openid profile")
	status, _, me := get(t, g, "/v1.0/me", tok)
	if status != 200 || me["displayName"] != "Alice Example" || me["id"] != aliceO || me["jobTitle"] != "Buyer" || me["userPrincipalName"] != "alice@contoso.example" {
		t.Fatalf("/me: %d %v", status, me)
	}
	if _, ok := me["department"]; ok {
		t.Error("department is not a default property")
	}
	status, _, me = get(t, g, "/v1.0/me?$select=displayName,department", tok)
	if status != 200 || me["department"] != "Purchasing" || me["jobTitle"] != nil || len(me) != 3 {
		t.Errorf("$select: %d %v", status, me)
	}
	if status, _, m := get(t, g, "/v1.0/me?$select=shoeSize", tok); status != 400 || errCode(m) != "BadRequest" {
		t.Errorf("unknown $select property: %d %v", status, m)
	}
	if status, _, m := get(t, g, "/v1.0/me/photo/$value", tok); status != 404 || errCode(m) != "ImageNotFound" {
		t.Errorf("photo: %d %v", status, m)
	}
}

func TestTokensAndPermissionsAreEnforced(t *testing.T) {
	e, g := setup(t)
	other := entra.New(tenant) // same tenant id, different keys: a forged token
	defer other.Close()
	now := time.Now()
	appOnly := e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": botID, "roles": []string{"Mail.Read"},
		"azp": botID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	expired := e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": aliceO, "scp": "User.Read Mail.Read",
		"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})
	cases := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"no token", "/v1.0/me", "", 401, "InvalidAuthenticationToken"},
		{"forged token", "/v1.0/me", delegated(other, aliceO, "User.Read"), 401, "InvalidAuthenticationToken"},
		{"expired token", "/v1.0/me", expired, 401, "InvalidAuthenticationToken"},
		{"token for another API", "/v1.0/me", e.MintSSOToken(entra.User{ObjectID: aliceO}, entra.SSOOptions{AppID: botID}), 401, "InvalidAuthenticationToken"},
		{"app-only token", "/v1.0/me/messages", appOnly, 400, "BadRequest"},
		{"profile without User.Read", "/v1.0/me", delegated(e, aliceO, "Mail.Read"), 403, "Authorization_RequestDenied"},
		{"mail without Mail.Read", "/v1.0/me/messages", delegated(e, aliceO, "User.Read"), 403, "ErrorAccessDenied"},
		{"files without Files.Read", "/v1.0/me/drive/root/children", delegated(e, aliceO, "User.Read Mail.Read"), 403, "accessDenied"},
		{"search without Files.Read", "/v1.0/me/drive/search(q='budget')", delegated(e, aliceO, "User.Read Mail.Read"), 403, "accessDenied"},
		{"user Graph does not know", "/v1.0/me", delegated(e, "c0000000-0000-4000-8000-000000000003", "User.Read"), 404, "Request_ResourceNotFound"},
	}
	for _, c := range cases {
		status, _, m := get(t, g, c.path, c.token)
		if status != c.status || errCode(m) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, m, c.status, c.code)
		}
		if _, ok := m["value"]; ok {
			t.Errorf("%s: data returned", c.name)
		}
	}
	// Scope names are case-insensitive; a broader permission also works.
	for _, scp := range []string{"user.read", "User.Read.All", "Files.Read.All mail.read user.read"} {
		if status, _, _ := get(t, g, "/v1.0/me", delegated(e, aliceO, scp)); status != 200 {
			t.Errorf("scp %q: %d", scp, status)
		}
	}
}

func TestMessagesSearchTopAndPaging(t *testing.T) {
	e, g := setup(t)
	tok := delegated(e, aliceO, "User.Read Mail.Read")
	ids := func(m map[string]any) string {
		var out []string
		for _, v := range m["value"].([]any) {
			out = append(out, v.(map[string]any)["id"].(string))
		}
		return strings.Join(out, ",")
	}
	cases := []struct{ query, want string }{
		{"", "a3,a2,a1"},
		{`$search="budget"`, "a2,a1"},
		{`$search="BUDGET carol"`, "a1"},
		{`$search="from:erin"`, "a3"},
		{`$search="subject:budget"`, "a1"},
		{`$search="nothing-matches"`, ""},
		{"$top=2", "a3,a2"},
	}
	for _, c := range cases {
		status, _, m := get(t, g, "/v1.0/me/messages?"+strings.ReplaceAll(url.PathEscape(c.query), "%3D", "="), tok)
		if status != 200 || ids(m) != c.want {
			t.Errorf("%q: %d %v, want %s", c.query, status, m, c.want)
		}
	}
	// Paging follows @odata.nextLink.
	_, _, page := get(t, g, "/v1.0/me/messages?$top=2", tok)
	next, _ := page["@odata.nextLink"].(string)
	if !strings.HasPrefix(next, g.URL) {
		t.Fatalf("nextLink = %v", page["@odata.nextLink"])
	}
	_, _, page2 := get(t, g, strings.TrimPrefix(next, g.URL), tok)
	if ids(page2) != "a1" || page2["@odata.nextLink"] != nil {
		t.Errorf("second page: %v", page2)
	}
	// Shape of a message and $select.
	_, _, m := get(t, g, "/v1.0/me/messages?$top=1&$select=subject,from", tok)
	msg := m["value"].([]any)[0].(map[string]any)
	from := msg["from"].(map[string]any)["emailAddress"].(map[string]any)
	if msg["subject"] != "Holiday plan" || from["address"] != "erin@contoso.example" || msg["bodyPreview"] != nil || msg["id"] != "a3" {
		t.Errorf("message: %v", msg)
	}
	_, _, m = get(t, g, "/v1.0/me/messages?$search=%22carol%22", tok)
	msg = m["value"].([]any)[0].(map[string]any)
	from = msg["from"].(map[string]any)["emailAddress"].(map[string]any)
	if from["name"] != "Carol" || from["address"] != "carol@contoso.example" || msg["receivedDateTime"] != "2026-03-02T09:00:00Z" || msg["webLink"] != "https://outlook/a1" {
		t.Errorf("message: %v", msg)
	}
	for _, bad := range []string{"$top=0", "$top=x", "$search=budget", "$select=nope", `$search=%22a%22&$skip=1`} {
		if status, _, m := get(t, g, "/v1.0/me/messages?"+bad, tok); status != 400 || errCode(m) != "BadRequest" {
			t.Errorf("%s: %d %v", bad, status, m)
		}
	}
}

func names(m map[string]any) string {
	var out []string
	for _, v := range m["value"].([]any) {
		it := v.(map[string]any)
		if r, ok := it["remoteItem"].(map[string]any); ok {
			out = append(out, "remote:"+r["name"].(string))
			continue
		}
		out = append(out, it["name"].(string))
	}
	return strings.Join(out, ",")
}

func TestRootChildrenListByNameAndPage(t *testing.T) {
	e, g := setup(t)
	tok := delegated(e, aliceO, "Files.Read")
	status, _, m := get(t, g, "/v1.0/me/drive/root/children", tok)
	if status != 200 || names(m) != "Archive,budget.xlsx,plan.docx" {
		t.Fatalf("children: %d %v", status, m)
	}
	first := m["value"].([]any)[2].(map[string]any)
	if first["webUrl"] != "https://onedrive/f2" || first["size"] != float64(512) || first["lastModifiedDateTime"] != "2026-03-02T10:00:00Z" || first["file"] == nil {
		t.Errorf("plan.docx: %v", first)
	}
	if m["value"].([]any)[0].(map[string]any)["folder"] == nil {
		t.Error("Archive is not a folder")
	}
	// Paging through @odata.nextLink.
	_, _, page := get(t, g, "/v1.0/me/drive/root/children?$top=2&$select=name,lastModifiedDateTime", tok)
	next, _ := page["@odata.nextLink"].(string)
	if names(page) != "Archive,budget.xlsx" || !strings.HasPrefix(next, g.URL) {
		t.Fatalf("first page: %v", page)
	}
	if _, ok := page["value"].([]any)[0].(map[string]any)["webUrl"]; ok {
		t.Error("$select not applied")
	}
	_, _, page2 := get(t, g, strings.TrimPrefix(next, g.URL), tok)
	if names(page2) != "plan.docx" || page2["@odata.nextLink"] != nil {
		t.Errorf("second page: %v", page2)
	}
	// OneDrive for Business orders by name or url only.
	if status, _, m := get(t, g, "/v1.0/me/drive/root/children?$orderby=lastModifiedDateTime%20desc", tok); status != 400 || errCode(m) != "notSupported" {
		t.Errorf("$orderby by date: %d %v", status, m)
	}
	if _, _, m := get(t, g, "/v1.0/me/drive/root/children?$orderby=name%20desc", tok); names(m) != "plan.docx,budget.xlsx,Archive" {
		t.Errorf("$orderby=name desc: %v", names(m))
	}
}

func TestSearchReturnsSharedItemsAsRemoteItems(t *testing.T) {
	e, g := setup(t)
	search := func(q, scp string) (int, map[string]any) {
		status, _, m := get(t, g, "/v1.0/me/drive/search(q="+url.PathEscape(q)+")", delegated(e, aliceO, scp))
		return status, m
	}
	status, m := search("'budget'", "Files.Read.All")
	if status != 200 || names(m) != "budget.xlsx,remote:Team budget 2027.xlsx" {
		t.Fatalf("search: %d %v", status, m)
	}
	shared := m["value"].([]any)[1].(map[string]any)
	remote := shared["remoteItem"].(map[string]any)
	if remote["webUrl"] != "https://sharepoint/s1" || remote["size"] != float64(4096) || remote["lastModifiedDateTime"] != "2026-03-02T11:00:00Z" {
		t.Errorf("remoteItem: %v", remote)
	}
	if _, ok := shared["webUrl"]; ok {
		t.Error("a shared item's link must be read from remoteItem")
	}
	// Files.Read finds the user's own files only.
	if _, m := search("'budget'", "Files.Read"); names(m) != "budget.xlsx" {
		t.Errorf("Files.Read: %v", names(m))
	}
	// OData literal: a doubled quote is one quote; a lone one is a syntax error.
	for q, want := range map[string]int{"'plan'": 200, "'it''s'": 200, "'it's'": 400, "plan": 400, "''": 400, "'  '": 400} {
		if status, m := search(q, "Files.Read"); status != want {
			t.Errorf("q=%s: %d %v, want %d", q, status, m, want)
		}
	}
	if status, _, m := get(t, g, "/v1.0/me/drive/nonsense", delegated(e, aliceO, "Files.Read")); status != 400 {
		t.Errorf("unknown drive function: %d %v", status, m)
	}
}

func TestDeprecatedRecentNoLongerReturnsData(t *testing.T) {
	e, g := setup(t)
	status, _, m := get(t, g, "/v1.0/me/drive/recent", delegated(e, aliceO, "Files.Read"))
	if status != 200 || len(m["value"].([]any)) != 0 {
		t.Errorf("drive/recent after November 2026: %d %v", status, m)
	}
}

func TestUsersSeeOnlyTheirOwnData(t *testing.T) {
	e, g := setup(t)
	_, _, am := get(t, g, `/v1.0/me/messages?$search=%22budget%22`, delegated(e, aliceO, "Mail.Read"))
	_, _, bm := get(t, g, `/v1.0/me/messages?$search=%22budget%22`, delegated(e, bobO, "Mail.Read"))
	aj, _ := json.Marshal(am)
	bj, _ := json.Marshal(bm)
	if strings.Contains(string(aj), "Secret budget for Bob") || !strings.Contains(string(bj), "Secret budget for Bob") || strings.Contains(string(bj), "Quarterly") {
		t.Errorf("alice saw %s; bob saw %s", aj, bj)
	}
	_, _, bobFiles := get(t, g, "/v1.0/me/drive/search(q='budget')", delegated(e, bobO, "Files.Read.All"))
	if len(bobFiles["value"].([]any)) != 0 {
		t.Errorf("bob found Alice's files: %v", bobFiles)
	}
	if g.Calls(aliceO) != 1 || g.Calls(bobO) != 2 {
		t.Errorf("calls: alice %d bob %d", g.Calls(aliceO), g.Calls(bobO))
	}
}

func TestFaultsAndRevocation(t *testing.T) {
	e, g := setup(t)
	tok := delegated(e, aliceO, "User.Read")
	g.FailNext(http.StatusTooManyRequests, "7")
	g.FailNext(http.StatusServiceUnavailable, "")
	status, h, m := get(t, g, "/v1.0/me", tok)
	if status != 429 || h.Get("Retry-After") != "7" || errCode(m) != "TooManyRequests" {
		t.Errorf("first: %d %v %v", status, h, m)
	}
	if status, _, _ := get(t, g, "/v1.0/me", tok); status != 503 {
		t.Errorf("second: %d", status)
	}
	if status, _, _ := get(t, g, "/v1.0/me", tok); status != 200 {
		t.Errorf("third: %d", status)
	}

	g.Now = func() time.Time { return time.Now().Add(time.Second) }
	g.RevokeSessions(aliceO)
	// A client that did not declare the cp1 capability is not challenged: its token works on.
	if status, _, _ := get(t, g, "/v1.0/me", tok); status != 200 {
		t.Fatalf("a token without xms_cc was challenged after revocation: %d", status)
	}
	now := time.Now()
	capable := e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": aliceO, "scp": "User.Read",
		"azp": botID, "xms_cc": []string{"cp1"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0"})
	status, h, m = get(t, g, "/v1.0/me", capable)
	wa := h.Get("WWW-Authenticate")
	if status != 401 || !strings.Contains(wa, `error="insufficient_claims"`) {
		t.Fatalf("after revocation: %d %q %v", status, wa, m)
	}
	claims := wa[strings.Index(wa, `claims="`)+8 : len(wa)-1]
	dec, err := base64.StdEncoding.DecodeString(claims)
	if err != nil || !strings.Contains(string(dec), `"nbf"`) {
		t.Errorf("claims challenge %q: %s %v", claims, dec, err)
	}
	// A token issued after the event works.
	later := e.Sign(map[string]any{"iss": e.Issuer(), "aud": entra.GraphResource, "tid": tenant, "oid": aliceO, "scp": "User.Read",
		"xms_cc": []string{"cp1"}, "iat": time.Now().Add(5 * time.Second).Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	if status, _, _ := get(t, g, "/v1.0/me", later); status != 200 {
		t.Errorf("fresh token after revocation: %d", status)
	}
}
