package policy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/policy"
)

func TestPolicyRules(t *testing.T) {
	p, err := policy.Parse(`{"atlassian":{"sites":["ACME-1"]},"contoso":{"write":true,"confirm":true},"hr":{"write":true},"legacy":{"disabled":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	req := func(method, path string, ctx context.Context) *http.Request {
		r, _ := http.NewRequestWithContext(ctx, method, "https://api.example"+path, strings.NewReader("x"))
		return r
	}
	bg := context.Background()
	for _, c := range []struct {
		name, connector, method, path string
		ctx                           context.Context
		want                          error
	}{
		{"reads are allowed by default", "graph", "GET", "/v1.0/me", bg, nil},
		{"writes are off by default", "graph", "POST", "/v1.0/me/sendMail", bg, policy.ErrWriteDenied},
		{"PATCH and DELETE are writes", "atlassian", "DELETE", "/ex/jira/acme-1/rest/api/3/issue/X-1", bg, policy.ErrWriteDenied},
		{"a POST marked as a read", "sap", "POST", "/token", policy.ReadOnly(bg), nil},
		{"write enabled without confirmation", "hr", "PUT", "/api/me/leave", bg, nil},
		{"confirmed write", "contoso", "PUT", "/api/me/leave", policy.Confirmed(bg), nil},
		{"unconfirmed write where confirmation is required", "contoso", "PUT", "/api/me/leave", bg, policy.ErrUnconfirmed},
		{"confirmation does not lift read-only", "graph", "POST", "/v1.0/me/sendMail", policy.Confirmed(bg), policy.ErrWriteDenied},
		{"reads need no confirmation", "contoso", "GET", "/api/me/leave", bg, nil},
		{"allowed site", "atlassian", "GET", "/ex/jira/acme-1/rest/api/3/myself", bg, nil},
		{"other site", "atlassian", "GET", "/ex/confluence/globex-2/wiki/api/v2/pages/1", bg, policy.ErrSiteDenied},
		{"site-independent path", "atlassian", "GET", "/oauth/token/accessible-resources", bg, nil},
		{"disabled connector", "legacy", "GET", "/x", bg, policy.ErrDisabled},
	} {
		err := p.Check(req(c.method, c.path, c.ctx), audit.Target{Connector: c.connector})
		if !errors.Is(err, c.want) || (c.want != nil && !errors.Is(err, policy.ErrRefused)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if !p.Rule("contoso").Confirm || p.Rule("graph").Write {
		t.Error("rules not read")
	}
	for _, bad := range []string{`[]`, `{"x":{"writes":true}}`, `{"x":{"sites":[""]}}`, `{"x":`} {
		if _, err := policy.Parse(bad); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
}
