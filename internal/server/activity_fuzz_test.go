package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/server"
)

// fuzzSecret stands for the channel's bearer token: it must never reach the log.
const fuzzSecret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWNoYW5uZWwtdG9rZW4.c2lnbmF0dXJlLW9mLXRoZS1jaGFubmVs"

// fuzzAuth accepts every token but records that it ran and on which activity.
type fuzzAuth struct{ seen []*botframework.Activity }

func (a *fuzzAuth) Authenticate(_ context.Context, authz string, act *botframework.Activity) (*botframework.Claims, error) {
	cp := *act
	a.seen = append(a.seen, &cp)
	return &botframework.Claims{}, nil
}

type fuzzBot struct{ got []*botframework.Activity }

func (b *fuzzBot) OnActivity(_ context.Context, act *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error) {
	b.got = append(b.got, act)
	return nil, nil, nil
}

type fuzzTrust struct{ urls []string }

func (t *fuzzTrust) Trust(u string) { t.urls = append(t.urls, u) }

// FuzzActivityJSON posts arbitrary bodies to the messaging endpoint, each twice. Whatever the
// body: the answer is 200, 400 or 413, never a 500; the bot, the authenticator and the
// serviceUrl trust list see only activities that pass Validate and carry an https serviceUrl;
// a refused body reaches none of them; a re-delivery (same id) does not run the bot again; the
// activity the bot got survives a JSON round trip unchanged; and the log never holds the
// bearer token.
func FuzzActivityJSON(f *testing.F) {
	base := map[string]any{"type": "message", "id": "act-1", "serviceUrl": "https://smba.trafficmanager.net/amer/",
		"channelId": "msteams", "conversation": map[string]any{"id": "a:1", "tenantId": "t1"},
		"from": map[string]any{"id": "29:u", "aadObjectId": "00000000-0000-0000-0000-000000000001"}, "text": "jira mine"}
	variant := func(k string, v any) []byte {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	for _, b := range [][]byte{
		variant("", nil),
		variant("type", "invoke"),
		variant("value", map[string]any{"id": "x", "connectionName": "c", "token": "t"}),
		variant("serviceUrl", "http://smba.trafficmanager.net/amer/"),
		variant("serviceUrl", "https://user:pw@smba.trafficmanager.net/amer/"),
		variant("serviceUrl", "https://smba.trafficmanager.net/amer/?x=1#f"),
		variant("serviceUrl", "javascript:alert(1)"),
		variant("serviceUrl", nil),
		variant("channelId", ""),
		variant("conversation", "a:1"),
		variant("id", nil),
		variant("attachments", []any{map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": map[string]any{"body": []any{}}}}),
		variant("entities", []any{map[string]any{"type": "mention"}}),
		variant("channelData", map[string]any{"tenant": map[string]any{"id": "t1"}}),
		[]byte(`{"TYPE":"message","SERVICEURL":"https://smba.trafficmanager.net/amer/","channelid":"msteams","conversation":{"id":"a"}}`),
		[]byte(`{"type":"message","type":"invoke","serviceUrl":"https://a.example/","channelId":"msteams","conversation":{"id":"a"}}`),
		[]byte(`{"type":"message"}`), []byte(`null`), []byte(`[]`), []byte(`{}`), []byte(`{"type":`), []byte("\xff"),
		[]byte(`{"type":"message","serviceUrl":"https://a.example/","channelId":"msteams","conversation":{"id":"a"},"value":1e999}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		auth, b, tr := &fuzzAuth{}, &fuzzBot{}, &fuzzTrust{}
		var logs bytes.Buffer
		m := &server.Messages{Auth: auth, Bot: b, Trust: tr, Seen: &server.Dedupe{}, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
		var codes []int
		for range 2 {
			req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			req.Header.Set("Authorization", "Bearer "+fuzzSecret)
			w := httptest.NewRecorder()
			m.ServeHTTP(w, req)
			codes = append(codes, w.Code)
		}
		if strings.Contains(logs.String(), fuzzSecret) || strings.Contains(logs.String(), "c2VjcmV0LWNoYW5uZWwtdG9rZW4") {
			t.Fatalf("the bearer token reached the log:\n%s", logs.String())
		}
		if codes[0] != codes[1] {
			t.Fatalf("the same body got %d then %d", codes[0], codes[1])
		}
		switch codes[0] {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(b.got) != 0 || len(auth.seen) != 0 || len(tr.urls) != 0 {
				t.Fatalf("refused body (%d) reached the bot %d, the authenticator %d, the trust list %d times", codes[0], len(b.got), len(auth.seen), len(tr.urls))
			}
			return
		default:
			t.Fatalf("status %d for %q\n%s", codes[0], body, logs.String())
		}
		var first botframework.Activity
		if err := json.Unmarshal(body, &first); err != nil {
			t.Fatalf("accepted a body that is not JSON: %v", err)
		}
		wantRuns := 2
		if first.ID != "" {
			wantRuns = 1 // the re-delivery is answered without running the bot again
		}
		if len(b.got) != wantRuns || len(auth.seen) != 2 || len(tr.urls) != 2 {
			t.Fatalf("id %q: bot ran %d times (want %d), authenticator %d, trust %d", first.ID, len(b.got), wantRuns, len(auth.seen), len(tr.urls))
		}
		for _, a := range append(append([]*botframework.Activity{}, b.got...), auth.seen...) {
			if err := a.Validate(); err != nil {
				t.Fatalf("an invalid activity got through: %v", err)
			}
			if err := botframework.CheckServiceURL(a.ServiceURL, false); err != nil {
				t.Fatalf("serviceUrl %q got through: %v", a.ServiceURL, err)
			}
		}
		for _, u := range tr.urls {
			if u != first.ServiceURL {
				t.Fatalf("trusted %q for an activity from %q", u, first.ServiceURL)
			}
		}
		once, err := json.Marshal(b.got[0])
		if err != nil {
			t.Fatalf("the accepted activity does not encode: %v", err)
		}
		var back botframework.Activity
		if err := json.Unmarshal(once, &back); err != nil {
			t.Fatalf("the accepted activity's encoding does not decode: %v", err)
		}
		twice, _ := json.Marshal(&back)
		if !bytes.Equal(once, twice) {
			t.Fatalf("round trip changed the activity:\n%s\n%s", once, twice)
		}
	})
}
