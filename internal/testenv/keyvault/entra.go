package keyvault

import (
	"net/http"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// verifyEntra checks an access token issued by the trusted Entra tenant, as Key Vault does
// before it authorizes a request. It returns 0 when the token is accepted, else the status
// and message.
//
// The rules, with their sources:
//   - An Entra access token is a JWT signed with RS256 by one of the tenant's published keys,
//     named by the header's kid (learn.microsoft.com/entra/identity-platform/access-tokens,
//     "Validate tokens" and "Validate the signature").
//   - iss is the tenant's issuer, and tid is the vault's own tenant: a vault trusts only the
//     Entra tenant it belongs to (learn.microsoft.com/azure/key-vault/general/authentication,
//     .../general/rest-error-codes "HTTP 401": a token for another tenant is refused).
//   - aud is exactly "https://vault.azure.net": the resource Key Vault's challenge names, which
//     is what Entra puts in aud for a token requested for "https://vault.azure.net/.default"
//     or, by a managed identity, for resource=https://vault.azure.net (the decoded example
//     token in .../general/rest-error-codes; entra-docs access-token-claims-reference "aud");
//     a token for another resource is refused (rest-error-codes "HTTP 401").
//   - exp is present and in the future; nbf, if present, is not in the future. No clock skew
//     is allowed here (stricter than the service may be; unverified).
//   - The caller (oid) must hold a data-plane role on the vault, else 403 with inner code
//     ForbiddenByRbac (learn.microsoft.com/azure/key-vault/general/rbac-guide; the answer
//     observed in learn.microsoft.com/answers/questions/2139767).
func (s *Server) verifyEntra(tok string) (int, string) {
	const invalid = "The access token is not valid for this vault."
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(parsed.Headers) != 1 || parsed.Headers[0].KeyID == "" {
		return http.StatusUnauthorized, invalid
	}
	set := s.entra.Keys()
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		return http.StatusUnauthorized, invalid
	}
	var std jwt.Claims
	var extra struct {
		TenantID string `json:"tid"`
		ObjectID string `json:"oid"`
	}
	if err := parsed.Claims(keys[0].Key, &std, &extra); err != nil {
		return http.StatusUnauthorized, invalid
	}
	if std.Issuer != s.entra.Issuer || extra.TenantID != s.tenant {
		return http.StatusUnauthorized, "The access token is from the wrong issuer or tenant."
	}
	if len(std.Audience) != 1 || std.Audience[0] != Resource {
		return http.StatusUnauthorized, "The access token has the wrong audience."
	}
	now := s.now()
	if std.Expiry == nil || !now.Before(std.Expiry.Time()) {
		return http.StatusUnauthorized, "The access token is expired."
	}
	if std.NotBefore != nil && now.Before(std.NotBefore.Time()) {
		return http.StatusUnauthorized, "The access token is not yet valid."
	}
	if extra.ObjectID == "" || !slices.Contains(s.entra.Principals, extra.ObjectID) {
		return http.StatusForbidden, "Caller is not authorized to perform action on resource."
	}
	return 0, ""
}
