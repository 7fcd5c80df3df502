package botframework_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// fuzzNow is the fixed clock of the token fuzz targets, so committed seeds stay meaningful.
var fuzzNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// svcPlaceholder in a seed stands for the stand-in's serviceUrl (its port changes every run).
const svcPlaceholder = "$SVC"

// tokenHarness is a validator against the channel stand-in's key set, plus a key the channel
// does not publish (an attacker's).
type tokenHarness struct {
	ch       *channel.Server
	auth     *botframework.Authenticator
	attacker *channel.Key
}

func newTokenHarness(tb testing.TB) *tokenHarness {
	ch := channel.New()
	tb.Cleanup(ch.Close)
	clock := func() time.Time { return fuzzNow }
	// Refetching on every unknown kid (MinRefetchInterval 1 ns) keeps forged kids from sleeping
	// out the production interval; every fetch still goes to the stand-in over HTTPS.
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client(), Now: clock, MinRefetchInterval: time.Nanosecond}
	if err := keys.Warm(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return &tokenHarness{ch: ch, auth: &botframework.Authenticator{AppID: appID, Channel: keys, Now: clock}, attacker: ch.AddUnpublishedKey()}
}

// acceptable is an oracle written without go-jose: it says why a token must NOT be accepted
// for an activity with channelID and serviceURL, or nil when the channel-authentication rules
// (bot-docs rest-api/bot-framework-rest-connector-authentication.md) allow it: a compact JWS
// whose RS256/384/512 signature verifies with a key the channel publishes under the header's
// kid, iss https://api.botframework.com, aud including the bot's app id, exp present and not
// passed (5-minute skew), nbf not in the future (same skew), a serviceurl claim equal to the
// activity's serviceUrl, and the key endorsed for the activity's channel.
func (h *tokenHarness) acceptable(raw, channelID, serviceURL string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("not three segments")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("segment not base64url: %v", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	hashes := map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}
	hash, ok := hashes[hdr.Alg]
	if !ok {
		return fmt.Errorf("alg %q", hdr.Alg)
	}
	var key *channel.Key
	for _, k := range h.ch.Keys {
		if k.Published && k.ID == hdr.Kid {
			key = k
		}
	}
	if key == nil {
		return fmt.Errorf("kid %q not published", hdr.Kid)
	}
	d := hash.New()
	d.Write([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&key.Private.PublicKey, hash, d.Sum(nil), sig); err != nil {
		return errors.New("signature does not verify with the published key")
	}
	var c struct {
		Iss        string          `json:"iss"`
		Aud        json.RawMessage `json:"aud"`
		Exp        *float64        `json:"exp"`
		Nbf        *float64        `json:"nbf"`
		ServiceURL string          `json:"serviceurl"`
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return fmt.Errorf("claims: %v", err)
	}
	if c.Iss != channel.Issuer {
		return fmt.Errorf("iss %q", c.Iss)
	}
	var auds []string
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(c.Aud, &auds) != nil {
		return errors.New("aud unreadable")
	}
	if !slices.Contains(auds, appID) {
		return fmt.Errorf("aud %q", auds)
	}
	skew := botframework.ClockSkew.Seconds()
	now := float64(fuzzNow.Unix())
	if c.Exp == nil || now-skew > *c.Exp {
		return errors.New("expired or no exp")
	}
	if c.Nbf != nil && now+skew < *c.Nbf {
		return errors.New("not yet valid")
	}
	if c.ServiceURL == "" || botframework.NormalizeServiceURL(c.ServiceURL) == "" ||
		botframework.NormalizeServiceURL(c.ServiceURL) != botframework.NormalizeServiceURL(serviceURL) {
		return fmt.Errorf("serviceurl %q for activity %q", c.ServiceURL, serviceURL)
	}
	if !slices.Contains(key.Endorsements, channelID) && !slices.Contains(key.Endorsements, botframework.BaseChannel(channelID)) {
		return fmt.Errorf("key not endorsed for %q", channelID)
	}
	return nil
}

// check authenticates authorization for an activity and asserts the properties every answer
// must have: anything accepted passes the oracle, and no refusal echoes the token.
func (h *tokenHarness) check(t *testing.T, authorization, channelID, serviceURL string) error {
	act := &botframework.Activity{ChannelID: channelID, ServiceURL: serviceURL}
	claims, err := h.auth.Authenticate(context.Background(), authorization, act)
	raw := strings.TrimSpace(strings.TrimPrefix(authorization, "Bearer "))
	if err == nil {
		if why := h.acceptable(raw, channelID, serviceURL); why != nil {
			t.Fatalf("accepted a token the protocol refuses (%v): %q for channel %q serviceUrl %q", why, unsigned(raw), channelID, serviceURL)
		}
		if claims == nil || claims.Issuer != channel.Issuer || claims.EntraIssued {
			t.Fatalf("accepted with claims %+v", claims)
		}
		return nil
	}
	if !errors.Is(err, botframework.ErrUnauthorized) {
		t.Fatalf("refusal %v does not wrap ErrUnauthorized", err)
	}
	msg := err.Error()
	for _, seg := range strings.Split(raw, ".") {
		if len(seg) >= 16 && strings.Contains(msg, seg) {
			t.Fatalf("refusal %q echoes part of the token", msg)
		}
	}
	return err
}

// Signature modes of FuzzChannelToken.
const (
	sigKidKey     = iota // signed with the private key of the header's kid (as the channel does)
	sigAttacker          // signed with a key the channel does not publish
	sigHMACPublic        // HS256-style MAC keyed with the published public key (alg confusion)
	sigNone              // empty signature
	sigModes
)

// Kid choices of FuzzChannelToken.
const (
	kidDefault     = iota // Keys[0]: published, endorsed for msteams, webchat, emulator
	kidWebchat            // Keys[1]: published, endorsed for webchat only
	kidUnpublished        // the attacker's key id
	kidNone               // no kid
	kidModes
)

// mint builds a compact JWS: header {alg, kid, typ}, the payload bytes as given (with
// svcPlaceholder replaced), and a signature made as sigMode says.
func (h *tokenHarness) mint(alg string, kidSel, sigSel uint8, payload []byte) string {
	keys := []*channel.Key{h.ch.Keys[0], h.ch.Keys[1], h.attacker, nil}
	kidKey := keys[kidSel%kidModes]
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if kidKey != nil {
		hdr["kid"] = kidKey.ID
	}
	hb, _ := json.Marshal(hdr)
	payload = []byte(strings.ReplaceAll(string(payload), svcPlaceholder, h.ch.ServiceURL))
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(payload)
	hash := map[string]crypto.Hash{"RS384": crypto.SHA384, "RS512": crypto.SHA512}[alg]
	if hash == 0 {
		hash = crypto.SHA256
	}
	var sig []byte
	switch sigSel % sigModes {
	case sigKidKey, sigAttacker:
		signer := kidKey
		if signer == nil || sigSel%sigModes == sigAttacker {
			signer = h.attacker
		}
		d := hash.New()
		d.Write([]byte(input))
		sig, _ = rsa.SignPKCS1v15(nil, signer.Private, hash, d.Sum(nil))
	case sigHMACPublic:
		der, _ := x509.MarshalPKIXPublicKey(&h.ch.Keys[0].Private.PublicKey)
		m := hmac.New(sha256.New, der)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func claimsJSON(claims map[string]any) []byte {
	b, _ := json.Marshal(claims)
	return b
}

// FuzzChannelToken fuzzes the claims, algorithm, key id, signature and the activity's channel
// and serviceUrl of an inbound channel token. Whatever the input, a token is accepted only if
// the independent oracle (acceptable) agrees it was signed by a published, endorsed channel
// key with the right issuer, audience, times and serviceurl; refusals wrap ErrUnauthorized
// and never echo the token.
func FuzzChannelToken(f *testing.F) {
	h := newTokenHarness(f)
	exp, nbf := fuzzNow.Add(time.Hour).Unix(), fuzzNow.Add(-time.Minute).Unix()
	valid := map[string]any{"iss": channel.Issuer, "aud": appID, "serviceurl": svcPlaceholder, "exp": exp, "nbf": nbf}
	with := func(k string, v any) []byte {
		c := map[string]any{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return claimsJSON(c)
	}
	good := claimsJSON(valid)
	// The harness itself must accept a genuine token, or every property below is vacuous.
	if _, err := h.auth.Authenticate(context.Background(), "Bearer "+h.mint("RS256", kidDefault, sigKidKey, good),
		&botframework.Activity{ChannelID: "msteams", ServiceURL: h.ch.ServiceURL}); err != nil {
		f.Fatalf("a genuine token is refused: %v", err)
	}
	type seed struct {
		alg          string
		kid, sig     uint8
		payload      []byte
		channel, svc string
	}
	for _, s := range []seed{
		{"RS256", kidDefault, sigKidKey, good, "msteams", svcPlaceholder},
		{"RS384", kidDefault, sigKidKey, good, "msteams:COPILOT", svcPlaceholder},
		{"RS512", kidWebchat, sigKidKey, good, "webchat", svcPlaceholder},
		{"RS256", kidWebchat, sigKidKey, good, "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigAttacker, good, "msteams", svcPlaceholder},
		{"RS256", kidUnpublished, sigKidKey, good, "msteams", svcPlaceholder},
		{"RS256", kidNone, sigKidKey, good, "msteams", svcPlaceholder},
		{"HS256", kidDefault, sigHMACPublic, good, "msteams", svcPlaceholder},
		{"none", kidDefault, sigNone, good, "msteams", svcPlaceholder},
		{"PS256", kidDefault, sigKidKey, good, "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("iss", "https://sts.windows.net/evil/"), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("aud", "someone-else"), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("aud", []string{"x", appID}), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("exp", nil), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("exp", fuzzNow.Add(-6*time.Minute).Unix()), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("exp", float64(fuzzNow.Unix())+0.5), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("nbf", fuzzNow.Add(6*time.Minute).Unix()), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("serviceurl", nil), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, with("serviceurl", "https://smba.evil.example/amer/"), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, good, "msteams", svcPlaceholder + "?x=1"},
		{"RS256", kidDefault, sigKidKey, good, "msteams", strings.ToUpper(svcPlaceholder)},
		{"RS256", kidDefault, sigKidKey, good, "slack", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, []byte(`{"iss":"https://api.botframework.com","iss":"x"}`), "msteams", svcPlaceholder},
		{"RS256", kidDefault, sigKidKey, []byte(`not json`), "msteams", svcPlaceholder},
	} {
		f.Add(s.alg, s.kid, s.sig, s.payload, s.channel, s.svc)
	}
	f.Fuzz(func(t *testing.T, alg string, kidSel, sigSel uint8, payload []byte, channelID, serviceURL string) {
		serviceURL = strings.ReplaceAll(serviceURL, svcPlaceholder, h.ch.ServiceURL)
		h.check(t, "Bearer "+h.mint(alg, kidSel, sigSel, payload), channelID, serviceURL)
	})
}

// FuzzAuthorizationHeader fuzzes the raw Authorization header, starting from genuine tokens
// minted by the channel stand-in in this run. Anything accepted must pass the same oracle:
// a byte changed anywhere in a genuine token must not slip through.
func FuzzAuthorizationHeader(f *testing.F) {
	h := newTokenHarness(f)
	genuine := h.mint("RS256", kidDefault, sigKidKey, claimsJSON(map[string]any{
		"iss": channel.Issuer, "aud": appID, "serviceurl": h.ch.ServiceURL,
		"exp": fuzzNow.Add(time.Hour).Unix(), "nbf": fuzzNow.Add(-time.Minute).Unix(),
	}))
	for _, s := range []string{
		"Bearer " + genuine, "bearer " + genuine, "Bearer  " + genuine + " ", "Bearer " + genuine + ".",
		"Bearer " + genuine + "=", "Basic " + genuine, "Bearer", "Bearer ", "", "Bearer a.b.c", "Bearer ...",
		"Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FwaS5ib3RmcmFtZXdvcmsuY29tIn0.",
	} {
		f.Add(s, "msteams")
	}
	f.Fuzz(func(t *testing.T, authorization, channelID string) {
		h.check(t, authorization, channelID, h.ch.ServiceURL)
	})
}

// unsigned is a token without its signature, for failure messages: the claims show what was
// accepted, and the text is not a usable token.
func unsigned(raw string) string {
	if i := strings.LastIndex(raw, "."); i >= 0 {
		return raw[:i] + ".<signature>"
	}
	return raw
}
