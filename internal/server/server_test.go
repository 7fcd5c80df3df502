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
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

const appID = "b07a0000-0000-4000-8000-000000000002"

// answered is a bot that answers every activity without doing anything.
type answered struct{}

func (answered) OnActivity(context.Context, *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error) {
	return nil, nil, nil
}

// The request log has one line per activity with its outcome, and never the channel's token:
// not when it is accepted, not when it is refused.
func TestRequestLogNeverHoldsTheChannelToken(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	var logs logcheck.Buffer
	logcheck.Watch(t, logs.String)
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client()}
	m := &server.Messages{
		Auth: &botframework.Authenticator{AppID: appID, Channel: keys},
		Bot:  answered{},
		Log:  slog.New(slog.NewJSONHandler(&logs, nil)),
		Seen: &server.Dedupe{},
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	post := func(tok string) int {
		t.Helper()
		body, _ := json.Marshal(ch.Activity("message", "help"))
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	accepted := ch.Mint(channel.TokenOptions{Audience: appID})
	if st := post(accepted); st != http.StatusOK {
		t.Fatalf("valid token: status %d", st)
	}
	if st := post(ch.Mint(channel.TokenOptions{Audience: "c0ffee00-0000-4000-8000-00000000beef"})); st != http.StatusUnauthorized {
		t.Fatalf("token for another bot: status %d", st)
	}
	got := logs.String()
	if strings.Count(got, `"msg":"activity"`) != 2 || !strings.Contains(got, `"outcome":"ok"`) || !strings.Contains(got, `"outcome":"unauthorized"`) {
		t.Fatalf("want one line per activity with its outcome:\n%s", got)
	}
	for _, s := range logcheck.Find(got) {
		t.Errorf("found in the request log: %s", s.Kind)
	}
}
