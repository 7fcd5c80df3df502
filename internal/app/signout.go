package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// registerSignOut adds "signout [name|all]".
func (a *App) registerSignOut() {
	a.Bot.Handle(bot.Command{Name: "signout", Usage: "signout [name|all]",
		Help: "Forget your sign-ins: all of them (default), or one back end such as graph or jira.",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			if a.Store == nil {
				return t.ReplyText(ctx, "There is nothing to sign out of: this bot keeps no sign-ins.")
			}
			name := strings.ToLower(strings.TrimSpace(args))
			if a.OAuth != nil && name != "" && name != "all" {
				// signout jira (or any OAuth connector's name) is disconnect.
				if u, err := a.OAuth.UserOf(t.Activity); err == nil {
					switch err := a.OAuth.Disconnect(ctx, u, name); {
					case err == nil:
						return t.ReplyText(ctx, mdtext.Sprintf("Done: I have forgotten your %s sign-in.", name))
					case !errors.Is(err, oauthlink.ErrUnknownConnector):
						return err
					}
				}
			}
			c, err := sso.CallerOf(t.Activity, a.Config.TenantID)
			if err != nil && a.OAuth != nil && a.Config.Anonymous && (name == "" || name == "all") {
				// Local anonymous mode: only OAuth connectors' rows exist, under the derived key.
				u, uerr := a.OAuth.UserOf(t.Activity)
				if uerr == nil {
					n, err := a.Store.ForgetUser(ctx, u)
					if err != nil {
						return fmt.Errorf("forget user: %w", err)
					}
					a.log.Info("user signed out of everything", slog.String("user", u.String()), slog.Int("rows", n))
					return t.ReplyText(ctx, "Done: I have forgotten all your sign-ins.")
				}
			}
			if err != nil && a.Config.Anonymous && a.OAuth == nil {
				// Local anonymous mode without connectors: nothing is ever stored for a user.
				return t.ReplyText(ctx, "Done: in this local anonymous mode I keep no sign-ins for you, so there was nothing to forget.")
			}
			if err != nil {
				return t.ReplyText(ctx, "I can only sign out a signed-in Microsoft Teams user.")
			}
			if name == "" || name == "all" {
				if a.OAuth != nil {
					a.OAuth.RevokeAll(ctx, c.User)
				}
				// What the bot holds goes first, whatever the token service says afterwards.
				n, err := a.Store.ForgetUser(ctx, c.User)
				if err != nil {
					return fmt.Errorf("forget user: %w", err)
				}
				a.log.Info("user signed out of everything", slog.String("user", c.User.String()), slog.Int("rows", n))
				if a.SSO != nil {
					if err := a.SSO.M.TokenService.SignOut(ctx, c.ChannelUserID, a.Config.OAuthConnection, c.ChannelID); err != nil {
						a.log.Warn("sign-out at the token service failed", slog.String("user", c.User.String()), slog.String("error", err.Error()))
						return t.ReplyText(ctx, "I have forgotten all your sign-ins, but could not sign you out of Teams single sign-on just now. "+
							"Type **signout** again in a minute to finish.")
					}
				}
				return t.ReplyText(ctx, "Done: I have forgotten all your sign-ins and signed you out. Next time you ask, I will sign you in again.")
			}
			if a.SSO != nil {
				if _, err := a.SSO.M.Resource(name); err == nil {
					if err := a.SSO.M.Forget(ctx, c, name); err != nil {
						return err
					}
					return t.ReplyText(ctx, mdtext.Sprintf("Done: I have forgotten your %s token. Teams single sign-on gets a new one silently next time; type **signout all** to sign out completely.", name))
				} else if !errors.Is(err, sso.ErrUnknownResource) {
					return err
				}
			}
			return t.ReplyText(ctx, mdtext.Sprintf("I don't know a sign-in called %s. Type **signout all** to forget every sign-in.", mdtext.Code(name)))
		}})
}
