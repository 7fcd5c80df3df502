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

// memKey names one user's connection in memStore.
type memKey struct{ User, Connector string }

// memStore keeps tests' tokens in memory: Update holds a lock for the whole callback, which is
// the serialisation the handler's token store provides with its refresh lease.
type memStore struct {
	mu   sync.Mutex
	rows map[memKey]oauth2.Token
}

// memSource is the token source the connector tests give the authorized client: the stored
// token while fresh, otherwise one refresh under the store's lock; invalid_grant deletes it.
type memSource struct {
	conn  *oauth2.Connector
	store *memStore
	key   memKey
	now   func() time.Time
}

var (
	_ oauth2.TokenSource    = (*memSource)(nil)
	_ oauth2.ForceRefresher = (*memSource)(nil)
)

func (s *memSource) Token(ctx context.Context) (*oauth2.Token, error) {
	t, err := s.store.Get(ctx, s.key)
	if err != nil {
		return nil, err
	}
	if t.Fresh(s.now()) {
		return t, nil
	}
	return s.refresh(ctx, t)
}

func (s *memSource) ForceRefresh(ctx context.Context, rejected *oauth2.Token) (*oauth2.Token, error) {
	return s.refresh(ctx, rejected)
}

func (s *memSource) refresh(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	var spent error
	t, err := s.store.Update(ctx, s.key, func(cur *oauth2.Token) (*oauth2.Token, error) {
		if cur == nil {
			return nil, oauth2.ErrNotConnected
		}
		if stale != nil && cur.AccessToken != stale.AccessToken && cur.Fresh(s.now()) {
			return cur, nil // another caller refreshed meanwhile
		}
		nt, err := s.conn.Refresh(ctx, cur.RefreshToken)
		if errors.Is(err, oauth2.ErrInvalidGrant) {
			spent = err
			return nil, nil
		}
		return nt, err
	})
	if spent != nil {
		return nil, spent
	}
	return t, err
}

func (m *memStore) Get(_ context.Context, k memKey) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.rows[k]
	if !ok {
		return nil, oauth2.ErrNotConnected
	}
	return &t, nil
}

func (m *memStore) Update(_ context.Context, k memKey, fn func(*oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error) {
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
	return newEnvWith(t, standin.Options{})
}

// newEnvWith is newEnv with stand-in options (the callback URL is always registered).
func newEnvWith(t *testing.T, opts standin.Options) *env {
	t.Helper()
	opts.RedirectURIs = []string{callbackURL}
	srv := standin.Start(opts)
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
	return &env{srv: srv, conn: conn, store: &memStore{rows: map[memKey]oauth2.Token{}}}
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

func (e *env) key(user string) memKey {
	return memKey{User: "entra:" + user, Connector: atlassian.Name}
}

func (e *env) client(user string) *http.Client {
	return e.conn.OAuth.Client(&memSource{conn: e.conn.OAuth, store: e.store, key: e.key(user), now: e.srv.Now})
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
