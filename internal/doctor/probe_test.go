package doctor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/server"
)

type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string, *botframework.Activity) (*botframework.Claims, error) {
	return nil, errors.New("no valid token")
}

type ignoreAll struct{ got []string }

func (h *ignoreAll) OnActivity(_ context.Context, a *botframework.Activity) (*botframework.InvokeResponse, *bot.Turn, error) {
	h.got = append(h.got, a.Type)
	return nil, nil, nil
}

// The probe against the handler's real messaging endpoint: with authentication it gets 401;
// in anonymous mode the handler accepts the activity, which the doctor reports as a failure.
func TestProbeAgainstTheHandlersMessagingEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		auth   server.Authenticator
		status Status
		detail string
	}{
		{"authenticated", refuseAll{}, StatusPass, "answered 401"},
		{"anonymous", nil, StatusFail, "anonymous mode in production"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &ignoreAll{}
			srv := httptest.NewTLSServer(&server.Messages{Auth: tc.auth, Bot: h, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), TurnTimeout: time.Second})
			defer srv.Close()
			s := &Snapshot{Probe: probe(context.Background(), srv.Client(), srv.URL+"/api/messages", 3*time.Second)}
			r := checkEndpointAuth(s)
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.detail) {
				t.Fatalf("%s: %s", r.Status, r.Detail)
			}
			if tc.auth != nil && len(h.got) != 0 {
				t.Errorf("an unauthenticated probe reached the bot: %v", h.got)
			}
		})
	}
}
