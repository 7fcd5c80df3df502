package atlassian_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func TestConfluenceSearchIsFilteredPerUser(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	for _, tc := range []struct {
		user, text string
		want       []string
	}{
		{standin.Alice, "payment", []string{"1001", "1002"}},
		{standin.Bob, "payment", []string{"1002"}},
		{standin.Alice, "build cache", []string{}},
		{standin.Bob, "build cache", []string{"1003"}},
		{standin.Bob, `holidays" OR space = ENG OR text ~ "payment`, []string{}},
	} {
		got, err := e.confluence(t, tc.user).Search(context.Background(), tc.text, 10)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.user, tc.text, err)
		}
		ids := []string{}
		for _, p := range got {
			ids = append(ids, p.ID)
			if !strings.HasPrefix(p.URL, "https://acme.atlassian.net/wiki/spaces/") || p.Space == "" || p.Title == "" {
				t.Errorf("result %+v lacks a link, space or title", p)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s %q: %v, want %v", tc.user, tc.text, ids, tc.want)
		}
	}
}

func TestConfluencePageByIDOrLink(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	ctx := context.Background()
	for _, ref := range []string{
		"1001",
		"https://acme.atlassian.net/wiki/spaces/ENG/pages/1001/Payment+service+runbook",
		"<https://acme.atlassian.net/wiki/pages/viewpage.action?pageId=1001>",
		"https://acme.atlassian.net/wiki/spaces/ENG/pages/1001",
	} {
		p, err := e.confluence(t, standin.Alice).Page(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if p.Title != "Payment service runbook" || p.Space != "Engineering" || p.Updated.IsZero() ||
			!strings.Contains(p.Excerpt, "Restart the payment workers") || strings.Contains(p.Excerpt, "<") ||
			p.URL != "https://acme.atlassian.net/wiki/spaces/ENG/pages/1001/Payment+service+runbook" {
			t.Errorf("%s: %+v", ref, p)
		}
	}

	p, err := e.confluence(t, standin.Bob).Page(ctx, "1001")
	if !errors.Is(err, atlassian.ErrNotPermitted) || p.Title != "" {
		t.Fatalf("bob opened 1001: %+v, %v", p, err)
	}
	if got := atlassian.UserMessage(err); got != "Confluence page 1001 does not exist, or you do not have permission to see it." {
		t.Errorf("message %q", got)
	}
	if _, err := e.confluence(t, standin.Bob).Page(ctx, "999999"); !errors.Is(err, atlassian.ErrNotPermitted) {
		t.Errorf("missing page: %v", err)
	}

	ca := e.confluence(t, standin.Alice)
	e.srv.Inject(standin.Fault{Status: 500, Times: -1}) // nothing below may reach Atlassian
	for _, ref := range []string{
		"", "abc", "https://evil.example.com/wiki/spaces/ENG/pages/1001/x",
		"https://globex.atlassian.net/wiki/spaces/GLX/pages/1001", "https://acme.atlassian.net/wiki/spaces/ENG/overview",
		"1001/../../content", "javascript:alert(1)",
	} {
		if _, err := ca.Page(ctx, ref); !errors.Is(err, atlassian.ErrBadInput) {
			t.Errorf("%q: err = %v, want bad input", ref, err)
		}
	}
	if e.srv.FaultHits() != 0 {
		t.Errorf("%d bad references reached Atlassian", e.srv.FaultHits())
	}
}
