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

// Refreshing once across concurrent turns and instances, and finishing a refresh whose turn
// gave up, are properties of the handler's token store (tokenstore.FreshToken); they are
// tested there and end to end in internal/app (TestAtlassianTokensRefreshOnceAndFailPlainly).

func TestRefreshTokenReuse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	old := e.link(t, standin.Alice)
	rotated, err := e.conn.OAuth.Refresh(ctx, old.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.RefreshToken == old.RefreshToken || rotated.RefreshToken == "" {
		t.Fatal("refresh token did not rotate")
	}

	// Within the 10-minute leeway the old token still works (a retry after a lost answer).
	e.srv.Advance(5 * time.Minute)
	if _, err := e.conn.OAuth.Refresh(ctx, old.RefreshToken); err != nil {
		t.Fatalf("reuse within leeway: %v", err)
	}
	if e.srv.Revoked(standin.Alice) {
		t.Fatal("reuse within leeway revoked the family")
	}

	// After the leeway, reuse revokes the whole family: even the newest tokens stop working.
	e.srv.Advance(6 * time.Minute)
	_, err = e.conn.OAuth.Refresh(ctx, old.RefreshToken)
	if !errors.Is(err, oauth2.ErrInvalidGrant) || !errors.Is(err, oauth2.ErrReconnect) {
		t.Fatalf("reuse after leeway: err = %v, want invalid_grant", err)
	}
	if !e.srv.Revoked(standin.Alice) {
		t.Fatal("family not revoked")
	}
	if _, err := e.conn.OAuth.Refresh(ctx, rotated.RefreshToken); !errors.Is(err, oauth2.ErrInvalidGrant) {
		t.Errorf("newest refresh token after revocation: %v", err)
	}
}

func TestEachRotatedOutRefreshTokenHasItsOwnLeeway(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	t1 := e.link(t, standin.Alice)
	t2, err := e.conn.OAuth.Refresh(ctx, t1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.OAuth.Refresh(ctx, t2.RefreshToken); err != nil {
		t.Fatal(err)
	}
	// Atlassian: the old tokens "enter a 10-minutes grace period (leeway window) before they
	// are marked as revoked" — t1 is two rotations old but still inside its window.
	if _, err := e.conn.OAuth.Refresh(ctx, t1.RefreshToken); err != nil {
		t.Fatalf("older token inside its leeway: %v", err)
	}
	// Past it, Atlassian answers 403 unauthorized_client "refresh_token is invalid": the
	// grant is gone, which the client must read as "connect again", not as a broken app.
	e.srv.Advance(10 * time.Minute)
	_, err = e.conn.OAuth.Refresh(ctx, t1.RefreshToken)
	if !errors.Is(err, oauth2.ErrReconnect) || errors.Is(err, oauth2.ErrMisconfigured) {
		t.Fatalf("err = %v, want reconnect", err)
	}
}

func TestRevokedFamilyAsksToReconnectOnceWithoutLooping(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	old := e.link(t, standin.Alice)
	j := e.jira(t, standin.Alice)
	// Something else spends the stored refresh token, then reuses it after the leeway.
	if _, err := e.conn.OAuth.Refresh(ctx, old.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.srv.Advance(11 * time.Minute)
	if _, err := e.conn.OAuth.Refresh(ctx, old.RefreshToken); !errors.Is(err, oauth2.ErrInvalidGrant) {
		t.Fatal(err)
	}

	// The stored access token is dead (family revoked): 401 → one refresh → invalid_grant.
	_, err := j.Issue(ctx, "PROJ-1")
	if !errors.Is(err, oauth2.ErrReconnect) {
		t.Fatalf("err = %v, want reconnect", err)
	}
	if msg := atlassian.UserMessage(err); !strings.Contains(msg, "connect jira") {
		t.Errorf("message %q does not say how to reconnect", msg)
	}
	calls := e.srv.TokenCalls()
	// The connection is now gone: later turns say "not connected" without touching Atlassian.
	for range 3 {
		_, err = j.Issue(ctx, "PROJ-1")
		if !errors.Is(err, oauth2.ErrNotConnected) {
			t.Fatalf("err = %v, want not connected", err)
		}
	}
	if e.srv.TokenCalls() != calls {
		t.Errorf("%d more token calls after the grant was gone", e.srv.TokenCalls()-calls)
	}
}
