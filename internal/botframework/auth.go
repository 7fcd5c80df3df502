package botframework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrUnauthorized is wrapped by every inbound-authentication failure. The wrapped message
// says why (for the log); it never contains the token.
var ErrUnauthorized = errors.New("unauthorized")

// allowedAlgorithms is the RS256 family the Bot Framework SDKs accept
// (botbuilder-js botframework-connector/src/auth/jwtTokenExtractor.ts). Anything else —
// none, HS256 with the public key as secret, ES* — fails at parse time.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512}

// ClockSkew is the tolerance on exp and nbf (5 minutes, as in the Bot Framework SDKs).
const ClockSkew = 5 * time.Minute

// Claims are the verified claims of an inbound channel token.
type Claims struct {
	Issuer     string
	Audience   string
	AppID      string // the caller's app id (azp / appid), when present
	TenantID   string
	ServiceURL string
	Expiry     time.Time
	// EntraIssued is true for tokens issued by the bot's Entra tenant rather than the
	// Bot Framework token service.
	EntraIssued bool
}

// Authenticator validates the bearer token on an inbound activity as the Bot Framework
// channel-authentication protocol requires (bot-docs
// rest-api/bot-framework-rest-connector-authentication.md):
//
//   - Bot Framework tokens: issuer from the channel's OpenID metadata
//     (https://api.botframework.com), audience = the bot's app id, RS256 family, 5-minute
//     skew on exp/nbf, the signing key's endorsements must include the activity's channelId,
//     and the serviceurl claim must equal the activity's serviceUrl.
//   - Entra tokens (single-tenant bots): issuer https://sts.windows.net/{tenant}/ or
//     {authority}/{tenant}/v2.0, audience = the bot's app id, keys from the tenant's OpenID
//     metadata; a serviceurl claim, when present, must match too.
type Authenticator struct {
	// AppID is the bot's app id: the required audience.
	AppID string
	// TenantID is the bot's tenant; empty disables Entra-issued tokens.
	TenantID string
	// Channel is the Bot Framework key set (login.botframework.com OpenID metadata).
	Channel *KeySet
	// Entra is the tenant's key set ({authority}/{tenant}/v2.0/.well-known/openid-configuration).
	Entra *KeySet
	// Now is the clock.
	Now func() time.Time
}

// channelClaims are the token claims the validator reads.
type channelClaims struct {
	jwt.Claims
	ServiceURL string `json:"serviceurl"`
	AppID      string `json:"appid"`
	AZP        string `json:"azp"`
	TenantID   string `json:"tid"`
	Version    string `json:"ver"`
}

// Authenticate validates the Authorization header of an inbound request carrying activity a.
func (v *Authenticator) Authenticate(ctx context.Context, authorization string, a *Activity) (*Claims, error) {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		if authorization == "" {
			return nil, fmt.Errorf("%w: no Authorization header", ErrUnauthorized)
		}
		return nil, fmt.Errorf("%w: Authorization is not a Bearer token", ErrUnauthorized)
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(raw), allowedAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: token is not a JWS with an allowed algorithm: %v", ErrUnauthorized, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return nil, fmt.Errorf("%w: token has no key id", ErrUnauthorized)
	}
	kid := tok.Headers[0].KeyID

	// Cheap checks on the unverified claims first, to pick the issuer and to refuse obvious
	// junk without touching the network; everything is re-checked after verification.
	var peek channelClaims
	if err := tok.UnsafeClaimsWithoutVerification(&peek); err != nil {
		return nil, fmt.Errorf("%w: unreadable claims: %v", ErrUnauthorized, err)
	}
	keys, entra, err := v.keySetFor(ctx, peek.Issuer)
	if err != nil {
		return nil, err
	}
	if err := v.checkTimeAndAudience(peek); err != nil {
		return nil, err
	}

	key, err := keys.Key(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	var c channelClaims
	if err := tok.Claims(key.key, &c); err != nil {
		return nil, fmt.Errorf("%w: signature verification failed", ErrUnauthorized)
	}
	if c.Issuer != peek.Issuer {
		return nil, fmt.Errorf("%w: issuer changed under verification", ErrUnauthorized)
	}
	if err := v.checkTimeAndAudience(c); err != nil {
		return nil, err
	}

	if !entra {
		// The key must be endorsed for the channel the activity claims to come from
		// (botbuilder-js auth/endorsementsValidator.ts).
		if !slices.Contains(key.endorsements, a.ChannelID) {
			return nil, fmt.Errorf("%w: signing key is not endorsed for channel %q", ErrUnauthorized, a.ChannelID)
		}
		if c.ServiceURL == "" {
			return nil, fmt.Errorf("%w: token has no serviceurl claim", ErrUnauthorized)
		}
	} else if c.TenantID != "" && !strings.EqualFold(c.TenantID, v.TenantID) {
		return nil, fmt.Errorf("%w: token is from tenant %q, not the bot's", ErrUnauthorized, c.TenantID)
	}
	if c.ServiceURL != "" && NormalizeServiceURL(c.ServiceURL) != NormalizeServiceURL(a.ServiceURL) {
		return nil, fmt.Errorf("%w: serviceurl claim does not match the activity's serviceUrl", ErrUnauthorized)
	}
	appID := c.AZP
	if appID == "" {
		appID = c.AppID
	}
	if entra && appID == "" {
		return nil, fmt.Errorf("%w: Entra token names no calling app (azp/appid)", ErrUnauthorized)
	}
	out := &Claims{Issuer: c.Issuer, AppID: appID, TenantID: c.TenantID, ServiceURL: c.ServiceURL, EntraIssued: entra}
	if len(c.Audience) > 0 {
		out.Audience = c.Audience[0]
	}
	if c.Expiry != nil {
		out.Expiry = c.Expiry.Time()
	}
	return out, nil
}

func (v *Authenticator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Authenticator) checkTimeAndAudience(c channelClaims) error {
	if c.Expiry == nil {
		return fmt.Errorf("%w: token has no expiry", ErrUnauthorized)
	}
	err := c.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{v.AppID}, Time: v.now()}, ClockSkew)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("%w: token expired", ErrUnauthorized)
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fmt.Errorf("%w: token not valid yet", ErrUnauthorized)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("%w: token audience is not this bot", ErrUnauthorized)
	default:
		return fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
}

// keySetFor picks the key set for an issuer; unknown issuers are refused before any key lookup.
func (v *Authenticator) keySetFor(ctx context.Context, iss string) (*KeySet, bool, error) {
	if iss == "" {
		return nil, false, fmt.Errorf("%w: token has no issuer", ErrUnauthorized)
	}
	chIss, err := v.Channel.Issuer(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("%w: channel metadata unavailable: %v", ErrUnauthorized, err)
	}
	if iss == chIss {
		return v.Channel, false, nil
	}
	if v.Entra != nil && v.TenantID != "" {
		if iss == "https://sts.windows.net/"+v.TenantID+"/" {
			return v.Entra, true, nil
		}
		entraIss, err := v.Entra.Issuer(ctx)
		if err == nil && iss == entraIss {
			return v.Entra, true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: issuer %q is not trusted", ErrUnauthorized, iss)
}
