package botframework_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// A token without exp would be good forever: whoever saw it once could post as the channel
// for good. The bot must check that the channel's token "has not yet expired" (bot-docs
// rest-api/bot-framework-rest-connector-authentication.md) and Entra access tokens always
// carry exp (entra-docs access-token-claims-reference.md); a token without it is refused,
// from either issuer. (Stricter than botbuilder-js, whose jsonwebtoken check passes a token
// that has no exp at all.)
func TestChannelTokenWithoutExpiryIsRefused(t *testing.T) {
	const tenant = "72f988bf-0000-4000-8000-000000000001"
	ch := channel.New()
	defer ch.Close()
	e := entra.New(tenant)
	defer e.Close()
	hc := testenv.SharedCA().Client()
	auth := &botframework.Authenticator{
		AppID: appID, TenantID: tenant,
		Channel: &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: hc},
		Entra:   &botframework.KeySet{MetadataURL: e.URL + "/" + tenant + "/v2.0/.well-known/openid-configuration", HTTPClient: hc},
	}
	act := &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}
	ctx := context.Background()
	now := time.Now()
	entraToken := func(drop string) string {
		claims := map[string]any{"iss": e.Issuer(), "aud": appID, "azp": appID, "tid": tenant, "idtyp": "app",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
		delete(claims, drop)
		return e.Sign(claims)
	}
	for name, tok := range map[string]string{
		"channel token": ch.Mint(channel.TokenOptions{Audience: appID, Claims: map[string]any{"exp": nil}}),
		"Entra token":   entraToken("exp"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := auth.Authenticate(ctx, "Bearer "+tok, act); !errors.Is(err, botframework.ErrUnauthorized) {
				t.Fatalf("a token without exp was accepted (err %v)", err)
			}
		})
	}
	// The same tokens with exp are accepted: the refusal is about exp alone.
	for name, tok := range map[string]string{
		"channel token": ch.Mint(channel.TokenOptions{Audience: appID}),
		"Entra token":   entraToken(""),
	} {
		if _, err := auth.Authenticate(ctx, "Bearer "+tok, act); err != nil {
			t.Fatalf("%s with exp refused: %v", name, err)
		}
	}
}
