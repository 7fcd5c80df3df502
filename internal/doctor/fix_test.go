package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// breakFiveWays breaks every part of the registration --fix repairs.
func breakFiveWays(f *fixture) {
	f.App["identifierUris"] = []any{"api://" + tAppID}             // 1 identifier URI
	obj(f.App, "api")["oauth2PermissionScopes"] = []any{}          // 2 scope
	obj(f.App, "api")["preAuthorizedApplications"] = []any{}       // 3 pre-authorized clients
	obj(f.App, "web")["redirectUris"] = []any{"https://localhost"} // 4 redirect URI
	obj(f.App, "api")["requestedAccessTokenVersion"] = 1           // 5 token version
}

var fixChecks = []string{"app.identifier-uri", "app.scope", "app.preauthorized", "app.redirect-uri", "app.token-version"}

func TestFixRepairsFiveBreaksAndSecondRunFindsNothing(t *testing.T) {
	f := goodFixture(t)
	breakFiveWays(f)
	env := f.startLive(t)

	before, code, _ := runReport(t, env.opts)
	if code != ExitFailed {
		t.Fatalf("broken registration: exit %d", code)
	}
	for _, id := range fixChecks {
		if c, _ := before.Find(id); c.Status != StatusFail {
			t.Fatalf("%s before the fix: %s", id, c.Status)
		}
	}

	var out, errb bytes.Buffer
	o := env.opts
	o.Fix, o.Yes, o.Stdout, o.Stderr = true, true, &out, &errb
	if code := Run(context.Background(), o); code != ExitOK {
		t.Fatalf("--fix --yes: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	text := out.String()
	for _, want := range []string{"Planned change to the app registration", "PATCH " + env.graph.URL + "/v1.0/applications(appId='" + tAppID + "')", "Applied. Checking again:", "0 failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	app := env.graph.App(tAppID)
	uris := app["identifierUris"].([]any)
	if len(uris) != 2 || uris[0] != "api://"+tAppID || uris[1] != "api://botid-"+tAppID {
		t.Errorf("identifierUris after fix: %v (the old one is kept)", uris)
	}
	if rd := obj(app, "web")["redirectUris"].([]any); len(rd) != 2 || rd[1] != BotFrameworkRedirectURI {
		t.Errorf("redirectUris after fix: %v", rd)
	}

	after, code, _ := runReport(t, env.opts)
	if code != ExitOK {
		t.Fatalf("after the fix: exit %d %+v", code, after.Summary)
	}
	for _, id := range fixChecks {
		if c, _ := after.Find(id); c.Status != StatusPass {
			t.Errorf("%s after the fix: %s %s", id, c.Status, c.Detail)
		}
	}

	// Idempotent: a second --fix plans nothing and sends no PATCH.
	patches := countPatches(env.graph.Requests())
	out.Reset()
	if code := Run(context.Background(), o); code != ExitOK {
		t.Fatalf("second --fix: exit %d", code)
	}
	if !strings.Contains(out.String(), "Nothing to fix in the app registration.") {
		t.Errorf("second run:\n%s", out.String())
	}
	if n := countPatches(env.graph.Requests()); n != patches {
		t.Errorf("second run sent %d PATCH requests", n-patches)
	}
}

func countPatches(reqs []string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, "PATCH ") {
			n++
		}
	}
	return n
}

// A scope that exists but is disabled is re-enabled in place (same id), which Graph allows.
func TestFixEnablesDisabledScopeKeepingItsID(t *testing.T) {
	f := goodFixture(t)
	scope := obj(f.App, "api", "oauth2PermissionScopes", 0)
	scope["isEnabled"] = false
	id := scope["id"]
	env := f.startLive(t)
	o := env.opts
	o.Fix, o.Yes = true, true
	if r, code, stderr := runReport(t, o); code != ExitOK {
		t.Fatalf("exit %d %+v %s", code, r.Summary, stderr)
	}
	got := obj(env.graph.App(tAppID), "api", "oauth2PermissionScopes", 0)
	if got["id"] != id || got["isEnabled"] != true {
		t.Errorf("scope after fix: %v", got)
	}
}

func TestFixAsksAndChangesNothingWithoutYes(t *testing.T) {
	f := goodFixture(t)
	obj(f.App, "api")["requestedAccessTokenVersion"] = nil
	env := f.startLive(t)
	var out bytes.Buffer
	o := env.opts
	o.Fix, o.Stdout, o.Stderr, o.Stdin = true, &out, &out, strings.NewReader("n\n")
	if code := Run(context.Background(), o); code != ExitFailed {
		t.Fatalf("declined fix: exit %d", code)
	}
	if !strings.Contains(out.String(), "[y/N]") || !strings.Contains(out.String(), "Nothing changed.") {
		t.Errorf("output:\n%s", out.String())
	}
	if countPatches(env.graph.Requests()) != 0 {
		t.Error("a PATCH was sent although the user declined")
	}

	out.Reset()
	o.Stdin = strings.NewReader("y\n")
	if code := Run(context.Background(), o); code != ExitOK {
		t.Fatalf("accepted fix: exit %d\n%s", code, out.String())
	}
	if countPatches(env.graph.Requests()) != 1 {
		t.Errorf("want one PATCH, requests: %v", env.graph.Requests())
	}
}

func TestFixOfflineExplainsLiveModeIsNeeded(t *testing.T) {
	f := goodFixture(t)
	breakFiveWays(f)
	var out bytes.Buffer
	o := f.offlineOptions(t)
	o.Fix, o.Yes, o.Stdout, o.Stderr = true, true, &out, &out
	if code := Run(context.Background(), o); code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "fixing the app registration needs live mode") {
		t.Errorf("output:\n%s", out.String())
	}
}

// With --json --fix, stdout holds only the final report; the plan goes to stderr.
func TestFixJSONKeepsStdoutOneDocument(t *testing.T) {
	f := goodFixture(t)
	breakFiveWays(f)
	env := f.startLive(t)
	var out, errb bytes.Buffer
	o := env.opts
	o.Fix, o.Yes, o.JSON, o.Stdout, o.Stderr = true, true, true, &out, &errb
	if code := Run(context.Background(), o); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
	}
	if r.Summary.Fail != 0 || !strings.Contains(errb.String(), "PATCH ") {
		t.Errorf("summary %+v, stderr %s", r.Summary, errb.String())
	}
}

func TestPlanAppFixIsEmptyForCorrectRegistrationAndNil(t *testing.T) {
	s, err := LoadOffline(OfflineFiles{App: testdataDir + "/app.json"})
	if err != nil {
		t.Fatal(err)
	}
	if p := PlanAppFix(s.App); p != nil {
		t.Errorf("plan for a correct app: %v", p)
	}
	if p := PlanAppFix(nil); p != nil {
		t.Errorf("plan for no app: %v", p)
	}
}
