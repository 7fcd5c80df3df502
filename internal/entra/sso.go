package entra

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Teams clients that are pre-authorized for the bot's access_as_user scope and so obtain SSO
// tokens silently (msteams-docs bot-sso-register-aad.md).
const (
	TeamsDesktopMobileClientID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
	TeamsWebClientID           = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
)

// SSOScope is the delegated scope the Teams SSO token must carry.
const SSOScope = "access_as_user"

// ErrSSOTokenInvalid wraps every reason a Teams SSO token is refused.
var ErrSSOTokenInvalid = errors.New("SSO token refused")

// KeySource finds the tenant's signing keys and issuer.
type KeySource interface {
	Issuer(ctx context.Context) (string, error)
	PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// SSOIdentity is the user a valid SSO token names.
type SSOIdentity struct {
	TenantID string
	ObjectID string
	Name     string
	UPN      string
	Expiry   time.Time
}

// SSOValidator checks a Teams SSO token before the bot uses it (msteams-docs
// bot-sso-code.md "Validate the access token"; entra-docs access-tokens.md "Validate tokens"):
// signature by the tenant's keys, issuer of the tenant (v1 or v2), audience
// api://botid-{appId} or the app id, tenant allowed, scp containing access_as_user, azp/appid a
// pre-authorized Teams client, and oid equal to the sender of the activity.
type SSOValidator struct {
	AppID    string
	TenantID string
	// AllowedTenants additionally accepted (multi-tenant set-ups); the bot's own is always allowed.
	AllowedTenants []string
	// Keys are the tenant's signing keys.
	Keys KeySource
	// AllowedClients are the client apps whose tokens are accepted (default: the Teams clients).
	AllowedClients []string
	Now            func() time.Time
}

type ssoClaims struct {
	jwt.Claims
	TenantID string `json:"tid"`
	ObjectID string `json:"oid"`
	Scope    string `json:"scp"`
	AZP      string `json:"azp"`
	AppID    string `json:"appid"`
	Name     string `json:"name"`
	UPN      string `json:"preferred_username"`
	UPNv1    string `json:"upn"`
	Version  string `json:"ver"`
}

// Validate checks token and that it belongs to senderOID (the activity's from.aadObjectId).
func (v *SSOValidator) Validate(ctx context.Context, token, senderOID string) (*SSOIdentity, error) {
	fail := func(format string, a ...any) (*SSOIdentity, error) {
		return nil, fmt.Errorf("%w: %s", ErrSSOTokenInvalid, fmt.Sprintf(format, a...))
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return fail("not an RS256 JWT")
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return fail("no key id")
	}
	var c ssoClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return fail("unreadable claims")
	}
	// Cheap checks before any key lookup.
	if err := v.checkClaims(ctx, &c, senderOID); err != nil {
		return nil, err
	}
	key, err := v.Keys.PublicKey(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return fail("signing key: %v", err)
	}
	var verified ssoClaims
	if err := tok.Claims(key, &verified); err != nil {
		return fail("signature verification failed")
	}
	if err := v.checkClaims(ctx, &verified, senderOID); err != nil {
		return nil, err
	}
	upn := verified.UPN
	if upn == "" {
		upn = verified.UPNv1
	}
	return &SSOIdentity{TenantID: strings.ToLower(verified.TenantID), ObjectID: strings.ToLower(verified.ObjectID),
		Name: verified.Name, UPN: upn, Expiry: verified.Expiry.Time()}, nil
}

func (v *SSOValidator) checkClaims(ctx context.Context, c *ssoClaims, senderOID string) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrSSOTokenInvalid, fmt.Sprintf(format, a...))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tenantOK := strings.EqualFold(c.TenantID, v.TenantID)
	for _, t := range v.AllowedTenants {
		tenantOK = tenantOK || strings.EqualFold(c.TenantID, t)
	}
	if !tenantOK {
		return fail("tenant %q is not allowed", c.TenantID)
	}
	v2Issuer, err := v.Keys.Issuer(ctx)
	if err != nil {
		return fail("tenant metadata: %v", err)
	}
	// The v2 issuer names the token's own tenant.
	v2Issuer = strings.Replace(v2Issuer, v.TenantID, c.TenantID, 1)
	if c.Issuer != v2Issuer && c.Issuer != "https://sts.windows.net/"+c.TenantID+"/" {
		return fail("issuer %q is not the tenant's", c.Issuer)
	}
	if c.Expiry == nil {
		return fail("no expiry")
	}
	expected := jwt.Expected{AnyAudience: jwt.Audience{"api://botid-" + v.AppID, v.AppID}, Time: now()}
	if err := c.Claims.ValidateWithLeeway(expected, 5*time.Minute); err != nil {
		switch {
		case errors.Is(err, jwt.ErrInvalidAudience):
			return fail("audience is not api://botid-%s", v.AppID)
		case errors.Is(err, jwt.ErrExpired):
			return fail("expired")
		default:
			return fail("%v", err)
		}
	}
	if !slices.Contains(strings.Fields(c.Scope), SSOScope) {
		return fail("scope %s missing", SSOScope)
	}
	client := c.AZP
	if client == "" {
		client = c.AppID
	}
	allowed := v.AllowedClients
	if len(allowed) == 0 {
		allowed = []string{TeamsDesktopMobileClientID, TeamsWebClientID}
	}
	if !slices.Contains(allowed, strings.ToLower(client)) {
		return fail("client %q is not a pre-authorized Teams client", client)
	}
	if c.ObjectID == "" || !strings.EqualFold(c.ObjectID, senderOID) {
		return fail("token belongs to another user than the sender")
	}
	return nil
}

// ValidateAssertion checks a user token for the bot's own API that the Bot Service token
// service returned (the OBO assertion of later turns): signed by the tenant, issued by it, for
// this bot, unexpired, and belonging to the user the bot will store the result under.
func (v *SSOValidator) ValidateAssertion(ctx context.Context, token, tenantID, objectID string) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: user assertion: %s", ErrSSOTokenInvalid, fmt.Sprintf(format, a...))
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return fail("not an RS256 JWT with a key id")
	}
	key, err := v.Keys.PublicKey(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return fail("signing key: %v", err)
	}
	var c ssoClaims
	if err := tok.Claims(key, &c); err != nil {
		return fail("signature verification failed")
	}
	iss, err := v.Keys.Issuer(ctx)
	if err != nil {
		return fail("tenant metadata: %v", err)
	}
	iss = strings.Replace(iss, v.TenantID, c.TenantID, 1)
	if c.Issuer != iss && c.Issuer != "https://sts.windows.net/"+c.TenantID+"/" {
		return fail("issuer %q is not the tenant's", c.Issuer)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if c.Expiry == nil {
		return fail("no expiry")
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{"api://botid-" + v.AppID, v.AppID}, Time: now()}, 5*time.Minute); err != nil {
		return fail("%v", err)
	}
	if !strings.EqualFold(c.TenantID, tenantID) || !strings.EqualFold(c.ObjectID, objectID) {
		return fail("it belongs to another user than the caller")
	}
	return nil
}
