package appinsights_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/appinsights"
)

const ikey = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

func verify(tok, aud string) (map[string]any, error) {
	if tok == "good" && aud == "https://monitor.azure.com" {
		return map[string]any{"oid": "uami"}, nil
	}
	return nil, errors.New("invalid")
}

func event(mut func(m map[string]any)) string {
	m := map[string]any{
		"name": "Microsoft.ApplicationInsights.Event", "time": "2026-12-01T10:00:00.000Z", "iKey": ikey,
		"data": map[string]any{"baseType": "EventData", "baseData": map[string]any{"ver": 2, "name": "onbehalf.audit", "properties": map[string]string{"a": "b"}}},
	}
	if mut != nil {
		mut(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// The stand-in accepts well-formed custom events and refuses, item by item, every envelope the
// schema does not allow; the batch status says whether all, some or none were accepted.
func TestTrackEnforcesTheEventSchema(t *testing.T) {
	s := appinsights.Start(ikey, verify, "uami")
	defer s.Close()
	post := func(path, token string, lines ...string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(strings.Join(lines, "\n")))
		req.Header.Set("Content-Type", "application/x-json-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := testenv.SharedCA().Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	data := func(m map[string]any) map[string]any { return m["data"].(map[string]any) }
	bad := []string{
		event(func(m map[string]any) { m["name"] = "Microsoft.ApplicationInsights.Message" }),
		event(func(m map[string]any) { m["iKey"] = "11111111-1111-1111-1111-111111111111" }),
		event(func(m map[string]any) { data(m)["baseType"] = "MessageData" }),
		event(func(m map[string]any) { data(m)["baseData"].(map[string]any)["ver"] = 1 }),
		event(func(m map[string]any) { data(m)["baseData"].(map[string]any)["name"] = "" }),
		event(func(m map[string]any) { m["time"] = "2026-12-01 10:00" }),
		event(func(m map[string]any) {
			data(m)["baseData"].(map[string]any)["properties"] = map[string]string{strings.Repeat("k", 151): "v"}
		}),
		`{"not":"an envelope"`,
	}
	if st, _ := post("/v2.1/track", "good", append([]string{event(nil)}, bad...)...); st != http.StatusPartialContent {
		t.Fatalf("mixed batch: %d, want 206", st)
	}
	if n := len(s.Events()); n != 1 {
		t.Fatalf("%d events accepted, want the one valid", n)
	}
	for i, b := range bad {
		if st, _ := post("/v2.1/track", "good", b); st != http.StatusBadRequest {
			t.Errorf("bad envelope %d: %d, want 400", i, st)
		}
	}
	if st, _ := post("/v2.1/track", "", event(nil)); st != http.StatusUnauthorized {
		t.Errorf("no token: %d", st)
	}
	if st, _ := post("/v2/track", "good", event(nil)); st != http.StatusBadRequest {
		t.Errorf("v2/track on an Entra-only component: %d", st)
	}
	if len(s.Events()) != 1 {
		t.Fatalf("refused requests stored events: %d", len(s.Events()))
	}
}
