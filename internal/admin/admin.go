// Package admin holds the commands of the bot's administrators. Who is an administrator is
// configured as Entra app roles or group object ids (BOT_ADMIN_ROLES, BOT_ADMIN_GROUPS) and
// read from the asker's own validated token for the bot — never from a name.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// ErrPrompted means the asker was sent a sign-in card instead of an answer.
var ErrPrompted = errors.New("admin: sign-in requested")

// Admins says who is an administrator.
type Admins struct {
	// Roles are app role values of the bot's app; Groups are group object ids.
	Roles, Groups []string
}

// Configured reports whether anyone can be an administrator.
func (a Admins) Configured() bool { return len(a.Roles)+len(a.Groups) > 0 }

// Is reports whether the validated claims make their user an administrator. A token whose
// groups did not fit (overage) grants nothing through groups.
func (a Admins) Is(c *entra.UserClaims) bool {
	if c == nil {
		return false
	}
	for _, r := range c.Roles {
		for _, want := range a.Roles {
			if r == want {
				return true
			}
		}
	}
	if c.GroupsOverage {
		return false
	}
	for _, g := range c.Groups {
		for _, want := range a.Groups {
			if strings.EqualFold(g, want) {
				return true
			}
		}
	}
	return false
}

// Service answers the admin commands.
type Service struct {
	Admins Admins
	// Claims returns the turn user's claims from their validated token for the bot; it
	// returns ErrPrompted after sending a sign-in card when there is none.
	Claims func(ctx context.Context, t *bot.Turn) (*entra.UserClaims, error)
	// Revoke removes every connection and stored token of u (revoking at providers that
	// allow it) and returns how many stored items went.
	Revoke func(ctx context.Context, u tokenstore.UserKey) (int, error)
	Log    *slog.Logger
}

// Register adds "admin revoke <object id>".
func (s *Service) Register(b *bot.Bot) {
	b.Handle(bot.Command{Name: "admin revoke", Usage: "admin revoke <user object id>",
		Help: "Administrators: remove every connection of a user of your organisation (they must connect again).", Run: s.revoke})
}

func (s *Service) revoke(ctx context.Context, t *bot.Turn, args string) error {
	claims, err := s.Claims(ctx, t)
	if errors.Is(err, ErrPrompted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	me := tokenstore.UserKey{TenantID: claims.TenantID, ObjectID: claims.ObjectID}
	if !s.Admins.Is(claims) {
		t.Outcome = "admin-refused"
		s.Log.Warn("admin command refused: not an administrator", slog.String("user", me.String()))
		return t.ReplyText(ctx, "Only an administrator of this bot can do that.")
	}
	oid := strings.ToLower(strings.TrimSpace(args))
	if !config.IsGUID(oid) {
		return t.ReplyText(ctx, "Usage: `admin revoke <user object id>` — the user's Entra object id, a GUID.")
	}
	// Tenant-wide, within the administrator's own tenant only.
	target := tokenstore.UserKey{TenantID: claims.TenantID, ObjectID: oid}
	n, err := s.Revoke(ctx, target)
	if err != nil {
		return fmt.Errorf("admin revoke: %w", err)
	}
	t.Outcome = "admin-revoke"
	s.Log.Info("admin revoked a user's connections", slog.String("admin", me.String()), slog.String("user", target.String()), slog.Int("removed", n))
	return t.ReplyText(ctx, mdtext.Sprintf("Removed %d stored items of user %s. They will be asked to connect again.", n, mdtext.Code(oid)))
}
