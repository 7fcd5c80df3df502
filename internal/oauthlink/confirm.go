package oauthlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

var codeRE = regexp.MustCompile(`^[0-9]{8}$`)

// normalizeCode drops the spaces and dashes people type inside codes.
func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

type confirmResult int

const (
	noPending confirmResult = iota // the user has no link awaiting confirmation
	wrongCode                      // links await, none matches this code from this conversation
	linked
)

// confirm completes the turn user's pending link whose one-time code is code, in the turn's
// conversation. Pending links are looked up under the confirming user's own key, so another
// user's session never even sees them, and PendingLink.Confirm checks the user again.
func (s *Service) confirm(ctx context.Context, t *bot.Turn, code string) (confirmResult, error) {
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return noPending, nil
	}
	now := s.now()
	result := noPending
	for _, name := range s.order {
		p := s.providers[name]
		rows, err := s.Store.TakeParked(ctx, u, linkPrefix+name)
		if err != nil {
			return result, fmt.Errorf("oauthlink: read pending links: %w", err)
		}
		for _, row := range rows {
			var pr pendingRow
			if err := json.Unmarshal(row.Payload, &pr); err != nil {
				continue
			}
			if result == noPending {
				result = wrongCode
			}
			if result == linked || pr.Link.Conversation != t.Activity.Conversation.ID {
				s.repark(ctx, u, row, pr, now) // not this one: leave it as it was
				continue
			}
			tok, err := pr.Link.Confirm(u.Partition(), code, now)
			switch {
			case err == nil:
				result = linked
				if err := s.finish(ctx, t, u, p, tok, pr.Ref); err != nil {
					return result, err
				}
			case errors.Is(err, oauth2.ErrLinkWrongCode):
				s.repark(ctx, u, row, pr, now)
			default:
				// Expired, over the attempt limit, another user's or not completed: dropped.
				s.log().Warn("pending link dropped", slog.String("connector", name), slog.String("user", u.String()), slog.String("reason", err.Error()))
			}
		}
	}
	return result, nil
}

func (s *Service) repark(ctx context.Context, u tokenstore.UserKey, row tokenstore.Parked, pr pendingRow, now time.Time) {
	ttl := pr.Link.Expires.Sub(now)
	if ttl <= 0 {
		return
	}
	b, err := json.Marshal(pr)
	if err == nil {
		row.Payload = b
		_, err = s.Store.Park(ctx, u, row, ttl)
	}
	if err != nil {
		s.log().Warn("keeping a pending link failed", slog.String("user", u.String()), slog.String("error", err.Error()))
	}
}

// finish stores the confirmed tokens as the user's connection, says so in the conversation the
// link was started from, and answers the questions that waited for it.
func (s *Service) finish(ctx context.Context, t *bot.Turn, u tokenstore.UserKey, p *Provider, tok *oauth2.Token, ref json.RawMessage) error {
	name := p.name()
	if err := s.Store.PutToken(ctx, u, tokenKey(name), toStore(tok)); err != nil {
		return fmt.Errorf("oauthlink: store %s tokens: %w", name, err)
	}
	s.log().Info("account linked", slog.String("connector", name), slog.String("user", u.String()))
	t.Outcome = "linked-" + name
	// The rest — who the account is, the "connected" message, the parked questions — takes
	// back-end calls; it runs after the answer (a signin/verifyState invoke must be answered
	// within seconds), bounded by its own deadline.
	if s.Later != nil {
		err := s.Later(ctx, t, u, name, ref)
		if err == nil {
			return nil
		}
		s.log().Warn("queueing the link announcement failed; announcing here", slog.String("connector", name), slog.String("error", err.Error()))
	}
	s.Background.Go(ctx, 60*time.Second, func(ctx context.Context) {
		s.announce(ctx, t.Sender(), u, p, ref, t.Reference())
	})
	return nil
}

// Announce is the queued form of the announcement: connector's link for u is made; ref is
// where the link was started, fallback the conversation that confirmed it.
func (s *Service) Announce(ctx context.Context, snd bot.Sender, u tokenstore.UserKey, connector string, ref json.RawMessage, fallback botframework.ConversationReference) error {
	p, ok := s.providers[connector]
	if !ok {
		return fmt.Errorf("oauthlink: announce: no connector %q", connector)
	}
	s.announce(ctx, snd, u, p, ref, fallback)
	return nil
}

// announce tells the user the link is made and answers the questions that waited for it.
func (s *Service) announce(ctx context.Context, snd bot.Sender, u tokenstore.UserKey, p *Provider, ref json.RawMessage, fallback botframework.ConversationReference) {
	name := p.name()
	account := ""
	if p.Account != nil {
		a, err := p.Account(ctx, p.Conn.Client(&source{store: s.Store, user: u, conn: p.Conn, now: s.now}))
		if err != nil {
			s.log().Warn("reading the linked account failed", slog.String("connector", name), slog.String("user", u.String()), slog.String("error", err.Error()))
		}
		account = a
	}
	// A new link starts with fresh facts: a site chosen for another account may not apply.
	prefs := map[string]string{"linked": s.now().UTC().Format(time.RFC3339Nano)}
	if account != "" {
		prefs["account"] = account
	}
	if err := s.Store.PutToken(ctx, u, prefsKey(name), tokenstore.Token{Extra: prefs}); err != nil {
		s.log().Warn("saving link facts failed", slog.String("connector", name), slog.String("error", err.Error()))
	}

	sentence := s.connectedText(p, account)
	msg := func() *botframework.Activity {
		return &botframework.Activity{Type: botframework.TypeMessage, Text: string(sentence)}
	}
	var cr botframework.ConversationReference
	if json.Unmarshal(ref, &cr) == nil && cr.Conversation.ID != "" {
		if _, err := snd.Send(ctx, cr, msg()); err != nil {
			s.log().Warn("proactive connected message failed; sending it here instead", slog.String("error", err.Error()))
			_, _ = snd.Send(ctx, fallback, msg())
		}
	} else {
		_, _ = snd.Send(ctx, fallback, msg())
	}

	parked, err := s.Store.TakeParked(ctx, u, askPrefix+name)
	if err != nil {
		s.log().Warn("taking parked questions failed", slog.String("error", err.Error()))
	}
	for _, pk := range parked {
		var act botframework.Activity
		if json.Unmarshal(pk.Payload, &act) != nil || s.Resume == nil {
			continue
		}
		if err := s.Resume(ctx, &act); err != nil {
			s.log().Warn("answering a parked question failed", slog.String("id", act.ID), slog.String("error", err.Error()))
		}
	}
}

func (s *Service) connectedText(p *Provider, account string) mdtext.Markdown {
	if p.Connected != nil && account != "" {
		return p.Connected(account)
	}
	if account != "" {
		return mdtext.Sprintf("Connected to %s as %s.", p.display(), account)
	}
	return mdtext.Sprintf("Connected to %s.", p.display())
}

// VerifyState is an sso.StateVerifier: Teams sends signin/verifyState with the one-time code
// when the callback page calls notifySuccess in the user's own client. Values that are not
// such a code (8 digits; the Bot Service's magic codes have 6) are passed on (handled=false).
func (s *Service) VerifyState(ctx context.Context, t *bot.Turn, state string) (*botframework.InvokeResponse, bool, error) {
	code := normalizeCode(state)
	if !codeRE.MatchString(code) {
		return nil, false, nil
	}
	res, err := s.confirm(ctx, t, code)
	switch {
	case err != nil:
		return nil, true, err
	case res == noPending, res == wrongCode:
		t.Outcome = "link-refused"
		_ = t.ReplyText(ctx, "That sign-in could not be confirmed: it was started by someone else, in another chat, or it has expired. Ask to connect again.")
		return &botframework.InvokeResponse{Status: http.StatusNotFound}, true, nil
	}
	return &botframework.InvokeResponse{Status: http.StatusOK}, true, nil
}

// VerifyInvoke answers signin/verifyState on its own, for bots without Teams single sign-on
// (such as local anonymous mode).
func (s *Service) VerifyInvoke(ctx context.Context, t *bot.Turn) (*botframework.InvokeResponse, error) {
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(t.Activity.Value, &v); err != nil || v.State == "" {
		t.Outcome = "verify-malformed"
		return &botframework.InvokeResponse{Status: http.StatusBadRequest}, nil
	}
	resp, handled, err := s.VerifyState(ctx, t, v.State)
	if err != nil || handled {
		return resp, err
	}
	if v.State == "CancelledByUser" {
		t.Outcome = "sign-in-cancelled"
		_ = t.ReplyText(ctx, "Sign-in was cancelled. Ask again whenever you are ready.")
		return &botframework.InvokeResponse{Status: http.StatusOK}, nil
	}
	t.Outcome = "verify-not-found"
	return &botframework.InvokeResponse{Status: http.StatusNotFound}, nil
}
