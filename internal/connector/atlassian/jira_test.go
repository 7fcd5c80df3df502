package atlassian_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func keys(is []atlassian.Issue) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, i.Key)
	}
	slices.Sort(out)
	return out
}

func TestIssueIsShownOnlyToUsersWhoMaySeeIt(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	ctx := context.Background()

	is, err := e.jira(t, standin.Alice).Issue(ctx, "PROJ-1")
	if err != nil {
		t.Fatal(err)
	}
	if is.Summary != "Payment service leaks memory under load" || is.Status != "In Progress" ||
		is.Assignee != "Alice Example" || is.Priority != "High" || is.Updated.IsZero() ||
		is.URL != "https://acme.atlassian.net/browse/PROJ-1" {
		t.Errorf("alice PROJ-1 = %+v", is)
	}

	for _, tc := range []struct{ user, key string }{
		{standin.Bob, "PROJ-1"},   // exists, Bob may not browse PROJ
		{standin.Alice, "OPS-7"},  // exists, Alice may not browse OPS
		{standin.Alice, "NOPE-9"}, // does not exist
	} {
		is, err := e.jira(t, tc.user).Issue(ctx, tc.key)
		if !errors.Is(err, atlassian.ErrNotPermitted) {
			t.Fatalf("%s %s: err = %v, issue %+v", tc.user, tc.key, err, is)
		}
		if is.Summary != "" {
			t.Errorf("%s %s leaked %q", tc.user, tc.key, is.Summary)
		}
		msg := atlassian.UserMessage(err)
		want := fmt.Sprintf("Jira issue %s does not exist, or you do not have permission to see it.", tc.key)
		if msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
	}

	if is, err := e.jira(t, standin.Bob).Issue(ctx, "ops-7"); err != nil || is.Summary != "Disk alert on build agents" {
		t.Errorf("bob OPS-7 = %+v, %v", is, err)
	}
}

func TestMalformedIssueKeyIsRefusedBeforeAnyCall(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	j := e.jira(t, standin.Alice)
	// Any request reaching the API would consume this fault.
	e.srv.Inject(standin.Fault{Status: 500, Times: -1})
	for _, key := range []string{"", "PROJ", "PROJ-", "1-PROJ", "PROJ-1/../../myself", "PROJ-1?x=1", "P-1", "PROJ-1 OR 1=1"} {
		_, err := j.Issue(context.Background(), key)
		if !errors.Is(err, atlassian.ErrBadInput) {
			t.Errorf("%q: err = %v, want bad input", key, err)
		}
		if !strings.Contains(atlassian.UserMessage(err), "PROJ-123") {
			t.Errorf("%q: message %q does not show the expected form", key, atlassian.UserMessage(err))
		}
	}
	if e.srv.FaultHits() != 0 {
		t.Errorf("%d requests reached Atlassian", e.srv.FaultHits())
	}
}

func TestMyOpenIssuesAreEachUsersOwn(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	for user, want := range map[string][]string{
		standin.Alice: {"PROJ-1", "PROJ-2", "SHARED-2"}, // PROJ-3 is done, SHARED-1 is Bob's
		standin.Bob:   {"OPS-7", "SHARED-1"},
	} {
		got, err := e.jira(t, user).MyOpenIssues(context.Background(), 20)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys(got), want) {
			t.Errorf("%s: %v, want %v", user, keys(got), want)
		}
	}
}

func TestSearchIsFilteredPerUserAndUserTextCannotAddClauses(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	for _, tc := range []struct {
		user, text string
		want       []string
	}{
		{standin.Alice, "payment", []string{"PROJ-1", "PROJ-2", "PROJ-3"}},
		{standin.Bob, "payment", []string{}},
		{standin.Bob, "Disk ALERT", []string{"OPS-7"}},
		{standin.Alice, "disk alert", []string{}},
		{standin.Bob, "offsite", []string{"SHARED-1"}},
		{standin.Alice, "offsite", []string{"SHARED-1"}},
		// Attempts to close the string and add clauses stay plain words.
		{standin.Bob, `offsite" OR project = PROJ OR text ~ "payment`, []string{}},
		{standin.Alice, `x" OR assignee = currentUser() OR summary ~ "y`, []string{}},
		{standin.Bob, `offsite\" ORDER BY key`, []string{}},
	} {
		got, err := e.jira(t, tc.user).Search(context.Background(), tc.text, 20)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.user, tc.text, err)
		}
		if !slices.Equal(keys(got), tc.want) {
			t.Errorf("%s %q: %v, want %v", tc.user, tc.text, keys(got), tc.want)
		}
	}
	if _, err := e.jira(t, standin.Alice).Search(context.Background(), `  "()*  `, 5); !errors.Is(err, atlassian.ErrBadInput) {
		t.Errorf("empty search: err = %v", err)
	}
}

func TestUsersInParallelGetTheirOwnAnswers(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	ja, jb := e.jira(t, standin.Alice), e.jira(t, standin.Bob)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 25 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			is, err := ja.Issue(ctx, "PROJ-1")
			if err != nil || is.Assignee != "Alice Example" {
				errs <- fmt.Errorf("alice: %+v %v", is, err)
			}
		}()
		go func() {
			defer wg.Done()
			is, err := jb.Issue(ctx, "PROJ-1")
			if !errors.Is(err, atlassian.ErrNotPermitted) || is.Summary != "" {
				errs <- fmt.Errorf("bob obtained PROJ-1: %+v %v", is, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSecondSiteIsSeparate(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	glx := e.conn.Jira(e.client(standin.Alice), e.site(t, standin.Alice, standin.GlobexSite))
	is, err := glx.Issue(context.Background(), "GLX-1")
	if err != nil || is.URL != "https://globex.atlassian.net/browse/GLX-1" {
		t.Fatalf("GLX-1 = %+v, %v", is, err)
	}
	if _, err := e.jira(t, standin.Alice).Issue(context.Background(), "GLX-1"); !errors.Is(err, atlassian.ErrNotPermitted) {
		t.Errorf("GLX-1 on the Acme site: %v", err)
	}
}

func TestSearchFollowsNextPageTokensWhenJiraReturnsShortPages(t *testing.T) {
	// Jira Cloud's enhanced search may answer fewer issues than maxResults asks and says
	// whether more exist only through nextPageToken; it has no total to show.
	e := newEnvWith(t, standin.Options{SearchPageLimit: 2})
	e.link(t, standin.Alice)
	ctx := context.Background()
	j := e.jira(t, standin.Alice)
	calls := e.srv.APICalls()
	is, err := j.MyOpenIssues(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keysInOrder(is), ","); got != "PROJ-1,SHARED-2,PROJ-2" {
		t.Errorf("open issues across pages = %s, want PROJ-1,SHARED-2,PROJ-2 (newest first)", got)
	}
	if n := e.srv.APICalls() - calls; n != 2 {
		t.Errorf("%d search requests, want 2 pages", n)
	}
	// Asking for fewer stops as soon as they are in.
	calls = e.srv.APICalls()
	is, err = j.Search(ctx, "payment", 1)
	if err != nil || len(is) != 1 || is[0].Key != "PROJ-1" {
		t.Fatalf("search max 1: %v %v", keysInOrder(is), err)
	}
	if n := e.srv.APICalls() - calls; n != 1 {
		t.Errorf("%d search requests for one issue, want 1", n)
	}
}

func keysInOrder(is []atlassian.Issue) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, i.Key)
	}
	return out
}
