package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/server"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

type countingAuth struct{ calls atomic.Int32 }

func (a *countingAuth) Authenticate(context.Context, string, *botframework.Activity) (*botframework.Claims, error) {
	a.calls.Add(1)
	return &botframework.Claims{}, nil
}

type countingBot struct{ calls atomic.Int32 }

func (b *countingBot) OnActivity(context.Context, *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error) {
	b.calls.Add(1)
	return nil, &bot.Turn{Outcome: "ok"}, nil
}

type countingTrust struct{ calls atomic.Int32 }

func (t *countingTrust) Trust(string) { t.calls.Add(1) }

// A serviceUrl that is not a plain origin and path gets 400 before authentication, the bot,
// the trust list or the de-duplication run; http to a loopback host passes only when local
// mode allows it.
func TestServiceURLIsCheckedBeforeAnythingRuns(t *testing.T) {
	for _, tc := range []struct {
		serviceURL string
		local      bool
		want       int
	}{
		{"https://smba.trafficmanager.net/amer/", false, http.StatusOK},
		{"https://smba.trafficmanager.net/amer/?x=1", false, http.StatusBadRequest},
		{"https://smba.trafficmanager.net/amer/#x", false, http.StatusBadRequest},
		{"https://u:p@smba.trafficmanager.net/amer/", false, http.StatusBadRequest},
		{"http://smba.trafficmanager.net/amer/", false, http.StatusBadRequest},
		{"http://localhost:56150/_connector", false, http.StatusBadRequest},
		{"http://localhost:56150/_connector", true, http.StatusOK},
		{"http://smba.trafficmanager.net/amer/", true, http.StatusBadRequest},
	} {
		auth, b, trust := &countingAuth{}, &countingBot{}, &countingTrust{}
		var logs bytes.Buffer
		logcheck.Watch(t, logs.String)
		seen := &server.Dedupe{}
		m := &server.Messages{Auth: auth, Bot: b, Trust: trust, Seen: seen, AllowLoopbackHTTP: tc.local,
			Log: slog.New(slog.NewJSONHandler(&logs, nil))}
		act := map[string]any{"type": "message", "id": "act-1", "serviceUrl": tc.serviceURL, "channelId": "msteams",
			"conversation": map[string]any{"id": "a:1"}, "from": map[string]any{"id": "29:u"}, "text": "help"}
		post := func() int {
			body, _ := json.Marshal(act)
			req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer x")
			w := httptest.NewRecorder()
			m.ServeHTTP(w, req)
			return w.Code
		}
		if got := post(); got != tc.want {
			t.Errorf("%q (local %v): status %d, want %d; log %s", tc.serviceURL, tc.local, got, tc.want, logs.String())
			continue
		}
		if tc.want == http.StatusOK {
			continue
		}
		if n := auth.calls.Load() + b.calls.Load() + trust.calls.Load(); n != 0 {
			t.Errorf("%q: authentication, bot or trust ran %d times for a refused activity", tc.serviceURL, n)
		}
		if !strings.Contains(logs.String(), `"reason":"malformed activity: serviceUrl`) || strings.Contains(logs.String(), "u:p@") {
			t.Errorf("%q: the log line does not give the reason alone: %s", tc.serviceURL, logs.String())
		}
		// The refused delivery was not remembered: the same id with a good serviceUrl runs.
		act["serviceUrl"] = "https://smba.trafficmanager.net/amer/"
		if got := post(); got != http.StatusOK || b.calls.Load() != 1 {
			t.Errorf("%q: the good redelivery got %d and ran the bot %d times", tc.serviceURL, got, b.calls.Load())
		}
	}
}
