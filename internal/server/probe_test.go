package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/server"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// A HEAD probe (the Agents Playground sends one on every page load) gets 204 with Allow: POST
// and leaves no warning in the log; GET is still refused with 405 and logged.
func TestHeadProbeIsNotAWarning(t *testing.T) {
	var logBuf bytes.Buffer
	logcheck.Watch(t, logBuf.String)
	m := &server.Messages{Log: slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	srv := httptest.NewServer(m)
	defer srv.Close()

	resp, err := http.Head(srv.URL + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != http.MethodPost {
		t.Fatalf("HEAD: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if logBuf.Len() != 0 {
		t.Fatalf("HEAD logged at info or above: %s", logBuf.String())
	}

	resp, err = http.Get(srv.URL + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
	if !strings.Contains(logBuf.String(), `"level":"WARN"`) || !strings.Contains(logBuf.String(), "method GET") {
		t.Fatalf("GET not logged as refused: %s", logBuf.String())
	}
}
