// Package samlbot puts SAML applications (package saml) into the conversation: each becomes a
// resource of sso.Manager, so its token is obtained silently after Teams SSO, kept sealed per
// user, and sign-in requests are parked and resumed as for any on-behalf-of resource.
package samlbot

import (
	"context"
	"errors"
	"fmt"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/cards"
	"github.com/onbehalf/onbehalf/internal/connector/entraapi"
	"github.com/onbehalf/onbehalf/internal/connector/saml"
	"github.com/onbehalf/onbehalf/internal/entra"
	"github.com/onbehalf/onbehalf/internal/oauthlink"
	"github.com/onbehalf/onbehalf/internal/sso"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Resource is the application as sso.Manager knows it: its token comes from Exchange and is
// stored sealed per user like an on-behalf-of token.
func Resource(a *saml.App) sso.Resource {
	return sso.Resource{
		Name: a.Config().Name, Display: a.Config().Display, BaseURL: a.Config().APIBaseURL,
		Scopes: []string{a.Config().EntityID + "/.default"}, Exchange: a.Exchange,
	}
}

// HTTPClient returns a client for the SAML application named app whose requests carry the
// caller's access token at that application (entraapi.HTTPClient's contract: a 401 answer
// gets one fresh token, obtained again through OBO and the SAML bearer grant, for bodiless
// requests; any origin but the application's API base fails with entraapi.ErrOtherHost).
func HTTPClient(tokens entraapi.Tokens, caller sso.Caller, app string, base http.RoundTripper) (*http.Client, error) {
	return entraapi.HTTPClient(tokens, caller, app, base)
}

// Explain tells the user, in their words, why the application could not be used.
func Explain(err error, display string) mdtext.Markdown {
	var refused *saml.RefusedError
	switch {
	case errors.Is(err, entra.ErrNotAssigned):
		return mdtext.Sprintf("You are not assigned to **%s** in Microsoft Entra ID, so I cannot sign in to it as you. Ask your administrator to assign you to its enterprise application.", display)
	case errors.Is(err, saml.ErrWrongUser):
		return mdtext.Sprintf("Microsoft Entra ID answered for **%s** with a sign-in for someone else, so I did not use it. Your administrator should check the NameID claim of its enterprise application.", display)
	case errors.As(err, &refused):
		return mdtext.Sprintf("**%s** did not accept your sign-in (%s). Its clock, its identifier or its trust in Microsoft Entra ID may be misconfigured, or it does not know your account; your administrator can find the reason in the log.", display, refusalReason(refused.Description))
	case errors.Is(err, saml.ErrClientRejected):
		return mdtext.Sprintf("**%s** does not accept this bot's credentials. Your administrator needs to check the bot's OAuth client at %s.", display, display)
	case errors.Is(err, saml.ErrUnavailable):
		return mdtext.Sprintf("**%s** is not answering right now. Try again in a few minutes.", display)
	case errors.Is(err, entra.ErrMalformedAnswer):
		return mdtext.Sprintf("Microsoft Entra ID did not give me a usable sign-in for **%s**. Your administrator can find the reason in the log.", display)
	default:
		return mdtext.Sprintf("I could not reach **%s** as you right now. Try again in a few minutes.", display)
	}
}

// refusalReason names the kind of refusal from the application's description, without
// repeating the description (it may name the user or the assertion).
func refusalReason(desc string) string {
	d := strings.ToLower(desc)
	for _, k := range []struct{ key, reason string }{
		{"audience", "the sign-in was made out for another application"},
		{"expired", "the sign-in had expired by its clock"},
		{"not valid yet", "the sign-in was not valid yet by its clock"},
		{"replay", "the same sign-in was presented twice"},
		{"signature", "the sign-in's signature did not verify"},
		{"issuer", "it does not trust the issuer"},
		{"recipient", "the sign-in was addressed to another endpoint"},
		{"unknown user", "it does not know your account"},
	} {
		if strings.Contains(d, k.key) {
			return k.reason
		}
	}
	return "reason not given"
}

// Register adds "saml <app> <path>": GET a path of a SAML application's API as the user.
// It runs only in a personal chat (the answer is the user's own data).
func Register(b *bot.Bot, flow *sso.Flow, tokens entraapi.Tokens, apps []*saml.App, tenantID string, base http.RoundTripper, log *slog.Logger) {
	byName := map[string]*saml.App{}
	var names []string
	for _, a := range apps {
		byName[a.Config().Name] = a
		names = append(names, a.Config().Name)
	}
	b.Handle(bot.Command{Name: "saml", Usage: "saml <app> <path>", Help: "Call one of your organisation's SAML applications as you (for example: saml " + names[0] + " /me).",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			f := strings.Fields(args)
			if len(f) != 2 || !strings.HasPrefix(f[1], "/") {
				return t.ReplyText(ctx, mdtext.Sprintf("Usage: %s, for example %s. Apps: %s.", mdtext.Code("saml <app> <path>"), mdtext.Code("saml "+names[0]+" /me"), strings.Join(names, ", ")))
			}
			a, ok := byName[f[0]]
			if !ok {
				return t.ReplyText(ctx, mdtext.Sprintf("I don't know a SAML application called %q. Apps: %s.", f[0], strings.Join(names, ", ")))
			}
			_, err := flow.Need(ctx, t, a.Config().Name)
			if errors.Is(err, sso.ErrPrompted) {
				return nil
			}
			if err == nil {
				err = call(ctx, a, t, tokens, tenantID, base, f[1])
			}
			if errors.Is(err, sso.ErrSignInNeeded) {
				// The application refused its stored token and a fresh one needs the user
				// (consent, MFA): ask as on first use, parking the request.
				if _, err = flow.Need(ctx, t, a.Config().Name); errors.Is(err, sso.ErrPrompted) {
					return nil
				} else if err == nil {
					err = call(ctx, a, t, tokens, tenantID, base, f[1])
				}
			}
			if err != nil {
				t.Outcome = "saml-failed"
				log.Warn("SAML application could not be used", slog.String("app", a.Config().Name), slog.String("id", t.Activity.ID), slog.String("reason", err.Error()))
				return t.ReplyText(ctx, Explain(err, a.Config().Display))
			}
			return nil
		}})
}

func call(ctx context.Context, a *saml.App, t *bot.Turn, tokens entraapi.Tokens, tenantID string, base http.RoundTripper, p string) error {
	caller, err := sso.CallerOf(t.Activity, tenantID)
	if err != nil {
		return err
	}
	client, err := HTTPClient(tokens, caller, a.Config().Name, base)
	if err != nil {
		return err
	}
	// The path is resolved inside the API's base: "/../admin" is "/admin" under it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.Config().APIBaseURL, "/")+path.Clean(p), nil)
	if err != nil {
		return t.ReplyText(ctx, "That path is not valid.")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // Explain reads the cause through the *url.Error
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	t.Outcome = "saml"
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
		return t.ReplyText(ctx, mdtext.Sprintf("**%s** says you cannot see that (HTTP %d).", a.Config().Display, resp.StatusCode))
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: HTTP %d", saml.ErrUnavailable, resp.StatusCode)
	}
	return t.ReplyText(ctx, mdtext.Sprintf("**%s** answered HTTP %d:\n\n", a.Config().Display, resp.StatusCode)+mdtext.CodeBlock(strings.TrimSpace(string(body))))
}

// Statuses reports u's state at each SAML application: connected while a stored application
// token is valid. Nothing is obtained: the first use signs in by itself.
func Statuses(ctx context.Context, m *sso.Manager, u tokenstore.UserKey, apps []*saml.App, now time.Time) ([]oauthlink.Status, error) {
	var out []oauthlink.Status
	for _, a := range apps {
		c := a.Config()
		st := oauthlink.Status{Name: c.Name, Display: c.Display + " (SAML)",
			Note: fmt.Sprintf("Signs you in through Microsoft Entra ID when you use it: **saml %s /…**", c.Name)}
		tok, err := m.Stored(ctx, u, c.Name)
		switch {
		case err == nil && tok.AccessToken != "" && now.Before(tok.Expiry):
			st.Connected, st.Expires = true, tok.Expiry
		case err == nil, errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrSignInNeeded):
		default:
			return nil, fmt.Errorf("saml connections: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// RegisterConnections adds a "connections" command listing only the SAML applications, for
// deployments without OAuth connectors (whose connections command lists these too).
func RegisterConnections(b *bot.Bot, m *sso.Manager, apps []*saml.App, tenantID string, now func() time.Time) {
	b.Handle(bot.Command{Name: "connections", Usage: "connections", Help: "Show the applications you are signed in to.",
		Run: func(ctx context.Context, t *bot.Turn, _ string) error {
			c, err := sso.CallerOf(t.Activity, tenantID)
			if err != nil {
				return t.ReplyText(ctx, "I can only show connections for a signed-in user.")
			}
			sts, err := Statuses(ctx, m, c.User, apps, now())
			if err != nil {
				return err
			}
			t.Outcome = "connections"
			body := append([]map[string]any{cards.Heading("Your connections")}, oauthlink.MoreBlocks(sts)...)
			return t.ReplyCard(ctx, "", cards.Attachment(cards.New(body...)))
		}})
}
