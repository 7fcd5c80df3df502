package oauthlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// LapseWarning is how long before a connection lapses its user is warned.
const LapseWarning = 7 * 24 * time.Hour

// WarnLapsing sends, in each user's own chat with the bot, one private warning for every
// connection that will stop working within LapseWarning (its provider's refresh-token
// lifetimes; see Provider.RefreshIdle). It is meant for a timer that every instance runs: a
// create-only row per connection and lapse date makes exactly one instance send each warning;
// an instance that fails to send gives the row back, so a later run sends it instead.
// It returns how many warnings this call sent.
func (s *Service) WarnLapsing(ctx context.Context, now time.Time) (int, error) {
	if s.Sender == nil {
		return 0, errors.New("oauthlink: no sender for lapse warnings")
	}
	sent := 0
	var errs []error
	for _, name := range s.order {
		p := s.providers[name]
		if p.RefreshIdle <= 0 && p.RefreshAbsolute <= 0 {
			continue
		}
		held, err := s.Store.TokensOf(ctx, tokenKey(name))
		if err != nil {
			errs = append(errs, fmt.Errorf("oauthlink: lapse warnings for %s: %w", name, err))
			continue
		}
		for _, h := range held {
			ok, err := s.warnOne(ctx, p, h, now)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				sent++
			}
		}
	}
	return sent, errors.Join(errs...)
}

func (s *Service) warnOne(ctx context.Context, p *Provider, h tokenstore.HeldToken, now time.Time) (bool, error) {
	if h.Token.RefreshToken == "" {
		return false, nil
	}
	prefs, err := s.Store.TokenAt(ctx, h.Holder, prefsKey(p.name()))
	if err != nil {
		return false, nil // no link record: nothing to date the connection by
	}
	linked, _ := time.Parse(time.RFC3339Nano, prefs.Extra["linked"])
	refreshed, _ := time.Parse(time.RFC3339Nano, h.Token.Extra[xRefreshed])
	lapse := Lapse(linked, refreshed, p.RefreshIdle, p.RefreshAbsolute)
	if lapse.IsZero() || !now.Before(lapse) || lapse.Sub(now) > LapseWarning {
		return false, nil
	}
	// One warning per connection and lapse date, whichever instance gets here first.
	id := "lapse-warning|" + p.name() + "|" + prefs.Extra["linked"] + "|" + lapse.UTC().Format(time.RFC3339)
	first, err := s.Store.ClaimOnce(ctx, h.Holder, id, lapse.Sub(now)+24*time.Hour)
	if err != nil || !first {
		return false, err
	}
	raw, err := s.Store.ConversationRefAt(ctx, h.Holder)
	var ref botframework.ConversationReference
	if err != nil || json.Unmarshal(raw, &ref) != nil || ref.Conversation.ID == "" {
		s.log().Warn("no conversation for a lapse warning", slog.String("connector", p.name()), slog.String("user", h.Holder.String()))
		return false, nil
	}
	// The reference arrived in an authenticated activity and comes back sealed (bound to this
	// row), so its serviceUrl is as trustworthy as when it was stored: a fresh instance that has
	// not yet seen an activity from it may send there.
	if tr, ok := s.Sender.(interface{ Trust(string) }); ok {
		tr.Trust(ref.ServiceURL)
	}
	word := p.name()
	if len(p.Words) > 0 {
		word = p.Words[0]
	}
	text := mdtext.Sprintf("Your %s connection stops working on %s. Say %s to renew it now, or %s to see all your connections.",
		p.display(), lapse.UTC().Format("2 Jan 2006"), mdtext.Code("reconnect "+word), mdtext.Code("connections"))
	if _, err := s.Sender.Send(ctx, ref, &botframework.Activity{Type: botframework.TypeMessage, Text: string(text)}); err != nil {
		// Not sent (this instance may not yet trust the user's serviceUrl, or the channel is
		// down): give the claim back so that a later run, here or elsewhere, sends it.
		if rerr := s.Store.ReleaseOnce(ctx, h.Holder, id); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, fmt.Errorf("oauthlink: lapse warning for %s: %w", p.name(), err)
	}
	s.log().Info("lapse warning sent", slog.String("connector", p.name()), slog.String("user", h.Holder.String()))
	return true, nil
}
