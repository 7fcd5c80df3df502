package atlassian_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func TestDataCenter(t *testing.T) {
	ctx := context.Background()
	srv := standin.Start(standin.Options{RedirectURIs: []string{callbackURL}, DataCenter: true})
	defer srv.Close()
	conn, err := atlassian.Config{ClientID: srv.ClientID(), ClientSecretName: "s", DataCenterBaseURL: srv.URL}.Open(oauth2.Runtime{
		RedirectURL: callbackURL, HTTPClient: srv.Client(), Now: srv.Now,
		Secret: func(context.Context, string) (string, error) { return srv.ClientSecret(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	authURL := conn.OAuth.AuthCodeURL("st", oauth2.NewVerifier())
	if !strings.HasPrefix(authURL, srv.URL+"/rest/oauth2/latest/authorize?") || strings.Contains(authURL, "audience=") {
		t.Fatalf("authorize URL %s", authURL)
	}
	store := &memStore{rows: map[memKey]oauth2.Token{}}
	client := func(user string) (*atlassian.Jira, *atlassian.Confluence) {
		v := oauth2.NewVerifier()
		cb, err := srv.AuthorizeAs(user, conn.OAuth.AuthCodeURL("st", v))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(cb)
		tok, err := conn.OAuth.Exchange(ctx, u.Query().Get("code"), v)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		k := memKey{User: user, Connector: atlassian.Name}
		store.rows[k] = *tok
		hc := conn.OAuth.Client(&memSource{conn: conn.OAuth, store: store, key: k, now: srv.Now})
		sites, err := conn.Sites(ctx, hc)
		if err != nil || len(sites) != 1 {
			t.Fatalf("sites %v %v", sites, err)
		}
		me, err := conn.Me(ctx, hc)
		if err != nil || me.AccountID != user {
			t.Fatalf("me %+v %v", me, err)
		}
		return conn.Jira(hc, sites[0]), conn.Confluence(hc, sites[0])
	}
	alice, aliceWiki := client(standin.Alice)
	bob, bobWiki := client(standin.Bob)

	is, err := alice.Issue(ctx, "PROJ-1")
	if err != nil || is.URL != srv.URL+"/browse/PROJ-1" || is.Status != "In Progress" {
		t.Fatalf("alice PROJ-1: %+v %v", is, err)
	}
	if _, err := bob.Issue(ctx, "PROJ-1"); !errors.Is(err, atlassian.ErrNotPermitted) {
		t.Errorf("bob PROJ-1: %v", err)
	}
	p, err := aliceWiki.Page(ctx, srv.URL+"/spaces/ENG/pages/1001/Payment+service+runbook")
	if err != nil || p.Space != "Engineering" || p.URL != srv.URL+"/spaces/ENG/pages/1001/Payment+service+runbook" {
		t.Errorf("alice page: %+v %v", p, err)
	}
	if _, err := bobWiki.Page(ctx, "1001"); !errors.Is(err, atlassian.ErrNotPermitted) {
		t.Errorf("bob page 1001: %v", err)
	}
	found, err := bobWiki.Search(ctx, "payment", 5)
	if err != nil || len(found) != 1 || found[0].ID != "1002" {
		t.Errorf("bob search: %+v %v", found, err)
	}
	mine, err := bob.MyOpenIssues(ctx, 10)
	if err != nil || !slices.Equal(keys(mine), []string{"OPS-7", "SHARED-1"}) {
		t.Errorf("bob's issues %v %v", keys(mine), err)
	}
}
