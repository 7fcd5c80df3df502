package atlassian_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func TestThrottlingAndOutages(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.link(t, standin.Alice)
	j := e.jira(t, standin.Alice)

	t.Run("429 with Retry-After is honoured, then succeeds", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Inject(standin.Fault{Status: 429, RetryAfter: "1", Times: 1})
		start := time.Now()
		is, err := j.Issue(ctx, "PROJ-1")
		if err != nil || is.Key != "PROJ-1" {
			t.Fatalf("%+v %v", is, err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("retried after %s, before Retry-After", d)
		}
	})
	t.Run("Retry-After beyond the bound is returned at once", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Inject(standin.Fault{Status: 429, RetryAfter: "120", Times: -1})
		start := time.Now()
		_, err := j.Issue(ctx, "PROJ-1")
		var th *oauth2.ThrottledError
		if !errors.As(err, &th) || th.RetryAfter != 2*time.Minute {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > time.Second || e.srv.FaultHits() != 1 {
			t.Errorf("waited %s, %d attempts", time.Since(start), e.srv.FaultHits())
		}
		if msg := atlassian.UserMessage(err); !strings.Contains(msg, "2m0s") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("persistent 429 gives up within the bound", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Inject(standin.Fault{Status: 429, RetryAfter: "0", Times: -1})
		_, err := j.MyOpenIssues(ctx, 5)
		var th *oauth2.ThrottledError
		if !errors.As(err, &th) {
			t.Fatalf("err = %v", err)
		}
		if e.srv.FaultHits() != 3 {
			t.Errorf("%d attempts, want 3", e.srv.FaultHits())
		}
	})
	t.Run("one 5xx is retried", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Inject(standin.Fault{Status: 503, Times: 1})
		if _, err := j.Issue(ctx, "PROJ-1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("persistent 5xx gives up within the bound", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Inject(standin.Fault{Status: 502, Times: -1})
		start := time.Now()
		_, err := j.Issue(ctx, "PROJ-1")
		if !errors.Is(err, oauth2.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if e.srv.FaultHits() != 3 || time.Since(start) > 2*time.Second {
			t.Errorf("%d attempts in %s", e.srv.FaultHits(), time.Since(start))
		}
		if msg := atlassian.UserMessage(err); !strings.Contains(msg, "not answering") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("5xx at the token endpoint is unavailable, not reconnect", func(t *testing.T) {
		e.srv.Clear()
		e.srv.Advance(2 * time.Hour)
		e.srv.Inject(standin.Fault{Target: "token", Status: 500, Times: 1})
		_, err := j.Issue(ctx, "PROJ-1")
		if !errors.Is(err, oauth2.ErrUnavailable) || errors.Is(err, oauth2.ErrReconnect) {
			t.Fatalf("err = %v", err)
		}
		// The refresh token was not spent: the next turn refreshes and works.
		if _, err := j.Issue(ctx, "PROJ-1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUnauthorizedTriggersOneForcedRefresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.link(t, standin.Alice)
	j := e.jira(t, standin.Alice)

	e.srv.Inject(standin.Fault{Status: 401, Times: 1})
	if is, err := j.Issue(ctx, "PROJ-1"); err != nil || is.Key != "PROJ-1" {
		t.Fatalf("%+v %v", is, err)
	}
	if n := e.srv.Refreshes(standin.Alice); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}

	e.srv.Clear()
	e.srv.Inject(standin.Fault{Status: 401, Times: -1})
	_, err := j.Issue(ctx, "PROJ-1")
	// A fresh token refused too means the grant does not cover the request, not a dead link.
	if !errors.Is(err, oauth2.ErrRefusedAfterRefresh) || errors.Is(err, oauth2.ErrReconnect) {
		t.Fatalf("err = %v, want refused-after-refresh", err)
	}
	if n := e.srv.Refreshes(standin.Alice); n != 2 {
		t.Errorf("%d refreshes, want 2 (one per call, no loop)", n)
	}
}
