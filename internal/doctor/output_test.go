package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeGUIDMatchesTheTokenStoreSegment(t *testing.T) {
	got, err := EncodeGUID("5b404cf4-a79d-4cfe-b866-24bf8e1a4921") // Bot Service Token Store
	if err != nil || got != TokenStoreAppSegment {
		t.Fatalf("EncodeGUID = %q, %v; want %s", got, err, TokenStoreAppSegment)
	}
	sub, err := TokenStoreSubject(tTenant, "conn-1")
	if err != nil || sub != "/eid1/c/pub/t/USo8j31rL06aHD1ef5scLQ/a/9ExAW52n_ky4ZiS_jhpJIQ/conn-1" {
		t.Fatalf("TokenStoreSubject = %q, %v", sub, err)
	}
	for _, bad := range []string{"", "not-a-guid", "5b404cf4a79d4cfeb86624bf8e1a4921", "5b404cf4-a79d-4cfe-b866-24bf8e1a492z"} {
		if _, err := EncodeGUID(bad); err == nil {
			t.Errorf("EncodeGUID(%q) accepted", bad)
		}
	}
}

func TestTextReportGroupsByCategoryWithFixesUnderFailures(t *testing.T) {
	f := goodFixture(t)
	obj(f.App, "api")["requestedAccessTokenVersion"] = nil
	o := f.offlineOptions(t)
	var out bytes.Buffer
	o.Stdout, o.Stderr = &out, &out
	if code := Run(context.Background(), o); code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	text := out.String()
	for _, cat := range []string{CatBot, CatEndpoint, CatApp, CatFIC, CatConnection, CatManifest, CatGraph, CatSettings, CatKeyVault, CatConnectors} {
		if strings.Count(text, "\n"+cat+"\n")+boolInt(strings.HasPrefix(text, cat+"\n")) != 1 {
			t.Errorf("category %q is not one heading", cat)
		}
	}
	wantLines := []string{
		"  ✗ Access token version 2: api.requestedAccessTokenVersion is null (v1), not 2",
		"      fix: PATCH https://graph.microsoft.com/v1.0/applications(appId='" + tAppID + "')",
		`           {"api":{"knownClientApplications":[],"oauth2PermissionScopes":[{"id":"754c9c36-1ceb-4c19-bbc0-b1ac8f3e9e72"`, // the whole api: scopes and
		`"preAuthorizedApplications":[{"appId":"1fec8e78-bce4-4aaf-ab1b-5451cc387264"`,                                           // pre-authorizations kept,
		`,"requestedAccessTokenVersion":2}}`, // the token version fixed
		"  ✓ Sign-in audience single tenant: AzureADMyOrg",
		"  - Refuses unauthenticated POST with 401: offline mode",
		"  i Client secrets named, not inlined",
		"32 passed, 1 failed, 0 warnings, 4 info, 2 skipped",
	}
	for _, w := range wantLines {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
	if strings.Count(text, "fix:") != 1 {
		t.Errorf("fix lines only under failures and warnings:\n%s", text)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestJSONReportShape(t *testing.T) {
	f := goodFixture(t)
	f.App["signInAudience"] = "AzureADMultipleOrgs"
	o := f.offlineOptions(t)
	var out bytes.Buffer
	o.JSON, o.Stdout = true, &out
	if code := Run(context.Background(), o); code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Checks []map[string]any `json:"checks"`
		Sum    map[string]int   `json:"summary"`
	}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Checks) != len(allChecks) {
		t.Fatalf("%d checks", len(doc.Checks))
	}
	for _, c := range doc.Checks {
		if len(c) != 5 {
			t.Fatalf("check has fields %v, want category, label, status, detail, fix", c)
		}
		for _, k := range []string{"category", "label", "status", "detail", "fix"} {
			if _, ok := c[k].(string); !ok {
				t.Fatalf("check field %s missing or not a string: %v", k, c)
			}
		}
	}
	want := map[string]int{"pass": 32, "fail": 1, "warn": 0, "info": 4, "skip": 2}
	for k, v := range want {
		if doc.Sum[k] != v {
			t.Errorf("summary %s = %d, want %d (%v)", k, doc.Sum[k], v, doc.Sum)
		}
	}
	if len(doc.Sum) != 5 {
		t.Errorf("summary keys: %v", doc.Sum)
	}
}

func TestMainExitStatuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := func(name string) string { return filepath.Join(testdataDir, name) }
	f := goodFixture(t)
	f.Manifest["validDomains"] = []any{}
	broken := writeJSONFile(t, dir, "manifest.json", f.Manifest)
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"clean deployment", []string{"--app", good("app.json"), "--bot", good("bot.json"), "--connection", good("connection.json"), "--manifest", good("manifest.json"), "--settings", good("settings.json")}, ExitOK, "0 failed"},
		{"a failure", []string{"--app", good("app.json"), "--manifest", broken}, ExitFailed, "*.botframework.com is not in validDomains"},
		{"no input", nil, ExitUsage, "give offline files"},
		{"unknown flag", []string{"--nope"}, ExitUsage, "flag provided but not defined"},
		{"missing file", []string{"--app", filepath.Join(dir, "none.json")}, ExitUsage, "--app"},
		{"malformed JSON", []string{"--bot", bad}, ExitUsage, "not the expected JSON"},
		{"malformed settings", []string{"--settings", bad}, ExitUsage, "--settings"},
		{"live and offline mixed", []string{"--bot-name", "b", "--subscription", "s", "--resource-group", "r", "--app", good("app.json")}, ExitUsage, "only --manifest"},
		{"live incomplete", []string{"--bot-name", "b"}, ExitUsage, "needs --subscription, --resource-group and --bot-name"},
		{"live flag offline", []string{"--app", good("app.json"), "--graph-url", "https://x"}, ExitUsage, "for live mode"},
		{"stray argument", []string{"--app", good("app.json"), "extra"}, ExitUsage, "unexpected argument"},
		{"help", []string{"--help"}, ExitOK, "usage:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &out, func(string) string { return "" })
			if code != tc.code || !strings.Contains(out.String(), tc.out) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s", code, tc.code, tc.out, out.String())
			}
		})
	}
}

func TestParseLiveArgsTakesAzdEnvironment(t *testing.T) {
	env := map[string]string{"AZURE_SUBSCRIPTION_ID": tSub, "AZURE_RESOURCE_GROUP": tRG}
	o, err := parseArgs([]string{"--bot-name", tBot, "--graph-url", "https://graph.microsoft.us", "--arm-url", "https://management.usgovcloudapi.net", "--obo-scopes", "User.Read,Mail.Read", "--fix", "--yes"},
		nil, nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	l := o.Live
	if l == nil || l.Subscription != tSub || l.ResourceGroup != tRG || l.BotName != tBot || l.GraphURL != "https://graph.microsoft.us" || l.ARMURL != "https://management.usgovcloudapi.net" {
		t.Fatalf("live config: %+v", l)
	}
	if !o.Fix || !o.Yes || strings.Join(o.OBOScopes, " ") != "User.Read Mail.Read" {
		t.Errorf("options: %+v", o)
	}
	if _, err := parseArgs([]string{"-h"}, &bytes.Buffer{}, nil, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// The handler's GRAPH_SCOPES setting says which scopes OBO asks for; --obo-scopes overrides it.
func TestOBOScopesFollowTheHandlerSetting(t *testing.T) {
	f := goodFixture(t)
	f.setSetting("GRAPH_SCOPES", "User.Read Calendars.Read")
	r, _, _ := runReport(t, f.offlineOptions(t))
	c, _ := r.Find("graph.grants")
	if c.Status != StatusWarn || !strings.Contains(c.Detail, "Calendars.Read") || strings.Contains(c.Detail, "Mail.Read") {
		t.Errorf("graph.grants: %+v", c)
	}
}

func TestOBOScopesAreAParameter(t *testing.T) {
	f := goodFixture(t)
	o := f.offlineOptions(t)
	o.OBOScopes = []string{"User.Read", "Sites.Read.All"}
	r, _, _ := runReport(t, o)
	c, _ := r.Find("graph.grants")
	if c.Status != StatusWarn || !strings.Contains(c.Detail, "Sites.Read.All") || strings.Contains(c.Detail, "Mail.Read") {
		t.Errorf("graph.grants: %+v", c)
	}
}

// A credential Graph and ARM refuse stops the run with advice, rather than a report full
// of skips that looks healthy.
func TestLiveRefusedLoginIsAUsageError(t *testing.T) {
	env := goodFixture(t).startLive(t)
	o := env.opts
	o.Live.Credential = noTokens{}
	var out, errb bytes.Buffer
	o.Stdout, o.Stderr = &out, &errb
	if code := Run(context.Background(), o); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "az login") || out.Len() != 0 {
		t.Errorf("stderr %q, stdout %q", errb.String(), out.String())
	}
}

// The doctor asks for tokens for exactly the Graph and ARM base URLs it was given.
func TestLiveAsksForTheConfiguredAudiences(t *testing.T) {
	env := goodFixture(t).startLive(t)
	runReport(t, env.opts)
	seen := map[string]bool{}
	for _, s := range env.cred.Scopes() {
		seen[s] = true
	}
	if len(seen) != 2 || !seen[env.graph.Scope()] || !seen[env.arm.Scope()] {
		t.Errorf("scopes asked: %v", seen)
	}
}
