package saml

import (
	"encoding/base64"
	"errors"
	"testing"
)

// An assertion that names the asking user and someone else — a second Subject or a second
// NameID — is refused: the application might read the other name.
func TestAssertionNamingTwoUsersIsRefused(t *testing.T) {
	const ns = `xmlns="urn:oasis:names:tc:SAML:2.0:assertion"`
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, doc := range map[string]string{
		"two subjects, the user's last":  `<Assertion ` + ns + `><Subject><NameID>bob@contoso.com</NameID></Subject><Subject><NameID>alice@contoso.com</NameID></Subject></Assertion>`,
		"two subjects, the user's first": `<Assertion ` + ns + `><Subject><NameID>alice@contoso.com</NameID></Subject><Subject><NameID>bob@contoso.com</NameID></Subject></Assertion>`,
		"two NameIDs in one subject":     `<Assertion ` + ns + `><Subject><NameID>bob@contoso.com</NameID><NameID>alice@contoso.com</NameID></Subject></Assertion>`,
		"no subject":                     `<Assertion ` + ns + `></Assertion>`,
	} {
		if err := checkSubject(enc(doc), "alice@contoso.com"); !errors.Is(err, ErrWrongUser) {
			t.Errorf("%s: got %v, want ErrWrongUser", name, err)
		}
	}
	ok := `<Assertion ` + ns + `><Subject><NameID Format="x"> Alice@Contoso.com </NameID><SubjectConfirmation/></Subject></Assertion>`
	if err := checkSubject(enc(ok), "alice@contoso.com"); err != nil {
		t.Fatalf("the user's own assertion is refused: %v", err)
	}
}
