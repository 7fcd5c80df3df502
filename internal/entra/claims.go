package entra

import (
	"context"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// UserClaims are the identity claims of a validated user token.
type UserClaims struct {
	TenantID string // tid
	ObjectID string // oid
	UPN      string // preferred_username (v2) or upn (v1)
	Email    string // email (an optional claim)
	// Roles are the user's app roles on the bot's app (roles); Groups the object ids of the
	// user's groups (groups), absent when the user is in too many (the overage claim, which
	// sets GroupsOverage; the groups are then unknown here).
	Roles         []string
	Groups        []string
	GroupsOverage bool
}

// AssertionClaims validates token exactly as ValidateAssertion does and then returns its
// identity claims, for connectors that map the user to an account of their own (LDAP).
func (v *SSOValidator) AssertionClaims(ctx context.Context, token, tenantID, objectID string) (*UserClaims, error) {
	if err := v.ValidateAssertion(ctx, token, tenantID, objectID); err != nil {
		return nil, err
	}
	// The signature was verified above; this reads the same bytes.
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	var c struct {
		ssoClaims
		Email      string            `json:"email"`
		Roles      []string          `json:"roles"`
		Groups     []string          `json:"groups"`
		ClaimNames map[string]string `json:"_claim_names"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, err
	}
	upn := c.UPN
	if upn == "" {
		upn = c.UPNv1
	}
	_, overage := c.ClaimNames["groups"]
	return &UserClaims{TenantID: strings.ToLower(c.TenantID), ObjectID: strings.ToLower(c.ObjectID), UPN: upn, Email: c.Email,
		Roles: c.Roles, Groups: c.Groups, GroupsOverage: overage}, nil
}
