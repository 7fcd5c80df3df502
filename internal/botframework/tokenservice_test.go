package botframework_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
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
