package oauthlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// source yields one user's token for one connector from the token store. Refreshes go through
// FreshToken, which holds a lease on the row across instances, so a rotating refresh token is
// spent once however many turns and instances need a new access token at the same moment.
type source struct {
	store *tokenstore.Store
	user  tokenstore.UserKey
	conn  *oauth2.Connector
	now   func() time.Time
}

// xRefreshed is the token's Extra key holding when it was last refreshed.
const xRefreshed = "refreshed"

var (
	_ oauth2.TokenSource    = (*source)(nil)
	_ oauth2.ForceRefresher = (*source)(nil)
)

func (x *source) Token(ctx context.Context) (*oauth2.Token, error) {
	t, err := x.store.FreshToken(ctx, x.user, tokenKey(x.conn.Name()), minValid, x.refresh(""))
	if err != nil {
		return nil, storeErr(err)
	}
	return fromStore(t), nil
}

// ForceRefresh replaces an access token the API refused with 401 — unless the stored token
// already differs from the refused one, in which case another turn refreshed and nothing is
// spent.
func (x *source) ForceRefresh(ctx context.Context, rejected *oauth2.Token) (*oauth2.Token, error) {
	refused := ""
	if rejected != nil {
		refused = rejected.AccessToken
	}
	t, err := x.store.FreshToken(ctx, x.user, tokenKey(x.conn.Name()), forceValid, x.refresh(refused))
	if err != nil {
		return nil, storeErr(err)
	}
	return fromStore(t), nil
}

func (x *source) refresh(refused string) tokenstore.RefreshFunc {
	return func(ctx context.Context, cur tokenstore.Token) (tokenstore.Token, error) {
		if refused != "" && cur.AccessToken != "" && cur.AccessToken != refused {
			return cur, nil
		}
		nt, err := x.conn.Refresh(ctx, cur.RefreshToken)
		if errors.Is(err, oauth2.ErrReconnect) {
			// The grant is gone (invalid_grant): the store deletes the row, so the user is
			// asked to connect again instead of the bot retrying a dead refresh token.
			return tokenstore.Token{}, fmt.Errorf("%w: %w", tokenstore.ErrSignInNeeded, err)
		}
		if err != nil {
			return tokenstore.Token{}, err
		}
		out := toStore(nt)
		out.Extra = map[string]string{}
		for k, v := range cur.Extra {
			out.Extra[k] = v
		}
		// A refresh starts the provider's idle lifetime of the new refresh token again.
		out.Extra[xRefreshed] = x.now().UTC().Format(time.RFC3339Nano)
		return out, nil
	}
}

// storeErr maps the store's sentinels onto the connector's.
func storeErr(err error) error {
	switch {
	case errors.Is(err, oauth2.ErrReconnect), errors.Is(err, oauth2.ErrNotConnected):
		return err
	case errors.Is(err, tokenstore.ErrNotFound):
		return fmt.Errorf("%w: %w", oauth2.ErrNotConnected, err)
	case errors.Is(err, tokenstore.ErrSignInNeeded):
		return fmt.Errorf("%w: %w", oauth2.ErrReconnect, err)
	default:
		return err
	}
}

// HTTPClient returns an *http.Client that calls connector name's API as user: it adds the
// user's access token, refreshes it when needed (once across instances), refreshes once on 401,
// and honours 429 Retry-After within bounds (oauth2.Connector.Client). Requests fail with an
// error matching oauth2.ErrNotConnected when the user has no link, and oauth2.ErrReconnect when
// the link no longer works. user must come from an authenticated activity (UserOf).
func (s *Service) HTTPClient(user tokenstore.UserKey, name string) (*http.Client, error) {
	p, err := s.provider(name)
	if err != nil {
		return nil, err
	}
	return p.Conn.Client(&source{store: s.Store, user: user, conn: p.Conn, now: s.now}), nil
}

// Client returns the turn user's authorized client for connector name. When the user has no
// link it parks the turn's activity, sends the sign-in card and returns an error matching
// ErrPrompted; the question is answered once the link is confirmed.
func (s *Service) Client(ctx context.Context, t *bot.Turn, name string) (*http.Client, error) {
	p, err := s.provider(name)
	if err != nil {
		return nil, err
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		_ = t.ReplyText(ctx, "I can only do that for a signed-in user.")
		return nil, fmt.Errorf("%w: %w", ErrPrompted, err)
	}
	tok, err := s.Store.GetToken(ctx, u, tokenKey(p.name()))
	switch {
	case err == nil && (tok.AccessToken != "" || tok.RefreshToken != ""):
	case err == nil, errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrSignInNeeded):
		if err := s.ask(ctx, t, u, p, fmt.Sprintf("To answer that I need to use %s as you. Connect your account once; I will answer as soon as you are connected.", p.display())); err != nil {
			return nil, err
		}
		return nil, ErrPrompted
	default:
		return nil, fmt.Errorf("oauthlink: read %s token: %w", p.name(), err)
	}
	return p.Conn.Client(&source{store: s.Store, user: u, conn: p.Conn, now: s.now}), nil
}

// ask parks the turn's question and sends the sign-in card.
func (s *Service) ask(ctx context.Context, t *bot.Turn, u tokenstore.UserKey, p *Provider, sentence string) error {
	if t.Activity.Type == "message" && s.Resume != nil {
		payload, err := json.Marshal(t.Activity)
		if err != nil {
			return err
		}
		// Parked under the conversation and activity ids: when the channel sends the same
		// activity again (an earlier attempt failed after parking it), it waits once and is
		// answered once. An activity without an id gets a random one (Park).
		id := ""
		if t.Activity.ID != "" {
			id = t.Activity.Conversation.ID + "|" + t.Activity.ID
		}
		_, err = s.Store.Park(ctx, u, tokenstore.Parked{ID: id, Connector: askPrefix + p.name(), Payload: payload}, parkTTL)
		if err != nil && !errors.Is(err, tokenstore.ErrConflict) {
			return fmt.Errorf("oauthlink: park question: %w", err)
		}
	} else if s.Resume == nil {
		sentence += " Then ask me again."
	}
	t.Outcome = "connect-" + p.name()
	return s.sendSignIn(ctx, t, u, p, sentence)
}

// Recover handles the failures of a call made with Client's client that the link itself
// causes, and reports whether it did: no link (the user is asked to connect and the question
// parked), or a link that no longer works (the stored tokens are deleted and the user is told
// once — not on every later message — that they must connect again). Other errors are left to
// the caller.
func (s *Service) Recover(ctx context.Context, t *bot.Turn, name string, err error) bool {
	p, perr := s.provider(name)
	if perr != nil || err == nil {
		return false
	}
	u, uerr := s.UserOf(t.Activity)
	if uerr != nil {
		return false
	}
	switch {
	case errors.Is(err, oauth2.ErrNotConnected):
		if aerr := s.ask(ctx, t, u, p, fmt.Sprintf("You are not connected to %s. Connect your account once; I will answer as soon as you are connected.", p.display())); aerr != nil {
			s.log().Warn("asking to connect failed", slog.String("connector", p.name()), slog.String("error", aerr.Error()))
		}
		return true
	case errors.Is(err, oauth2.ErrReconnect):
		// Mark the link disconnected: whatever is stored cannot be used again.
		if derr := s.Store.DeleteToken(ctx, u, tokenKey(p.name())); derr != nil {
			s.log().Warn("deleting a dead link failed", slog.String("connector", p.name()), slog.String("user", u.String()), slog.String("error", derr.Error()))
		}
		prefs, _ := s.prefs(ctx, u, p.name())
		// One notice per dead link, across turns and instances: the claim is create-only.
		claim := s.Store.ClaimExchange(ctx, u, "reconnect|"+p.name()+"|"+prefs["linked"], 30*24*time.Hour)
		sentence := fmt.Sprintf("You are not connected to %s any more. Connect your account again; I will answer as soon as you are connected.", p.display())
		if claim == nil {
			s.log().Info("link no longer works; user asked to reconnect", slog.String("connector", p.name()), slog.String("user", u.String()), slog.String("reason", err.Error()))
			sentence = s.message(p, err)
			t.Outcome = "reconnect-" + p.name()
		}
		if aerr := s.ask(ctx, t, u, p, sentence); aerr != nil {
			s.log().Warn("asking to reconnect failed", slog.String("connector", p.name()), slog.String("error", aerr.Error()))
		}
		return true
	}
	return false
}

func (s *Service) message(p *Provider, err error) string {
	if p.Message != nil {
		return p.Message(err)
	}
	var th *oauth2.ThrottledError
	switch {
	case errors.Is(err, oauth2.ErrReconnect):
		return fmt.Sprintf("Your %s connection has expired or was revoked. Say \"connect %s\" to connect again.", p.display(), p.name())
	case errors.As(err, &th) && th.RetryAfter > 0:
		return fmt.Sprintf("%s is limiting requests right now. Try again in %s.", p.display(), th.RetryAfter.Round(time.Second))
	case errors.As(err, &th):
		return fmt.Sprintf("%s is limiting requests right now. Try again in a minute.", p.display())
	case errors.Is(err, oauth2.ErrUnavailable):
		return fmt.Sprintf("%s is not answering right now. Try again in a few minutes.", p.display())
	default:
		return fmt.Sprintf("Something went wrong talking to %s. Try again later.", p.display())
	}
}

// Prefs returns the turn user's small per-connection facts (for example a chosen site),
// after merging set into them when set is not empty. They are sealed like tokens and
// deleted with the link.
func (s *Service) Prefs(ctx context.Context, t *bot.Turn, name string, set map[string]string) (map[string]string, error) {
	p, err := s.provider(name)
	if err != nil {
		return nil, err
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return nil, err
	}
	cur, err := s.prefs(ctx, u, p.name())
	if err != nil || len(set) == 0 {
		return cur, err
	}
	for k, v := range set {
		cur[k] = v
	}
	if err := s.Store.PutToken(ctx, u, prefsKey(p.name()), tokenstore.Token{Extra: cur}); err != nil {
		return nil, fmt.Errorf("oauthlink: save preferences: %w", err)
	}
	return cur, nil
}

// errNothingToTake stops TakePref's conditional update without writing.
var errNothingToTake = errors.New("oauthlink: nothing to take")

// TakePref removes preference key from the turn user's facts for connection name and returns
// its value, when accept agrees to it; otherwise it changes nothing and returns "". Of any
// number of callers on any number of instances, at most one takes a value: the facts are read
// from Table Storage (never an instance's memory) and the removal is conditioned on the ETag
// read, so a caller that loses the race reads again and finds nothing to take.
func (s *Service) TakePref(ctx context.Context, t *bot.Turn, name, key string, accept func(value string) bool) (string, error) {
	p, err := s.provider(name)
	if err != nil {
		return "", err
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return "", err
	}
	var taken string
	_, err = s.Store.UpdateToken(ctx, u, prefsKey(p.name()), func(cur *tokenstore.Token) (*tokenstore.Token, error) {
		taken = ""
		if cur == nil || cur.Extra[key] == "" || !accept(cur.Extra[key]) {
			return nil, errNothingToTake
		}
		next := *cur
		next.Extra = make(map[string]string, len(cur.Extra))
		for k, v := range cur.Extra {
			if k != key {
				next.Extra[k] = v
			}
		}
		taken = cur.Extra[key]
		return &next, nil
	})
	switch {
	case errors.Is(err, errNothingToTake):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("oauthlink: take preference: %w", err)
	}
	return taken, nil
}

func (s *Service) prefs(ctx context.Context, u tokenstore.UserKey, name string) (map[string]string, error) {
	t, err := s.Store.GetToken(ctx, u, prefsKey(name))
	if errors.Is(err, tokenstore.ErrNotFound) || errors.Is(err, tokenstore.ErrSignInNeeded) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauthlink: read preferences: %w", err)
	}
	out := map[string]string{}
	for k, v := range t.Extra {
		out[k] = v
	}
	return out, nil
}
