// Package policy is the administrator's say over what the bot may do as its users, per
// connector: whether it may write (off unless enabled), which Atlassian sites it may use, and
// whether a connector may be used at all. It is checked in one place, the audit transport
// under every as-the-user client, so a refused request is never sent and is recorded.
//
// Configure it with the CONNECTOR_POLICY setting (JSON; every key optional):
//
//	CONNECTOR_POLICY={"atlassian":{"write":false,"sites":["1324a887-45db-1bf4-1e99-ef0ff456d421"]},
//	                  "contoso":{"write":true,"confirm":true},
//	                  "legacy-hr":{"disabled":true}}
//
// A connector the setting does not name may read and may not write.
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/onbehalf/onbehalf/internal/audit"
)

// Errors the transport returns for a refused request; both match ErrRefused.
var (
	ErrRefused     = errors.New("policy: refused by your organisation's policy")
	ErrWriteDenied = fmt.Errorf("%w: this connection may only read", ErrRefused)
	ErrSiteDenied  = fmt.Errorf("%w: this site is not allowed", ErrRefused)
	ErrDisabled    = fmt.Errorf("%w: this connection is turned off", ErrRefused)
	ErrUnconfirmed = fmt.Errorf("%w: a write must be confirmed by the user first", ErrRefused)
)

// Rule is one connector's policy.
type Rule struct {
	// Write allows requests that change data. Off by default.
	Write bool `json:"write"`
	// Confirm requires every write to have been confirmed by the user on a card that showed
	// exactly what is sent (the code that posts after the click marks it with Confirmed); any
	// other write is refused. Doctor warns when Write is on without it.
	Confirm bool `json:"confirm"`
	// Sites lists the Atlassian cloud ids the connector may call; empty: any.
	Sites []string `json:"sites,omitempty"`
	// Disabled turns the connector off entirely.
	Disabled bool `json:"disabled"`
}

// Policy maps connector names to rules.
type Policy struct {
	rules map[string]Rule
}

// Parse reads CONNECTOR_POLICY; empty means the defaults (read only, everywhere).
func Parse(v string) (*Policy, error) {
	p := &Policy{rules: map[string]Rule{}}
	if strings.TrimSpace(v) == "" {
		return p, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.rules); err != nil {
		return nil, fmt.Errorf("CONNECTOR_POLICY: not a JSON object of connector rules ({\"name\":{\"write\":false,...}}): %w", err)
	}
	for name, r := range p.rules {
		for i, s := range r.Sites {
			r.Sites[i] = strings.ToLower(strings.TrimSpace(s))
			if r.Sites[i] == "" {
				return nil, fmt.Errorf("CONNECTOR_POLICY: %s has an empty site", name)
			}
		}
	}
	return p, nil
}

// Rule returns the rule in force for connector (the default when not configured).
func (p *Policy) Rule(connector string) Rule {
	if p == nil {
		return Rule{}
	}
	return p.rules[connector]
}

// Names lists the connectors the policy names, sorted.
func (p *Policy) Names() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.rules))
	for n := range p.rules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type readKey struct{}

// ReadOnly marks the requests made under ctx as reads although their method is not GET (a
// token redeem, a search sent as POST). Only connector code that knows this sets it.
func ReadOnly(ctx context.Context) context.Context { return context.WithValue(ctx, readKey{}, true) }

type confirmedKey struct{}

// Confirmed marks the requests made under ctx as a write the user confirmed, on a card that
// showed exactly what is sent. Only the code that runs the card's confirm button sets it.
func Confirmed(ctx context.Context) context.Context {
	return context.WithValue(ctx, confirmedKey{}, true)
}

func isConfirmed(req *http.Request) bool {
	c, _ := req.Context().Value(confirmedKey{}).(bool)
	return c
}

// IsWrite reports whether req may change data: any method but GET, HEAD and OPTIONS, unless
// its context is marked ReadOnly.
func IsWrite(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	ro, _ := req.Context().Value(readKey{}).(bool)
	return !ro
}

// Check implements audit.Guard: it refuses a request the connector's rule does not allow.
func (p *Policy) Check(req *http.Request, t audit.Target) error {
	r := p.Rule(t.Connector)
	switch {
	case r.Disabled:
		return ErrDisabled
	case IsWrite(req) && !r.Write:
		return ErrWriteDenied
	case IsWrite(req) && r.Confirm && !isConfirmed(req):
		return ErrUnconfirmed
	case len(r.Sites) > 0:
		if site, ok := atlassianSite(req.URL.Path); ok && !contains(r.Sites, site) {
			return ErrSiteDenied
		}
	}
	return nil
}

// atlassianSite is the cloud id in an Atlassian platform path (/ex/jira/{cloudid}/…,
// /ex/confluence/{cloudid}/…; developer.atlassian.com cloud/jira/platform/oauth-2-3lo-apps,
// "Construct the request URL").
func atlassianSite(p string) (string, bool) {
	f := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(f) >= 3 && f[0] == "ex" && (f[1] == "jira" || f[1] == "confluence") {
		return strings.ToLower(f[2]), true
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var _ audit.Guard = (*Policy)(nil)
