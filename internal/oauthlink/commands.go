package oauthlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/cards"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Register adds connect, disconnect, connections and link to b.
func (s *Service) Register(b *bot.Bot) {
	names := strings.Join(s.commandNames(), ", ")
	b.Handle(bot.Command{Name: "connect", Usage: "connect <service>", Help: "Connect your own account at " + names + ", so I can answer as you.", Run: s.runConnect})
	b.Handle(bot.Command{Name: "reconnect", Usage: "reconnect <service>", Help: "Sign in to " + names + " again, renewing the connection before it lapses.", Run: s.runReconnect})
	b.Handle(bot.Command{Name: "disconnect", Usage: "disconnect <service>", Help: "Forget your account at " + names + ".", Run: s.runDisconnect})
	b.Handle(bot.Command{Name: "connections", Usage: "connections", Help: "Show the services you have connected, with buttons to connect or disconnect.", Run: s.runConnections})
	b.Handle(bot.Command{Name: "link", Usage: "link <code>", Help: "Finish connecting an account with the code the sign-in page showed.", Run: s.runLink})
}

// commandNames lists what users type: the first word of each provider.
func (s *Service) commandNames() []string {
	var out []string
	for _, n := range s.order {
		p := s.providers[n]
		if len(p.Words) > 0 {
			out = append(out, p.Words[0])
		} else {
			out = append(out, n)
		}
	}
	return out
}

// pick resolves the command's argument to a provider, answering when it cannot.
func (s *Service) pick(ctx context.Context, t *bot.Turn, args, verb string) (*Provider, bool) {
	word := strings.ToLower(strings.TrimSpace(args))
	if word == "" && len(s.order) == 1 {
		return s.providers[s.order[0]], true
	}
	p, err := s.provider(word)
	if err != nil {
		names := make([]mdtext.Markdown, 0, len(s.order))
		for _, n := range s.commandNames() {
			names = append(names, mdtext.Code(n))
		}
		_ = t.ReplyText(ctx, mdtext.Sprintf("Which service? Say %s followed by one of: %s.", mdtext.Code(verb), mdtext.Join(names, ", ")))
		return nil, false
	}
	return p, true
}

func (s *Service) runConnect(ctx context.Context, t *bot.Turn, args string) error {
	p, ok := s.pick(ctx, t, args, "connect")
	if !ok {
		return nil
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return t.ReplyText(ctx, "I can only connect accounts for a signed-in user.")
	}
	if tok, err := s.Store.GetToken(ctx, u, tokenKey(p.name())); err == nil && (tok.AccessToken != "" || tok.RefreshToken != "") {
		prefs, _ := s.prefs(ctx, u, p.name())
		as := mdtext.Markdown("")
		if a := prefs["account"]; a != "" {
			as = mdtext.Sprintf(" as %s", a)
		}
		return t.ReplyText(ctx, mdtext.Sprintf("You are already connected to %s%s. To use another account, say %s first.", p.display(), as, mdtext.Code("disconnect "+p.name())))
	}
	t.Outcome = "connect-" + p.name()
	return s.sendSignIn(ctx, t, u, p, fmt.Sprintf("Connect your %s account so I can answer as you: I will see only what you can see.", p.display()))
}

// runReconnect starts a new sign-in even when connected: the new link replaces the old one
// once confirmed, and the connection's lifetimes start again.
func (s *Service) runReconnect(ctx context.Context, t *bot.Turn, args string) error {
	p, ok := s.pick(ctx, t, args, "reconnect")
	if !ok {
		return nil
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return t.ReplyText(ctx, "I can only connect accounts for a signed-in user.")
	}
	t.Outcome = "reconnect-" + p.name()
	return s.sendSignIn(ctx, t, u, p, fmt.Sprintf("Sign in to %s again to renew the connection: I will see only what you can see.", p.display()))
}

func (s *Service) runDisconnect(ctx context.Context, t *bot.Turn, args string) error {
	p, ok := s.pick(ctx, t, args, "disconnect")
	if !ok {
		return nil
	}
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return t.ReplyText(ctx, "I can only disconnect accounts for a signed-in user.")
	}
	if err := s.Disconnect(ctx, u, p.name()); err != nil {
		return err
	}
	t.Outcome = "disconnect-" + p.name()
	msg := mdtext.Sprintf("Disconnected %s: I have deleted your tokens.", p.display())
	if p.DisconnectNote != "" {
		msg += " " + mdtext.Escape(p.DisconnectNote)
	}
	return t.ReplyText(ctx, msg)
}

// Disconnect forgets user's link to connector name: it revokes the refresh token at the
// provider when the provider has a revocation endpoint (best effort), then deletes the tokens,
// the link's facts, and any sign-in or question still waiting for it. Safe to repeat.
func (s *Service) Disconnect(ctx context.Context, u tokenstore.UserKey, name string) error {
	p, err := s.provider(name)
	if err != nil {
		return err
	}
	name = p.name()
	if tok, err := s.Store.GetToken(ctx, u, tokenKey(name)); err == nil && p.Conn.CanRevoke() {
		if err := p.Conn.Revoke(ctx, fromStore(tok)); err != nil {
			// The tokens are deleted anyway; the user can revoke at the provider.
			s.log().Warn("revoking at the provider failed", slog.String("connector", name), slog.String("user", u.String()), slog.String("error", err.Error()))
		}
	}
	for _, k := range []tokenstore.TokenKey{tokenKey(name), prefsKey(name)} {
		if err := s.Store.DeleteToken(ctx, u, k); err != nil {
			return fmt.Errorf("oauthlink: disconnect %s: %w", name, err)
		}
	}
	for _, prefix := range []string{linkPrefix, askPrefix} {
		if _, err := s.Store.TakeParked(ctx, u, prefix+name); err != nil {
			return fmt.Errorf("oauthlink: disconnect %s: %w", name, err)
		}
	}
	s.log().Info("account disconnected", slog.String("connector", name), slog.String("user", u.String()))
	return nil
}

// RevokeAll revokes, where the provider supports it, every link of u before the caller
// deletes the user's rows (signout all). Failures are logged; nothing is deleted here.
func (s *Service) RevokeAll(ctx context.Context, u tokenstore.UserKey) {
	for _, name := range s.order {
		p := s.providers[name]
		if !p.Conn.CanRevoke() {
			continue
		}
		if tok, err := s.Store.GetToken(ctx, u, tokenKey(name)); err == nil {
			if err := p.Conn.Revoke(ctx, fromStore(tok)); err != nil {
				s.log().Warn("revoking at the provider failed", slog.String("connector", name), slog.String("user", u.String()), slog.String("error", err.Error()))
			}
		}
	}
}

// Status is one connection's state for the connections command.
type Status struct {
	// Name is the connector's name; Display what users read.
	Name, Display string
	// Connected is true while the stored tokens can be used.
	Connected bool
	// Account is the linked account's display name, when known.
	Account string
	// Since is when the link was confirmed.
	Since time.Time
	// Expires is when the connection stops working unless renewed: set only when it cannot be
	// refreshed.
	Expires time.Time
	// Note replaces the "Not connected" line of a connection made without the connect command
	// (one from More).
	Note string
	// Scopes are the scopes the provider granted.
	Scopes []string
	// LastUsed is when the connection last called its back end for the user (zero: not within
	// the audit records kept).
	LastUsed time.Time
	// Lapses is when the connection stops working unless it is used before (the provider's
	// refresh-token lifetimes); zero when unknown.
	Lapses time.Time
}

// Lapse is when a connection linked at linked and last refreshed at refreshed (zero: never)
// stops working: idle after the last refresh (or the link), or absolute after the link,
// whichever comes first. A zero lifetime is unknown; zero when both are.
func Lapse(linked, refreshed time.Time, idle, absolute time.Duration) time.Time {
	if linked.IsZero() {
		return time.Time{}
	}
	var out time.Time
	if idle > 0 {
		from := linked
		if refreshed.After(from) {
			from = refreshed
		}
		out = from.Add(idle)
	}
	if absolute > 0 {
		if abs := linked.Add(absolute); out.IsZero() || abs.Before(out) {
			out = abs
		}
	}
	return out
}

// Statuses reports u's state for every configured connector.
func (s *Service) Statuses(ctx context.Context, u tokenstore.UserKey) ([]Status, error) {
	var out []Status
	var used map[string]time.Time
	if s.LastUsed != nil {
		used = s.LastUsed(ctx, u)
	}
	for _, name := range s.order {
		p := s.providers[name]
		st := Status{Name: name, Display: p.display(), LastUsed: used[name]}
		tok, err := s.Store.GetToken(ctx, u, tokenKey(name))
		switch {
		case err == nil && (tok.AccessToken != "" || tok.RefreshToken != ""):
			st.Connected = true
			if tok.RefreshToken == "" && !tok.Expiry.IsZero() {
				st.Expires = tok.Expiry
				st.Connected = s.now().Before(tok.Expiry)
			}
			prefs, _ := s.prefs(ctx, u, name)
			st.Account = prefs["account"]
			st.Since, _ = time.Parse(time.RFC3339Nano, prefs["linked"])
			st.Scopes = tok.Scopes
			if tok.RefreshToken != "" {
				refreshed, _ := time.Parse(time.RFC3339Nano, tok.Extra[xRefreshed])
				st.Lapses = Lapse(st.Since, refreshed, p.RefreshIdle, p.RefreshAbsolute)
			}
		case err == nil, errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrSignInNeeded):
		default:
			return nil, fmt.Errorf("oauthlink: connections: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Service) runConnections(ctx context.Context, t *bot.Turn, _ string) error {
	u, err := s.UserOf(t.Activity)
	if err != nil {
		return t.ReplyText(ctx, "I can only show connections for a signed-in user.")
	}
	sts, err := s.Statuses(ctx, u)
	if err != nil {
		return err
	}
	body := []map[string]any{cards.Heading("Your connections")}
	for i, st := range sts {
		word := s.commandNames()[i]
		var line string
		var actions []map[string]any
		switch {
		case st.Connected:
			line = "Connected"
			if st.Account != "" {
				line += " as " + st.Account
			}
			if !st.Since.IsZero() {
				line += " since " + st.Since.UTC().Format("2 Jan 2006")
			}
			if !st.Expires.IsZero() {
				line += "; expires " + st.Expires.UTC().Format("2 Jan 2006 15:04 UTC")
			}
			line += "."
			if len(st.Scopes) > 0 {
				line += "\n\nAllowed: " + strings.Join(st.Scopes, ", ") + "."
			}
			if s.LastUsed != nil {
				if st.LastUsed.IsZero() {
					line += "\n\nNot used in the last 7 days."
				} else {
					line += "\n\nLast used " + st.LastUsed.UTC().Format("2 Jan 2006 15:04 UTC") + "."
				}
			}
			if !st.Lapses.IsZero() {
				line += "\n\nStops working on " + st.Lapses.UTC().Format("2 Jan 2006") + " unless used before then"
				if p := s.providers[st.Name]; p.RefreshAbsolute > 0 && st.Lapses.Equal(st.Since.Add(p.RefreshAbsolute)) {
					line = strings.TrimSuffix(line, " unless used before then") + ": reconnect before then"
				}
				line += "."
			}
			actions = []map[string]any{submit("Reconnect", "reconnect "+word), submit("Disconnect", "disconnect "+word)}
		case !st.Expires.IsZero():
			line = "Expired on " + st.Expires.UTC().Format("2 Jan 2006 15:04 UTC") + ": connect again"
			actions = []map[string]any{submit("Connect", "connect "+word)}
		default:
			line = "Not connected"
			actions = []map[string]any{submit("Connect", "connect "+word)}
		}
		body = append(body, cards.Bold(st.Display), cards.Text(line, true),
			map[string]any{"type": "ActionSet", "actions": actions})
	}
	if s.More != nil {
		more, err := s.More(ctx, u)
		if err != nil {
			return err
		}
		body = append(body, MoreBlocks(more)...)
	}
	t.Outcome = "connections"
	return t.ReplyCard(ctx, "", cards.Attachment(cards.New(body...)))
}

// MoreBlocks renders connections made without the connect command: connected ones until
// their token expires, with a sign-out button; the others with their Note.
func MoreBlocks(sts []Status) []map[string]any {
	var body []map[string]any
	for _, st := range sts {
		line := st.Note
		var actions []map[string]any
		if st.Connected {
			line = "Connected"
			if !st.Expires.IsZero() {
				line += " until " + st.Expires.UTC().Format("2 Jan 2006 15:04 UTC")
			}
			actions = append(actions, submit("Sign out", "signout "+st.Name))
		}
		body = append(body, cards.Bold(st.Display), cards.Text(line, true))
		if len(actions) > 0 {
			body = append(body, map[string]any{"type": "ActionSet", "actions": actions})
		}
	}
	return body
}

// submit is a card button that runs command as if the user had typed it (Action.Execute, so
// it signs the user in from the card where needed).
func submit(title, command string) map[string]any { return bot.ExecuteCommand(title, command) }

func (s *Service) runLink(ctx context.Context, t *bot.Turn, args string) error {
	code := normalizeCode(args)
	if !codeRE.MatchString(code) {
		return t.ReplyText(ctx, "Type **link** and the 8-digit code the sign-in page showed, for example **link 12345678**.")
	}
	res, err := s.confirm(ctx, t, code)
	if err != nil {
		return err
	}
	if res != linked {
		t.Outcome = "link-refused"
		return t.ReplyText(ctx, "That code does not match a sign-in you started in this chat, or it has expired. Ask to connect again.")
	}
	return nil
}
