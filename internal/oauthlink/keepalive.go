package oauthlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Keep-alive: a provider whose refresh tokens lapse after a time unused (Provider.RefreshIdle;
// Atlassian Cloud: 90 days, and each refresh returns a new refresh token whose idle time starts
// again) would cut off a user who keeps talking to the bot but has not needed that back end for
// months. KeepAlive refreshes such a connection in the background when its user is active, so
// it stays alive as long as they use the bot. It cannot pass the provider's absolute lifetime.

// DefaultKeepAliveAfter is how long a refresh token may go unused before an active user's
// connection is refreshed in the background.
const DefaultKeepAliveAfter = 30 * 24 * time.Hour

// prefTouched is the preferences' key holding when keep-alive last rewrote them.
const prefTouched = "touched"

// keepAliveEvery bounds how often one instance looks at one user's connections.
const keepAliveEvery = time.Hour

// keepAliveValid is the validity a keep-alive refresh asks of the store: like forceValid, more
// than any token has, so the refresh function always runs under the row's lease — but distinct,
// so a keep-alive and a refresh after a 401 never share one flight.
const keepAliveValid = forceValid - time.Hour

// keepAlive remembers, per instance, when each user's connections were last looked at.
type keepAlive struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// due reports whether u's connections were not looked at within keepAliveEvery, and marks them.
func (k *keepAlive) due(u tokenstore.UserKey, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen == nil {
		k.seen = map[string]time.Time{}
	}
	key := u.Partition()
	if last, ok := k.seen[key]; ok && now.Sub(last) < keepAliveEvery {
		return false
	}
	if len(k.seen) > 100_000 { // bounded: forgetting only costs one more look
		k.seen = map[string]time.Time{}
	}
	k.seen[key] = now
	return true
}

func (s *Service) keepAliveAfter() time.Duration {
	if s.KeepAliveAfter < 0 {
		return 0
	}
	if s.KeepAliveAfter == 0 {
		return DefaultKeepAliveAfter
	}
	return s.KeepAliveAfter
}

// Active tells the service that u made a request: at most once an hour per instance, it
// refreshes in the background (Background) each of u's connections whose refresh token has
// gone unused for KeepAliveAfter. It never blocks the caller.
func (s *Service) Active(ctx context.Context, u tokenstore.UserKey) {
	if s.keepAliveAfter() == 0 || s.Background == nil || !s.alive.due(u, s.now()) {
		return
	}
	s.Background.Go(ctx, time.Minute, func(ctx context.Context) {
		if _, err := s.KeepAlive(ctx, u); err != nil {
			s.log().Warn("keep-alive refresh failed", slog.String("user", u.String()), slog.String("error", err.Error()))
		}
	})
}

// KeepAlive refreshes each of u's connections to a provider with an idle lifetime whose refresh
// token was last used (refreshed, or issued at linking) KeepAliveAfter or more ago and that has
// not lapsed yet. The rotated refresh token is stored as every refresh's is, under the row's
// lease, so it is spent once across instances; a connection another instance refreshed
// meanwhile is left alone. It returns how many connections it refreshed.
func (s *Service) KeepAlive(ctx context.Context, u tokenstore.UserKey) (int, error) {
	after := s.keepAliveAfter()
	if after == 0 {
		return 0, nil
	}
	n := 0
	var errs []error
	for _, name := range s.order {
		p := s.providers[name]
		if p.RefreshIdle <= 0 {
			continue // no idle lapse (or unknown): nothing to keep alive
		}
		ok, err := s.keepOne(ctx, u, p, after)
		if err != nil {
			errs = append(errs, fmt.Errorf("oauthlink: keep %s alive: %w", name, err))
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

func (s *Service) keepOne(ctx context.Context, u tokenstore.UserKey, p *Provider, after time.Duration) (bool, error) {
	tok, err := s.Store.GetToken(ctx, u, tokenKey(p.name()))
	if errors.Is(err, tokenstore.ErrNotFound) || errors.Is(err, tokenstore.ErrSignInNeeded) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if tok.RefreshToken == "" {
		return false, nil
	}
	prefs, err := s.prefs(ctx, u, p.name())
	if err != nil {
		return false, err
	}
	linked, _ := time.Parse(time.RFC3339Nano, prefs["linked"])
	now := s.now()
	// The connection's facts (when it was linked, the chosen site) live in their own row,
	// which expires like every row unless written again: an active user's is rewritten once
	// per KeepAliveAfter, so it lives as long as the connection does.
	touched, _ := time.Parse(time.RFC3339Nano, prefs[prefTouched])
	if linked.After(touched) {
		touched = linked
	}
	if !linked.IsZero() && now.Sub(touched) >= after {
		prefs[prefTouched] = now.UTC().Format(time.RFC3339Nano)
		if err := s.Store.PutToken(ctx, u, prefsKey(p.name()), tokenstore.Token{Extra: prefs}); err != nil {
			return false, fmt.Errorf("keep the connection's record: %w", err)
		}
	}
	if !s.stale(tok, linked, now, after) {
		return false, nil
	}
	if lapse := Lapse(linked, lastRefresh(tok), p.RefreshIdle, p.RefreshAbsolute); !lapse.IsZero() && !now.Before(lapse) {
		return false, nil // lapsed already: a refresh can only fail
	}
	x := &source{store: s.Store, user: u, conn: p.Conn, now: s.now}
	refreshed := false
	_, err = s.Store.FreshToken(ctx, u, tokenKey(p.name()), keepAliveValid, func(ctx context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		// Read again under the lease: another instance may have refreshed meanwhile.
		if !s.stale(cur, linked, s.now(), after) {
			return cur, nil
		}
		refreshed = true
		return x.refresh("")(ctx, cur)
	})
	if err != nil {
		return false, storeErr(err)
	}
	if refreshed {
		s.log().Info("connection kept alive", slog.String("connector", p.name()), slog.String("user", u.String()))
	}
	return refreshed, nil
}

// stale reports whether tok's refresh token was last used after or more ago.
func (s *Service) stale(tok tokenstore.Token, linked, now time.Time, after time.Duration) bool {
	last := lastRefresh(tok)
	if linked.After(last) {
		last = linked
	}
	return !last.IsZero() && now.Sub(last) >= after
}

func lastRefresh(tok tokenstore.Token) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, tok.Extra[xRefreshed])
	return t
}
