package ldap

import (
	"bytes"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// RFC 4370 section 3: controlType 2.16.840.1.113730.3.4.18, criticality TRUE, controlValue the
// authzId octets themselves.
func TestProxiedAuthzEncoding(t *testing.T) {
	p := proxyFor("uid=bob,ou=people,dc=contoso,dc=example").Encode()
	if len(p.Children) != 3 {
		t.Fatalf("%d children", len(p.Children))
	}
	if p.Children[0].Value != ProxiedAuthzOID || p.Children[1].Value != true {
		t.Fatalf("type %v criticality %v", p.Children[0].Value, p.Children[1].Value)
	}
	if p.Children[2].Tag != ber.TagOctetString || !bytes.Equal(p.Children[2].Data.Bytes(), []byte("dn:uid=bob,ou=people,dc=contoso,dc=example")) {
		t.Fatalf("value %q", p.Children[2].Data.Bytes())
	}
	var _ goldap.Control = proxyFor("x")
}
