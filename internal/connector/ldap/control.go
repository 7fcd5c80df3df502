package ldap

import (
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// ProxiedAuthzOID is the Proxied Authorization control (RFC 4370 section 3).
const ProxiedAuthzOID = "2.16.840.1.113730.3.4.18"

// ProxiedAuthz is the RFC 4370 Proxied Authorization control. go-ldap has no typed control
// for it, so it is written here. RFC 4370 section 3: the controlValue is the authzId itself
// (RFC 4513 section 5.2.1.8 form "dn:<DN>"), carried directly as the OCTET STRING, not
// BER-wrapped again; the criticality MUST be TRUE.
type ProxiedAuthz struct {
	// AuthzID is "dn:" followed by the DN of the user whose rights the operation has.
	AuthzID string
}

var _ goldap.Control = (*ProxiedAuthz)(nil)

// proxyFor is the control that makes an operation run with the rights of the entry dn.
func proxyFor(dn string) *ProxiedAuthz { return &ProxiedAuthz{AuthzID: "dn:" + dn} }

// GetControlType returns the control's OID.
func (c *ProxiedAuthz) GetControlType() string { return ProxiedAuthzOID }

// Encode returns the control as a BER Control sequence: type, criticality TRUE, value.
func (c *ProxiedAuthz) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, ProxiedAuthzOID, "Control Type (Proxied Authorization)"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, c.AuthzID, "Control Value (authzId)"))
	return p
}

// String describes the control.
func (c *ProxiedAuthz) String() string {
	return fmt.Sprintf("Proxied Authorization (%s) critical authzId=%q", ProxiedAuthzOID, c.AuthzID)
}
