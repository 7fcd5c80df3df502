package botframework

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
//     metadata, app-only (no scp) and obtained by the bot's own app (appid/azp = the bot);
//     a serviceurl claim, when present, must match too.
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

	mu       sync.Mutex
	verified map[[32]byte]verifiedToken // by SHA-256 of the raw token
}

// channelClaims are the token claims the validator reads.
type channelClaims struct {
	jwt.Claims
	ServiceURL string `json:"serviceurl"`
	AppID      string `json:"appid"`
	AZP        string `json:"azp"`
	TenantID   string `json:"tid"`
	Version    string `json:"ver"`
	Scope      string `json:"scp"`
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
	raw = strings.TrimSpace(raw)
	cacheKey := sha256.Sum256([]byte(raw))
	vt, ok := v.cached(cacheKey)
	if !ok {
		var err error
		if vt, err = v.verify(ctx, raw); err != nil {
			return nil, err
		}
		v.remember(cacheKey, vt)
	}
	c := vt.claims
	// Time, audience and the activity-specific checks run on every activity, cached or not.
	if err := v.checkTimeAndAudience(c); err != nil {
		return nil, err
	}
	if !vt.entra {
		// The key must be endorsed for the channel the activity claims to come from
		// (botbuilder-js auth/endorsementsValidator.ts). A composite id ("msteams:COPILOT")
		// is endorsed through its base channel, the channel the Bot Service knows
		// (BaseChannel); that keys list composite ids is not documented.
		if !slices.Contains(vt.endorsements, a.ChannelID) && !slices.Contains(vt.endorsements, a.BaseChannelID()) {
			return nil, fmt.Errorf("%w: signing key is not endorsed for channel %q", ErrUnauthorized, a.ChannelID)
		}
		if c.ServiceURL == "" {
			return nil, fmt.Errorf("%w: token has no serviceurl claim", ErrUnauthorized)
		}
	} else if c.TenantID != "" && !strings.EqualFold(c.TenantID, v.TenantID) {
		return nil, fmt.Errorf("%w: token is from tenant %q, not the bot's", ErrUnauthorized, c.TenantID)
	}
	// Both sides must be plain URLs (NormalizeServiceURL is "" otherwise): a query, fragment or
	// userinfo is not normalised away.
	if c.ServiceURL != "" && (NormalizeServiceURL(c.ServiceURL) == "" || NormalizeServiceURL(c.ServiceURL) != NormalizeServiceURL(a.ServiceURL)) {
		return nil, fmt.Errorf("%w: serviceurl claim does not match the activity's serviceUrl", ErrUnauthorized)
	}
	appID := c.AZP
	if appID == "" {
		appID = c.AppID
	}
	if vt.entra {
		// An Entra token only proves who obtained it. Any app of the tenant — and every user's
		// v2 Teams SSO token, whose aud is the bot's app id — can present one, so the caller must
		// be the bot's own identity, app-only (botbuilder-js
		// ParameterizedBotFrameworkAuthentication: "Invalid AppId passed on token").
		if c.Scope != "" {
			return nil, fmt.Errorf("%w: Entra token is a user's delegated token, not the channel's", ErrUnauthorized)
		}
		if !strings.EqualFold(appID, v.AppID) {
			return nil, fmt.Errorf("%w: Entra token was issued to app %q, not to this bot", ErrUnauthorized, appID)
		}
	}
	out := &Claims{Issuer: c.Issuer, AppID: appID, TenantID: c.TenantID, ServiceURL: c.ServiceURL, EntraIssued: vt.entra}
	if len(c.Audience) > 0 {
		out.Audience = c.Audience[0]
	}
	if c.Expiry != nil {
		out.Expiry = c.Expiry.Time()
	}
	return out, nil
}

// verifiedToken is what signature verification established about a token.
type verifiedToken struct {
	claims       channelClaims
	endorsements []string
	entra        bool
	at           time.Time
}

// verify parses raw and checks its signature, issuer, time and audience.
func (v *Authenticator) verify(ctx context.Context, raw string) (verifiedToken, error) {
	tok, err := jwt.ParseSigned(raw, allowedAlgorithms)
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: token is not a JWS with an allowed algorithm: %v", ErrUnauthorized, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return verifiedToken{}, fmt.Errorf("%w: token has no key id", ErrUnauthorized)
	}
	kid := tok.Headers[0].KeyID

	// Cheap checks on the unverified claims first, to pick the issuer and to refuse obvious
	// junk without touching the network; everything is re-checked after verification.
	var peek channelClaims
	if err := tok.UnsafeClaimsWithoutVerification(&peek); err != nil {
		return verifiedToken{}, fmt.Errorf("%w: unreadable claims: %v", ErrUnauthorized, err)
	}
	keys, entra, err := v.keySetFor(ctx, peek.Issuer)
	if err != nil {
		return verifiedToken{}, err
	}
	if err := v.checkTimeAndAudience(peek); err != nil {
		return verifiedToken{}, err
	}
	key, err := keys.Key(ctx, kid)
	if err != nil {
		return verifiedToken{}, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	var c channelClaims
	if err := tok.Claims(key.key, &c); err != nil {
		return verifiedToken{}, fmt.Errorf("%w: signature verification failed", ErrUnauthorized)
	}
	if c.Issuer != peek.Issuer {
		return verifiedToken{}, fmt.Errorf("%w: issuer changed under verification", ErrUnauthorized)
	}
	return verifiedToken{claims: c, endorsements: key.endorsements, entra: entra, at: v.now()}, nil
}

// verifiedCacheSize bounds the verified-token cache; verifiedCacheAge bounds how long a
// verification is trusted (a key withdrawn by the issuer stops counting within it).
const (
	verifiedCacheSize = 1024
	verifiedCacheAge  = 10 * time.Minute
)

// cached returns an earlier verification of the same token. The channel reuses one token for
// many activities, and verifying an RSA signature is the costliest part of a request.
func (v *Authenticator) cached(key [32]byte) (verifiedToken, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	vt, ok := v.verified[key]
	if !ok || v.now().Sub(vt.at) > verifiedCacheAge {
		return verifiedToken{}, false
	}
	return vt, true
}

func (v *Authenticator) remember(key [32]byte, vt verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verified == nil || len(v.verified) >= verifiedCacheSize {
		v.verified = make(map[[32]byte]verifiedToken, 64) // start over rather than track age order
	}
	v.verified[key] = vt
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
