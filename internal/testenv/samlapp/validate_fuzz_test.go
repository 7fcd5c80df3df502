package samlapp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// The fuzz target signs with a fixed test-only identity-provider key (testdata/fuzz-idp-*.pem)
// and runs on a fixed clock with a fixed token URL, so the signed seeds committed under
// testdata/fuzz stay valid from run to run.
var (
	fuzzNow      = time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	fuzzTokenURL = "https://sap.fuzz.test/sap/bc/sec/oauth2/token"
)

const (
	fuzzIssuer   = "https://sts.windows.net/f0f0f0f0-0000-4000-8000-000000000001/"
	fuzzEntityID = "spn:S4H_100"
	fuzzSigned   = "alice@contoso.com" // the only user the identity provider signs a usable assertion for
)

func fuzzIdP(tb testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			tb.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			tb.Fatalf("%s: no PEM block", name)
		}
		return blk.Bytes
	}
	k, err := x509.ParsePKCS8PrivateKey(read("fuzz-idp-key.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(read("fuzz-idp-cert.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	return k.(*rsa.PrivateKey), cert
}

// fuzzAssertion builds an assertion as Entra issues it (see entra.issueSAML).
func fuzzAssertion(id, nameID, audience, recipient string, notAfter time.Time) *etree.Element {
	const tf = "2006-01-02T15:04:05Z"
	doc := etree.NewDocument()
	a := doc.CreateElement("Assertion")
	a.CreateAttr("xmlns", entra.SAMLAssertionNS)
	a.CreateAttr("ID", id)
	a.CreateAttr("IssueInstant", fuzzNow.Add(-time.Minute).Format(tf))
	a.CreateAttr("Version", "2.0")
	a.CreateElement("Issuer").SetText(fuzzIssuer)
	subj := a.CreateElement("Subject")
	nid := subj.CreateElement("NameID")
	nid.CreateAttr("Format", entra.NameIDEmail)
	nid.SetText(nameID)
	sc := subj.CreateElement("SubjectConfirmation")
	sc.CreateAttr("Method", entra.BearerMethod)
	scd := sc.CreateElement("SubjectConfirmationData")
	scd.CreateAttr("NotOnOrAfter", notAfter.Format(tf))
	scd.CreateAttr("Recipient", recipient)
	cond := a.CreateElement("Conditions")
	cond.CreateAttr("NotBefore", fuzzNow.Add(-5*time.Minute).Format(tf))
	cond.CreateAttr("NotOnOrAfter", notAfter.Format(tf))
	cond.CreateElement("AudienceRestriction").CreateElement("Audience").SetText(audience)
	return a
}

func xmlOf(tb testing.TB, el *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzSAMLBearerValidation mutates assertions signed by the identity provider and checks the
// SAML application stand-in's validator, which every SAML test trusts to be as strict as a
// real service provider. The provider signed a usable assertion for alice only (and signed
// ones for carol that are for another audience, expired, or for another recipient); bob,
// carol and dave are known users too. Whatever the bytes: the validator never panics, any
// subject it returns is alice's — a changed, wrapped or unsigned document never yields another
// user — and the assertion it accepted was one the provider signed (its ID is one of the
// signed IDs).
func FuzzSAMLBearerValidation(f *testing.F) {
	key, cert := fuzzIdP(f)
	s := Start(Config{EntityID: fuzzEntityID, IdPIssuer: fuzzIssuer, IdPCertificate: cert, ClientID: "c", ClientSecret: "fuzz-client-secret",
		Data: map[string][]string{fuzzSigned: {"a"}, "bob@contoso.com": {"b"}, "carol@contoso.com": {"c"}, "dave@contoso.com": {"d"}},
		Now:  func() time.Time { return fuzzNow }})
	f.Cleanup(s.Close)
	s.TokenURL = fuzzTokenURL

	sign := func(a *etree.Element) []byte {
		signed, err := entra.SignSAML(a, key, cert)
		if err != nil {
			f.Fatal(err)
		}
		return xmlOf(f, signed)
	}
	later := fuzzNow.Add(time.Hour)
	good := sign(fuzzAssertion("_alice-1", fuzzSigned, fuzzEntityID, fuzzTokenURL, later))
	signedIDs := map[string]bool{"_alice-1": true}
	gd := etree.NewDocument()
	if err := gd.ReadFromBytes(good); err != nil {
		f.Fatal(err)
	}
	goodRoot := gd.Root()

	// The harness must accept the genuine assertion, or the properties below are vacuous.
	if sub, err := s.validate(base64.RawURLEncoding.EncodeToString(good)); err != nil || sub != fuzzSigned {
		f.Fatalf("a genuine assertion is refused: %q %v", sub, err)
	}

	otherAudience := sign(fuzzAssertion("_carol-aud", "carol@contoso.com", "spn:OTHER", fuzzTokenURL, later))
	expired := sign(fuzzAssertion("_carol-exp", "carol@contoso.com", fuzzEntityID, fuzzTokenURL, fuzzNow.Add(-time.Hour)))
	otherRecipient := sign(fuzzAssertion("_carol-rcpt", "carol@contoso.com", fuzzEntityID, "https://evil.example/token", later))
	unsigned := xmlOf(f, fuzzAssertion("_bob-1", "bob@contoso.com", fuzzEntityID, fuzzTokenURL, later))
	swapped := strings.Replace(string(good), fuzzSigned, "bob@contoso.com", 1)
	// Signature wrapping: bob's unsigned assertion around alice's signed one, and alice's signed
	// one with bob's Subject added after the signed content.
	wrapped := strings.Replace(string(unsigned), "<Issuer>", strings.TrimPrefix(string(good), `<?xml version="1.0" encoding="UTF-8"?>`)+"<Issuer>", 1)
	doubled := strings.Replace(string(good), "</Assertion>", "<Subject><NameID>bob@contoso.com</NameID></Subject></Assertion>", 1)
	commented := strings.Replace(string(good), fuzzSigned, "bob@contoso.com<!---->", 1)
	for _, seed := range [][]byte{good, otherAudience, expired, otherRecipient, unsigned, []byte(swapped), []byte(wrapped), []byte(doubled), []byte(commented),
		[]byte("<Assertion/>"), []byte("not xml"), []byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">&a;</Assertion>`)} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, encodeStd bool) {
		s.mu.Lock()
		s.used = map[string]time.Time{} // each input is judged on its own, not as a replay
		s.mu.Unlock()
		encoded := base64.RawURLEncoding.EncodeToString(doc)
		if encodeStd {
			encoded = base64.StdEncoding.EncodeToString(doc) // the wrong alphabet, with padding
		}
		sub, err := s.validate(encoded)
		if err != nil {
			if sub != "" {
				t.Fatalf("refusal %v still named subject %q", err, sub)
			}
			if len(encoded) >= 40 && strings.Contains(err.Error(), encoded) {
				t.Fatalf("refusal echoes the assertion: %v", err)
			}
			return
		}
		if sub != fuzzSigned {
			t.Fatalf("accepted an assertion for %q, whom the identity provider never signed a usable assertion for:\n%s", sub, doc)
		}
		d := etree.NewDocument()
		if d.ReadFromBytes(doc) != nil || d.Root() == nil || !signedIDs[d.Root().SelectAttrValue("ID", "")] {
			t.Fatalf("accepted a document whose root is not a signed assertion:\n%s", doc)
		}
		// Whoever reads the accepted document later sees what the provider signed: the same
		// subject, audience, recipient and validity as the genuine assertion.
		if got, want := fuzzFacts(d.Root()), fuzzFacts(goodRoot); got != want {
			t.Fatalf("accepted a document that reads differently from what was signed:\n got %s\nwant %s", got, want)
		}
		// Replay: the same assertion is refused the second time.
		if _, err := s.validate(encoded); err == nil {
			t.Fatalf("accepted the same assertion twice")
		}
	})
}

// fuzzFacts is what a service provider reads from an assertion to decide whom it is for.
func fuzzFacts(a *etree.Element) string {
	get := func(path, attr string) string {
		el := a.FindElement(path)
		if el == nil {
			return "-"
		}
		if attr != "" {
			return el.SelectAttrValue(attr, "-")
		}
		return strings.TrimSpace(el.Text())
	}
	return strings.Join([]string{
		get("./Issuer", ""), get("./Subject/NameID", ""), get("./Conditions/AudienceRestriction/Audience", ""),
		get("./Subject/SubjectConfirmation/SubjectConfirmationData", "Recipient"),
		get("./Subject/SubjectConfirmation/SubjectConfirmationData", "NotOnOrAfter"),
		get("./Conditions", "NotBefore"), get("./Conditions", "NotOnOrAfter"),
	}, " | ")
}
