package botframework_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/faultproxy"
	"github.com/onbehalf/onbehalf/internal/testenv/tokenservice"
)

// The token service client tells the three exchange failures apart as the service reports
// them: consent required (400) → ErrConsentRequired; a misconfigured connection (500) → a
// *TokenServiceError that is not consent; no token (404, no body) → ErrNoUserToken.
func TestTokenServiceExchangeFailures(t *testing.T) {
	const tenant, bot, conn = "72f988bf-0000-4000-8000-0000000000cc", "b07a0000-0000-4000-8000-0000000000cc", "sso"
	alice := entra.User{ObjectID: "a11ce000-0000-4000-8000-0000000000cc", Name: "Alice"}
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddUser(alice)
	e.AddApp(entra.App{ClientID: bot, Secrets: []string{"s"}, RequiredResourceAccess: map[string][]string{"api://botid-" + bot: {entra.SSOScope}}})
	ts := tokenservice.New(e, bot, conn)
	t.Cleanup(ts.Close)
	botToken := e.Sign(map[string]any{"iss": e.Issuer(), "aud": tokenservice.BotAudience, "appid": bot, "tid": tenant,
		"iat": 1, "nbf": 1, "exp": 1 << 40})
	c := &botframework.TokenService{BaseURL: ts.URL, AppID: bot, Tokens: staticToken(botToken), HTTPClient: testenv.SharedCA().Client()}
	ctx := context.Background()
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: bot})

	// Nobody consented: 400 Consent Required.
	_, err := c.Exchange(ctx, "29:alice", conn, "msteams", sso)
	if !errors.Is(err, botframework.ErrConsentRequired) {
		t.Fatalf("exchange without consent: %v, want ErrConsentRequired", err)
	}
	e.GrantAdminConsent(bot)
	ts.Misconfigure(true)
	_, err = c.Exchange(ctx, "29:alice", conn, "msteams", sso)
	var tse *botframework.TokenServiceError
	if !errors.As(err, &tse) || tse.Status != http.StatusInternalServerError || errors.Is(err, botframework.ErrConsentRequired) {
		t.Fatalf("misconfigured connection: %v, want a 500 TokenServiceError that is not consent", err)
	}
	ts.Misconfigure(false)
	if _, err := c.GetToken(ctx, "29:alice", conn, "msteams", ""); !errors.Is(err, botframework.ErrNoUserToken) {
		t.Fatalf("GetToken before any sign-in: %v, want ErrNoUserToken", err)
	}
	if ut, err := c.Exchange(ctx, "29:alice", conn, "msteams", sso); err != nil || ut.Token == "" {
		t.Fatalf("exchange after consent: %v", err)
	}
	if ut, err := c.GetToken(ctx, "29:alice", conn, "msteams", ""); err != nil || ut.Token == "" {
		t.Fatalf("GetToken after the exchange: %v", err)
	}
}

// A read from the token service that fails transiently (5xx other than 501/505, or no answer)
// is tried once more after a short pause; a sign-in code is never sent twice, and a refusal
// that is not transient is not repeated.
func TestTokenServiceReadsRetryATransientFailureOnce(t *testing.T) {
	const tenant, bot, conn = "72f988bf-0000-4000-8000-0000000000cd", "b07a0000-0000-4000-8000-0000000000cd", "sso"
	alice := entra.User{ObjectID: "a11ce000-0000-4000-8000-0000000000cd", Name: "Alice"}
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	e.AddUser(alice)
	e.AddApp(entra.App{ClientID: bot, Secrets: []string{"s"}, RequiredResourceAccess: map[string][]string{"api://botid-" + bot: {entra.SSOScope}}})
	e.GrantAdminConsent(bot)
	ts := tokenservice.New(e, bot, conn)
	t.Cleanup(ts.Close)
	px, err := faultproxy.Start(ts.URL, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	botToken := e.Sign(map[string]any{"iss": e.Issuer(), "aud": tokenservice.BotAudience, "appid": bot, "tid": tenant,
		"iat": 1, "nbf": 1, "exp": 1 << 40})
	c := &botframework.TokenService{BaseURL: px.URL, AppID: bot, Tokens: staticToken(botToken), HTTPClient: testenv.SharedCA().Client()}
	ctx := context.Background()
	ref := botframework.ConversationReference{ChannelID: "msteams", ServiceURL: "https://smba.trafficmanager.net/amer/",
		Conversation: botframework.ConversationAccount{ID: "a:conv-alice"}}
	if _, err := c.Exchange(ctx, "29:alice", conn, "msteams", e.MintSSOToken(alice, entra.SSOOptions{AppID: bot})); err != nil {
		t.Fatal(err)
	}

	// Every second request fails: each read succeeds on its retry.
	for name, status := range map[string]int{"500": http.StatusInternalServerError, "502": http.StatusBadGateway, "503": http.StatusServiceUnavailable, "no answer": faultproxy.Drop} {
		px.Set(&faultproxy.Rule{Path: "/api/", Status: status, Every: 2})
		before := px.Served()
		if r, err := c.GetSignInResource(ctx, conn, ref); err != nil || r.SignInLink == "" {
			t.Fatalf("%s: GetSignInResource after one transient failure: %v", name, err)
		}
		if ut, err := c.GetToken(ctx, "29:alice", conn, "msteams", ""); err != nil || ut.Token == "" {
			t.Fatalf("%s: GetToken after one transient failure: %v", name, err)
		}
		if n := px.Served() - before; n != 4 {
			t.Fatalf("%s: %d requests for two reads, want 4 (each failed once, then retried once)", name, n)
		}
	}
	// A lasting outage: one retry, then the failure.
	px.Set(&faultproxy.Rule{Path: "/api/", Status: http.StatusServiceUnavailable})
	before := px.Served()
	var tse *botframework.TokenServiceError
	if _, err := c.GetSignInResource(ctx, conn, ref); !errors.As(err, &tse) || tse.Status != http.StatusServiceUnavailable {
		t.Fatalf("GetSignInResource during an outage: %v", err)
	}
	if n := px.Served() - before; n != 2 {
		t.Fatalf("%d requests during an outage, want 2", n)
	}
	// Not transient, or not a read that may be repeated: one request each.
	for name, call := range map[string]func() error{
		"501": func() error {
			px.Set(&faultproxy.Rule{Path: "/api/", Status: http.StatusNotImplemented})
			_, err := c.GetSignInResource(ctx, conn, ref)
			return err
		},
		"a sign-in code": func() error {
			px.Set(&faultproxy.Rule{Path: "/api/", Status: http.StatusInternalServerError})
			_, err := c.GetToken(ctx, "29:alice", conn, "msteams", "123456")
			return err
		},
		"an exchange": func() error {
			px.Set(&faultproxy.Rule{Path: "/api/", Status: http.StatusInternalServerError})
			_, err := c.Exchange(ctx, "29:alice", conn, "msteams", e.MintSSOToken(alice, entra.SSOOptions{AppID: bot}))
			return err
		},
	} {
		before := px.Served()
		if err := call(); err == nil {
			t.Fatalf("%s: no error", name)
		}
		if n := px.Served() - before; n != 1 {
			t.Fatalf("%s: %d requests, want 1", name, n)
		}
	}
}
