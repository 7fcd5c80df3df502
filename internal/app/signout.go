package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// registerSignOut adds "signout [name|all]".
func (a *App) registerSignOut() {
	a.Bot.Handle(bot.Command{Name: "signout", Usage: "signout [name|all]",
		Help: "Forget your sign-ins: all of them (default), or one back end such as graph.",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			if a.Store == nil {
				return t.ReplyText(ctx, "There is nothing to sign out of: this bot keeps no sign-ins.")
			}
			c, err := sso.CallerOf(t.Activity, a.Config.TenantID)
			if err != nil {
				return t.ReplyText(ctx, "I can only sign out a signed-in Microsoft Teams user.")
			}
			name := strings.ToLower(strings.TrimSpace(args))
			if name == "" || name == "all" {
				if a.SSO != nil {
					if err := a.SSO.M.TokenService.SignOut(ctx, c.ChannelUserID, a.Config.OAuthConnection, c.ChannelID); err != nil {
						return fmt.Errorf("sign out at the token service: %w", err)
					}
				}
				n, err := a.Store.ForgetUser(ctx, c.User)
				if err != nil {
					return fmt.Errorf("forget user: %w", err)
				}
				a.log.Info("user signed out of everything", slog.String("user", c.User.String()), slog.Int("rows", n))
				return t.ReplyText(ctx, "Done: I have forgotten all your sign-ins and signed you out. Next time you ask, I will sign you in again.")
			}
			if a.SSO != nil {
				if _, err := a.SSO.M.Resource(name); err == nil {
					if err := a.SSO.M.Forget(ctx, c, name); err != nil {
						return err
					}
					return t.ReplyText(ctx, fmt.Sprintf("Done: I have forgotten your %s token. Teams single sign-on gets a new one silently next time; type **signout all** to sign out completely.", name))
				} else if !errors.Is(err, sso.ErrUnknownResource) {
					return err
				}
			}
			return t.ReplyText(ctx, fmt.Sprintf("I don't know a sign-in called %q. Type **signout all** to forget every sign-in.", name))
		}})
}
