package ldap

import (
	"context"
	"errors"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"log/slog"
	"strings"

	"github.com/onbehalf/onbehalf/internal/bot"
)

// ErrPrompted means the identity source already answered the user (a sign-in card, or why it
// cannot sign them in); the command has nothing more to say.
var ErrPrompted = errors.New("ldap: user prompted")

// Identities yields the validated identity of a turn's sender: the claims of a Teams SSO token
// whose signature, issuer, audience and subject were checked against the activity's sender.
// It returns ErrPrompted when it asked the user to sign in instead.
type Identities interface {
	Identity(ctx context.Context, t *bot.Turn) (Identity, error)
}

// Register adds `ldap whoami`, `directory <name>` and `ldap search <words>`. They are data
// commands: the bot answers them only in a personal chat (bot.Command.Shared is false).
func Register(b *bot.Bot, d *Directory, ids Identities, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	r := &runner{d: d, ids: ids, log: log}
	b.Handle(bot.Command{Name: "ldap whoami", Usage: "ldap whoami",
		Help: "Show who the company directory thinks you are when I read it for you.", Run: r.whoami})
	b.Handle(bot.Command{Name: "directory", Usage: "directory <name>",
		Help: "Look people up in the company directory, as you.", Run: r.people})
	b.Handle(bot.Command{Name: "ldap search", Usage: "ldap search <words>",
		Help: "Search the company directory for anything you may read.", Run: r.search})
}

type runner struct {
	d   *Directory
	ids Identities
	log *slog.Logger
}

// as is the identity rule of this connector, in one place: the user's entry comes only from
// the validated token's claims (MapUser), and every operation after it carries the proxy
// control for that entry.
func (r *runner) as(ctx context.Context, t *bot.Turn, f func(dn string) error) error {
	id, err := r.ids.Identity(ctx, t)
	if errors.Is(err, ErrPrompted) {
		return nil
	}
	if err != nil {
		return err
	}
	dn, err := r.d.MapUser(ctx, id)
	if err != nil {
		return r.explain(ctx, t, err)
	}
	if err := f(dn); err != nil {
		return r.explain(ctx, t, err)
	}
	return nil
}

func (r *runner) whoami(ctx context.Context, t *bot.Turn, _ string) error {
	return r.as(ctx, t, func(dn string) error {
		authz, err := r.d.WhoAmI(ctx, dn)
		if err != nil {
			return err
		}
		return t.ReplyText(ctx, mdtext.Sprintf("The directory treats my requests for you as **%s**, so you see only what that entry may read.", authz))
	})
}

func (r *runner) people(ctx context.Context, t *bot.Turn, args string) error {
	if strings.TrimSpace(args) == "" {
		return t.ReplyText(ctx, "Whom should I look up? For example: **directory alice**")
	}
	return r.as(ctx, t, func(dn string) error {
		res, err := r.d.People(ctx, dn, args)
		if err != nil {
			return err
		}
		return t.ReplyText(ctx, format(mdtext.Sprintf("People matching “%s”", args), res))
	})
}

func (r *runner) search(ctx context.Context, t *bot.Turn, args string) error {
	if strings.TrimSpace(args) == "" {
		return t.ReplyText(ctx, "What should I look for? For example: **ldap search finance**")
	}
	return r.as(ctx, t, func(dn string) error {
		res, err := r.d.Search(ctx, dn, args)
		if err != nil {
			return err
		}
		return t.ReplyText(ctx, format(mdtext.Sprintf("Directory entries matching “%s”", args), res))
	})
}

// format lists entries as Markdown: the name, then each attribute the user may read. Every
// value comes from the directory, so each is escaped.
func format(title mdtext.Markdown, res *Result) mdtext.Markdown {
	var b strings.Builder
	b.WriteString("**" + string(title) + "**\n\n")
	if len(res.Entries) == 0 {
		b.WriteString("Nothing you may read matches.")
		return mdtext.Markdown(b.String())
	}
	for _, e := range res.Entries {
		name := e.Get("cn")
		if name == "" {
			name = e.DN
		}
		b.WriteString(string(mdtext.Sprintf("- **%s** (%s)", name, e.DN)))
		for _, a := range e.Attrs {
			if a.Name == "cn" {
				continue
			}
			b.WriteString(string(mdtext.Sprintf("; %s: %s", a.Name, strings.Join(a.Values, ", "))))
		}
		b.WriteString("\n")
	}
	if res.Truncated {
		b.WriteString("\nThere are more; add words to narrow the search.")
	}
	return mdtext.Markdown(b.String())
}

// explain tells the user what happened in a sentence and the operator the detail in the log.
func (r *runner) explain(ctx context.Context, t *bot.Turn, err error) error {
	var se *SettingError
	var msg mdtext.Markdown
	switch {
	case errors.Is(err, ErrBadInput):
		t.Outcome = "ldap-bad-input"
		msg = mdtext.Sprintf("I can't search for that. Use up to %d words of at least %d characters, %d characters in all, without control characters.", maxWords, minWordBytes, maxInput)
	case errors.Is(err, ErrUnavailable):
		t.Outcome = "ldap-unavailable"
		r.log.Warn("directory unavailable", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
		msg = "The directory is unavailable right now. Please try again in a few minutes."
	case errors.As(err, &se):
		t.Outcome = "ldap-misconfigured"
		r.log.Error("LDAP connector misconfigured", slog.String("setting", se.Setting), slog.String("error", err.Error()))
		msg = "I can't reach the directory because the bot's directory connection is misconfigured. Your administrator can see which setting to fix in the bot's log."
	case errors.Is(err, ErrControlUnsupported):
		t.Outcome = "ldap-no-proxy-control"
		r.log.Error("LDAP directory cannot act for users", slog.String("error", err.Error()))
		msg = "I won't search this directory for you: it cannot apply your own access rules to my requests (it does not support proxied authorization), and I will not show you what only the bot may see. Your administrator can see the fix in the bot's log."
	case errors.Is(err, ErrProxyDenied):
		t.Outcome = "ldap-proxy-denied"
		r.log.Warn("directory refused to act for the user", slog.String("id", t.Activity.ID), slog.String("error", err.Error()))
		msg = "The directory does not allow me to act for your directory entry, so I can't search it for you. Ask your directory administrator to allow the bot to act for your entry."
	case errors.Is(err, ErrUnmapped):
		t.Outcome = "ldap-unmapped"
		r.log.Info("no directory entry for the user", slog.String("id", t.Activity.ID), slog.String("reason", err.Error()))
		msg = mdtext.Sprintf("I couldn't find your entry in the directory: none has your sign-in %s in its %s attribute. Ask your directory administrator to add it.", claimWord(r.d.cfg.UserClaim), r.d.cfg.UserAttribute)
	case errors.Is(err, ErrAmbiguous):
		t.Outcome = "ldap-ambiguous"
		r.log.Warn("several directory entries for the user", slog.String("id", t.Activity.ID), slog.String("reason", err.Error()))
		msg = mdtext.Sprintf("More than one directory entry has your sign-in %s in its %s attribute, so I can't tell which one is you. Ask your directory administrator to fix it.", claimWord(r.d.cfg.UserClaim), r.d.cfg.UserAttribute)
	default:
		return err
	}
	return t.ReplyText(ctx, msg)
}

func claimWord(claim string) string {
	switch claim {
	case claimOID:
		return "object id"
	case claimMail:
		return "email address"
	}
	return "name"
}
