package atlassian_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

func TestAuthorizeURLCarriesAtlassianParameters(t *testing.T) {
	e := newEnv(t)
	v := oauth2.NewVerifier()
	u, err := url.Parse(e.conn.OAuth.AuthCodeURL("s1", v))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{
		"audience": "api.atlassian.com", "client_id": e.srv.ClientID(), "redirect_uri": callbackURL,
		"state": "s1", "response_type": "code", "prompt": "consent", "code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	scopes := strings.Fields(q.Get("scope"))
	for _, s := range []string{"read:jira-work", "search:confluence", "read:me", "offline_access"} {
		if !strings.Contains(" "+strings.Join(scopes, " ")+" ", " "+s+" ") {
			t.Errorf("scope %s missing from %v", s, scopes)
		}
	}
	if q.Get("code_challenge") == "" || strings.Contains(u.String(), v) {
		t.Error("the URL must carry the S256 challenge and never the verifier")
	}
}

func TestTwoUsersLinkAndSeeTheirOwnIdentityAndSites(t *testing.T) {
	e := newEnv(t)
	e.link(t, standin.Alice)
	e.link(t, standin.Bob)
	ctx := context.Background()

	for _, tc := range []struct {
		user, name string
		sites      int
	}{
		{standin.Alice, "Alice Example", 2},
		{standin.Bob, "Bob Example", 1},
	} {
		me, err := e.conn.Me(ctx, e.client(tc.user))
		if err != nil {
			t.Fatal(err)
		}
		if me.Name != tc.name || me.AccountID != tc.user {
			t.Errorf("Me for %s = %+v", tc.user, me)
		}
		sites, err := e.conn.Sites(ctx, e.client(tc.user))
		if err != nil {
			t.Fatal(err)
		}
		if len(sites) != tc.sites {
			t.Errorf("%s has %d sites, want %d", tc.name, len(sites), tc.sites)
		}
		// One site is used without asking; with two the bot must ask unless one is remembered.
		_, ok := atlassian.ChooseSite(sites, "")
		if ok != (tc.sites == 1) {
			t.Errorf("%s: ChooseSite without memory ok=%v", tc.name, ok)
		}
		if s, ok := atlassian.ChooseSite(sites, standin.AcmeSite); !ok || s.URL != "https://acme.atlassian.net" {
			t.Errorf("%s: remembered site not chosen: %+v", tc.name, s)
		}
	}
}

func TestExchangeRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("mismatched PKCE verifier (Data Center, which documents PKCE)", func(t *testing.T) {
		srv := standin.Start(standin.Options{RedirectURIs: []string{callbackURL}, DataCenter: true})
		defer srv.Close()
		conn, err := atlassian.Config{ClientID: srv.ClientID(), ClientSecretName: "s", DataCenterBaseURL: srv.URL}.Open(oauth2.Runtime{
			RedirectURL: callbackURL, HTTPClient: srv.Client(), Now: srv.Now,
			Secret: func(context.Context, string) (string, error) { return srv.ClientSecret(), nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		cb, err := srv.AuthorizeAs(standin.Alice, conn.OAuth.AuthCodeURL("st", oauth2.NewVerifier()))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(cb)
		if _, err := conn.OAuth.Exchange(ctx, u.Query().Get("code"), oauth2.NewVerifier()); !errors.Is(err, oauth2.ErrInvalidGrant) {
			t.Fatalf("err = %v, want invalid_grant", err)
		}
	})
	t.Run("code replay", func(t *testing.T) {
		e := newEnv(t)
		v := oauth2.NewVerifier()
		code := e.authorize(t, standin.Alice, v)
		first, err := e.conn.OAuth.Exchange(ctx, code, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.conn.OAuth.Exchange(ctx, code, v); !errors.Is(err, oauth2.ErrInvalidGrant) {
			t.Fatalf("replay: err = %v, want invalid_grant", err)
		}
		// RFC 6749 §4.1.2: tokens from a replayed code are revoked.
		if _, err := e.conn.OAuth.Refresh(ctx, first.RefreshToken); !errors.Is(err, oauth2.ErrInvalidGrant) {
			t.Fatalf("refresh after replay: err = %v, want invalid_grant", err)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		e := newEnv(t)
		v := oauth2.NewVerifier()
		code := e.authorize(t, standin.Alice, v)
		e.srv.Advance(11 * time.Minute)
		if _, err := e.conn.OAuth.Exchange(ctx, code, v); !errors.Is(err, oauth2.ErrInvalidGrant) {
			t.Fatalf("err = %v, want invalid_grant", err)
		}
	})
	t.Run("wrong client secret is an operator problem, not a reconnect", func(t *testing.T) {
		e := newEnv(t)
		bad, err := atlassian.Config{ClientID: e.srv.ClientID(), ClientSecretName: "x", AuthURL: e.srv.URL, APIURL: e.srv.URL}.
			Open(oauth2.Runtime{RedirectURL: callbackURL, HTTPClient: e.srv.Client(), Now: e.srv.Now,
				Secret: func(context.Context, string) (string, error) { return "not-the-secret", nil }})
		if err != nil {
			t.Fatal(err)
		}
		v := oauth2.NewVerifier()
		code := e.authorize(t, standin.Alice, v)
		_, err = bad.OAuth.Exchange(ctx, code, v)
		if !errors.Is(err, oauth2.ErrMisconfigured) || errors.Is(err, oauth2.ErrReconnect) {
			t.Fatalf("err = %v, want misconfigured", err)
		}
		if !strings.Contains(atlassian.UserMessage(err), "administrator") {
			t.Errorf("user message %q", atlassian.UserMessage(err))
		}
	})
	t.Run("secret missing from Key Vault", func(t *testing.T) {
		e := newEnv(t)
		bad, _ := atlassian.Config{ClientID: e.srv.ClientID(), ClientSecretName: "x", AuthURL: e.srv.URL, APIURL: e.srv.URL}.
			Open(oauth2.Runtime{RedirectURL: callbackURL, HTTPClient: e.srv.Client(),
				Secret: func(context.Context, string) (string, error) { return "", errors.New("404 SecretNotFound") }})
		before := e.srv.TokenCalls()
		if _, err := bad.OAuth.Exchange(ctx, "c", oauth2.NewVerifier()); !errors.Is(err, oauth2.ErrMisconfigured) {
			t.Fatalf("err = %v", err)
		}
		if e.srv.TokenCalls() != before {
			t.Error("token endpoint called without a secret")
		}
	})
}
