// Package entraapi is the extension point for a company's own APIs protected by Microsoft
// Entra ID: it returns an *http.Client whose requests carry the signed-in user's token for
// that API, obtained on their behalf (OBO), so the API sees the user — not a service
// account — and applies that user's permissions.
//
// Configure an API with the ENTRA_APIS setting (a JSON array):
//
//	ENTRA_APIS=[{"name":"contoso","display":"Contoso HR","baseUrl":"https://hr.contoso.com/api",
//	             "scopes":["api://contoso-hr/access_as_user"]}]
//
// The API's app registration must expose the scope, and the bot's app registration must be
// allowed to request it (API permissions, with consent). Then, in a command:
//
//	tok, err := flow.Need(ctx, turn, "contoso")      // prompts for sign-in if needed
//	if errors.Is(err, sso.ErrPrompted) { return nil }
//	client, err := entraapi.HTTPClient(mgr, caller, "contoso", nil)
//	resp, err := client.Get("https://hr.contoso.com/api/me/leave")
package entraapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/mdtext"
	"github.com/onbehalf/onbehalf/internal/sso"
)

// ErrOtherHost refuses to send a user's token anywhere but the API it was issued for.
var ErrOtherHost = errors.New("entraapi: request is not for the API's base URL; the user's token is not sent")

// Tokens obtains and forgets a user's token for a resource (sso.Manager).
type Tokens interface {
	Token(ctx context.Context, c sso.Caller, resource string) (string, error)
	Forget(ctx context.Context, c sso.Caller, resource string) error
	Resource(name string) (sso.Resource, error)
}

var _ Tokens = (*sso.Manager)(nil)

// HTTPClient returns a client for the API named resource whose requests carry caller's
// token. A 401 answer makes it obtain a fresh token and retry once (bodiless requests only).
// Requests to any other origin than the API's base URL fail with ErrOtherHost.
func HTTPClient(tokens Tokens, caller sso.Caller, resource string, base http.RoundTripper) (*http.Client, error) {
	r, err := tokens.Resource(resource)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(r.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("entraapi: %s has no valid base URL", resource)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	target := audit.Target{Connector: resource, Audience: audienceOf(r), Scopes: append([]string(nil), r.Scopes...)}
	return &http.Client{Transport: &transport{tokens: tokens, caller: caller, resource: resource, base: base, origin: u, target: target}}, nil
}

type transport struct {
	tokens   Tokens
	caller   sso.Caller
	resource string
	base     http.RoundTripper
	origin   *url.URL
	target   audit.Target
}

// audienceOf is the resource the API's tokens are issued for: its first scope without the
// scope name ("api://contoso-hr/access_as_user" → "api://contoso-hr"), else its base URL.
func audienceOf(r sso.Resource) string {
	if len(r.Scopes) > 0 {
		if i := strings.LastIndex(r.Scopes[0], "/"); i > 0 {
			return r.Scopes[0][:i]
		}
	}
	return r.BaseURL
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Scheme, t.origin.Scheme) || !strings.EqualFold(req.URL.Host, t.origin.Host) ||
		!underBase(req.URL.Path, t.origin.Path) {
		return nil, ErrOtherHost
	}
	resp, err := t.send(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.Body != nil && req.Body != http.NoBody {
		return resp, err
	}
	// The API refused the token (revoked, or conditional access changed): get a new one once.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := t.tokens.Forget(req.Context(), t.caller, t.resource); err != nil {
		return nil, err
	}
	return t.send(req)
}

// underBase reports whether p, once "." and ".." are resolved, lies under base on a path
// segment boundary (/api/me is under /api; /apix and /api/../admin are not).
func underBase(p, base string) bool {
	base = strings.TrimRight(path.Clean("/"+base), "/")
	p = path.Clean("/" + p)
	return base == "" || p == base || strings.HasPrefix(p, base+"/")
}

func (t *transport) send(req *http.Request) (*http.Response, error) {
	tok, err := t.tokens.Token(req.Context(), t.caller, t.resource)
	if err != nil {
		return nil, err
	}
	r := req.Clone(audit.WithTarget(req.Context(), t.target))
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r)
}

// Register adds the example command "api <name> <path>", which GETs a path of a configured
// API as the user and shows the answer.
func Register(b *bot.Bot, flow *sso.Flow, tokens Tokens, tenantID string, base http.RoundTripper) {
	b.Handle(bot.Command{Name: "api", Usage: "api <name> <path>", Help: "Call one of your organisation's APIs as you (for example: api contoso /me).",
		Run: func(ctx context.Context, t *bot.Turn, args string) error {
			f := strings.Fields(args)
			if len(f) != 2 || !strings.HasPrefix(f[1], "/") {
				return t.ReplyText(ctx, "Usage: `api <name> <path>`, for example `api contoso /me`.")
			}
			name, apiPath := f[0], f[1]
			r, err := tokens.Resource(name)
			if err != nil || name == "graph" {
				return t.ReplyText(ctx, mdtext.Sprintf("I don't know an API called %s.", mdtext.Code(name)))
			}
			if r.Exchange != nil { // a SAML application: its own command explains its failures
				return t.ReplyText(ctx, mdtext.Sprintf("%s is a SAML application: ask %s.", r.Display, mdtext.Code("saml "+name+" "+apiPath)))
			}
			if _, err := flow.Need(ctx, t, name); errors.Is(err, sso.ErrPrompted) {
				return nil
			} else if err != nil {
				return err
			}
			caller, err := sso.CallerOf(t.Activity, tenantID)
			if err != nil {
				return err
			}
			client, err := HTTPClient(tokens, caller, name, base)
			if err != nil {
				return err
			}
			// The path is resolved inside the API's base: "/../admin" is "/admin" under it.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(r.BaseURL, "/")+path.Clean(apiPath), nil)
			if err != nil {
				return t.ReplyText(ctx, "That path is not valid.")
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("api %s: %w", name, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
			text := mdtext.Sprintf("**%s** answered HTTP %d:\n\n%s", r.Name, resp.StatusCode, mdtext.CodeBlock(strings.TrimSpace(string(body))))
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound {
				text = mdtext.Sprintf("**%s** says you cannot see that (HTTP %d).", r.Name, resp.StatusCode)
			}
			return t.ReplyText(ctx, text)
		}})
}
