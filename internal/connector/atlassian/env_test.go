package atlassian_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/atlassian"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
)

const callbackURL = "https://bot.example.com/api/oauth/callback"

// memStore is a test-only TokenStore: Update holds a lock for the whole callback, which is
// the serialisation the real store provides with its lease.
type memStore struct {
	mu   sync.Mutex
	rows map[oauth2.Key]oauth2.Token
}

var _ oauth2.TokenStore = (*memStore)(nil)

func (m *memStore) Get(_ context.Context, k oauth2.Key) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.rows[k]
	if !ok {
		return nil, oauth2.ErrNotConnected
	}
	return &t, nil
}

func (m *memStore) Update(_ context.Context, k oauth2.Key, fn func(*oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *oauth2.Token
	if t, ok := m.rows[k]; ok {
		cur = &t
	}
	nt, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if nt == nil {
		delete(m.rows, k)
		return nil, nil
	}
	m.rows[k] = *nt
	return nt, nil
}

type env struct {
	srv   *standin.Server
	conn  *atlassian.Connector
	store *memStore
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := standin.Start(standin.Options{RedirectURIs: []string{callbackURL}})
	t.Cleanup(srv.Close)
	conn, err := atlassian.Config{
		ClientID: srv.ClientID(), ClientSecretName: "atlassian-client-secret",
		AuthURL: srv.URL, APIURL: srv.URL,
	}.Open(oauth2.Runtime{
		RedirectURL: callbackURL,
		Secret: func(_ context.Context, name string) (string, error) {
			if name != "atlassian-client-secret" {
				return "", errors.New("no such secret")
			}
			return srv.ClientSecret(), nil
		},
		HTTPClient: srv.Client(),
		Now:        srv.Now,
		Retry:      oauth2.RetryPolicy{MaxRetryAfter: 2 * time.Second, MaxAttempts: 3, Backoff: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, conn: conn, store: &memStore{rows: map[oauth2.Key]oauth2.Token{}}}
}

// authorize plays the whole browser round trip for user and returns the code from the
// callback, checking the state came back unchanged.
func (e *env) authorize(t *testing.T, user, verifier string) string {
	t.Helper()
	state := "state-for-" + user
	cb, err := e.srv.AuthorizeAs(user, e.conn.OAuth.AuthCodeURL(state, verifier))
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != callbackURL {
		t.Fatalf("redirected to %s, want the callback", got)
	}
	if e := u.Query().Get("error"); e != "" {
		t.Fatalf("authorize refused: %s %s", e, u.Query().Get("error_description"))
	}
	if u.Query().Get("state") != state {
		t.Fatalf("state %q came back as %q", state, u.Query().Get("state"))
	}
	return u.Query().Get("code")
}

// link connects user: authorize, exchange with PKCE, store.
func (e *env) link(t *testing.T, user string) *oauth2.Token {
	t.Helper()
	v := oauth2.NewVerifier()
	tok, err := e.conn.OAuth.Exchange(context.Background(), e.authorize(t, user, v), v)
	if err != nil {
		t.Fatalf("exchange for %s: %v", user, err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatal("exchange gave no refresh token; offline_access must be requested")
	}
	e.store.mu.Lock()
	e.store.rows[e.key(user)] = *tok
	e.store.mu.Unlock()
	return tok
}

func (e *env) key(user string) oauth2.Key {
	return oauth2.Key{User: "entra:" + user, Connector: atlassian.Name}
}

func (e *env) client(user string) *http.Client {
	return e.conn.OAuth.Client(&oauth2.StoreSource{Conn: e.conn.OAuth, Store: e.store, Key: e.key(user)})
}

func (e *env) site(t *testing.T, user, id string) atlassian.Site {
	t.Helper()
	sites, err := e.conn.Sites(context.Background(), e.client(user))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := atlassian.ChooseSite(sites, id)
	if !ok {
		t.Fatalf("no site %s for %s among %d", id, user, len(sites))
	}
	return s
}

func (e *env) jira(t *testing.T, user string) *atlassian.Jira {
	return e.conn.Jira(e.client(user), e.site(t, user, standin.AcmeSite))
}

func (e *env) confluence(t *testing.T, user string) *atlassian.Confluence {
	return e.conn.Confluence(e.client(user), e.site(t, user, standin.AcmeSite))
}
