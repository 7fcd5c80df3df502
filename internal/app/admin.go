package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/onbehalf/onbehalf/internal/admin"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// registerAdmin adds the administrators' commands when administrators are configured and
// single sign-on can tell who asks.
func (a *App) registerAdmin() {
	admins := admin.Admins{Roles: a.Config.AdminRoles, Groups: a.Config.AdminGroups}
	if !admins.Configured() || a.SSO == nil {
		return
	}
	s := &admin.Service{Admins: admins, Log: a.log,
		Claims: func(ctx context.Context, t *bot.Turn) (*entra.UserClaims, error) {
			c, err := sso.CallerOf(t.Activity, a.Config.TenantID)
			if err != nil {
				_ = t.ReplyText(ctx, "I can only do that for a signed-in Microsoft Teams user.")
				return nil, admin.ErrPrompted
			}
			tok, err := a.SSO.M.Assertion(ctx, c, "")
			if errors.Is(err, sso.ErrSignInNeeded) {
				t.Outcome = "sign-in"
				if err := a.SSO.SendCard(ctx, t, "Sign in so I can check that you are an administrator, then ask again."); err != nil {
					return nil, err
				}
				return nil, admin.ErrPrompted
			}
			if err != nil {
				return nil, err
			}
			return a.SSO.Validator.AssertionClaims(ctx, tok, c.User.TenantID, c.User.ObjectID)
		},
		Revoke: func(ctx context.Context, u tokenstore.UserKey) (int, error) {
			if a.OAuth != nil {
				a.OAuth.RevokeAll(ctx, u)
			}
			n, err := a.Store.ForgetUser(ctx, u)
			if err != nil {
				return n, fmt.Errorf("forget user: %w", err)
			}
			return n, nil
		},
	}
	s.Register(a.Bot)
}
