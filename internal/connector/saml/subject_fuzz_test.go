package saml

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/onbehalf/onbehalf/internal/entra"
)

// FuzzAssertionSubject fuzzes the assertion Entra returns for the SAML application and the
// user it must name. checkSubject never panics; it accepts only a SAML 2.0 Assertion (read
// independently with etree) whose every Subject/NameID names the asking user; it refuses
// anything else with ErrWrongUser or a malformed-answer error that quotes neither the
// assertion nor the names in it.
func FuzzAssertionSubject(f *testing.F) {
	const ns = `xmlns="urn:oasis:names:tc:SAML:2.0:assertion"`
	for _, s := range []struct{ doc, want string }{
		{`<Assertion ` + ns + `><Subject><NameID>alice@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID>ALICE@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID>bob@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID>alice@contoso.com</NameID><NameID>bob@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID>bob@contoso.com</NameID></Subject><Subject><NameID>alice@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID>alice@<!-- -->contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID><![CDATA[alice@contoso.com]]></NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Assertion><Subject><NameID>alice@contoso.com</NameID></Subject></Assertion>`, "alice@contoso.com"},
		{`<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol"><Assertion ` + ns + `><Subject><NameID>alice@contoso.com</NameID></Subject></Assertion></Response>`, "alice@contoso.com"},
		{`<Assertion ` + ns + `><Subject><NameID></NameID></Subject></Assertion>`, ""},
		{`not xml`, "alice@contoso.com"},
	} {
		f.Add([]byte(s.doc), s.want, false)
	}
	f.Add([]byte("alice@contoso.com"), "alice@contoso.com", true) // the raw value, not base64url
	f.Fuzz(func(t *testing.T, doc []byte, want string, raw bool) {
		encoded := base64.RawURLEncoding.EncodeToString(doc)
		if raw {
			encoded = string(doc)
		}
		err := checkSubject(encoded, want)
		if err != nil {
			if !errors.Is(err, ErrWrongUser) && !errors.Is(err, entra.ErrMalformedAnswer) {
				t.Fatalf("refusal %v is neither ErrWrongUser nor ErrMalformedAnswer", err)
			}
			msg := err.Error()
			if len(encoded) >= 16 && strings.Contains(msg, encoded) || len(want) >= 3 && strings.Contains(msg, want) {
				t.Fatalf("refusal %q quotes the assertion or the user", msg)
			}
			return
		}
		if strings.TrimSpace(want) == "" {
			t.Fatalf("accepted an assertion for the empty user")
		}
		raw2, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(encoded, "="))
		d := etree.NewDocument()
		if derr != nil || d.ReadFromBytes(raw2) != nil || d.Root() == nil {
			t.Fatalf("accepted something that is not an XML document: %q", encoded)
		}
		root := d.Root()
		if root.Tag != "Assertion" || root.NamespaceURI() != "urn:oasis:names:tc:SAML:2.0:assertion" {
			t.Fatalf("accepted a root {%s}%s, not a SAML 2.0 Assertion", root.NamespaceURI(), root.Tag)
		}
		ids := root.FindElements("./Subject/NameID")
		if len(ids) == 0 {
			t.Fatalf("accepted an assertion without Subject/NameID:\n%s", raw2)
		}
		for _, id := range ids {
			if got := strings.TrimSpace(id.Text()); !strings.EqualFold(got, want) {
				t.Fatalf("accepted an assertion that also names %q for user %q:\n%s", got, want, raw2)
			}
		}
	})
}
