package logcheck

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the errors and cleanups of a check under test.
type recorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *recorder) end() []string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.errs
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unrecordedJWT is a token no stand-in issued, signed or not: only its shape gives it away.
func unrecordedJWT() string {
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	return b64url(`{"alg":"RS256","typ":"JWT","kid":"k1"}`) + "." +
		b64url(`{"aud":"https://graph.microsoft.com","oid":"0000"}`) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// issuedToken is an opaque token recorded the way the stand-ins record theirs.
func issuedToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	v := "tok_" + base64.RawURLEncoding.EncodeToString(b)
	Issue("planted token", v)
	return v
}

// A token written to a log line, a reply or a Table row is caught — whether a stand-in issued
// it or it merely has a JWT's shape — and the clean versions of each pass.
func TestPlantedSecretsAreCaught(t *testing.T) {
	cleanLog := `{"time":"2026-12-01T16:43:14Z","level":"INFO","msg":"activity","status":200,"user":"user:9f86d081884c"}`
	cleanReply := map[string]any{"type": "message", "text": "You are Alice Example (alice@contoso.example)."}
	cleanRow := Row{Table: "users", Properties: map[string]any{
		"PartitionKey": strings.Repeat("ab12", 16), "RowKey": "tok|" + strings.Repeat("9f", 32),
		"Kind": "token", "KeyVer": "3f2a9c0d1e7b4a55a0c1d2e3f4a5b6c7", "Data": sealedValue(t),
		"Exp": "2026-12-01T17:43:14.0000000Z", "Exp@odata.type": "Edm.DateTime",
		"odata.etag": `W/"datetime'2026-12-01T16%3A43%3A14.1234567Z'"`, "Timestamp": "2026-12-01T16:43:14.1234567Z",
	}}
	planted := map[string]func() string{"an issued token": issuedToken, "an unrecorded JWT": unrecordedJWT}

	t.Run("clean", func(t *testing.T) {
		r := &recorder{TB: t}
		Watch(r, func() string { return cleanLog })
		WatchReplies(r, func() []map[string]any { return []map[string]any{cleanReply} })
		WatchTables(r, func() ([]Row, error) { return []Row{cleanRow}, nil })
		if errs := r.end(); len(errs) > 0 {
			t.Fatalf("clean log, reply and row reported: %v", errs)
		}
	})
	for name, plant := range planted {
		t.Run(name+" in a log line", func(t *testing.T) {
			tok := plant()
			r := &recorder{TB: t}
			Watch(r, func() string {
				return cleanLog + "\n" + `{"level":"WARN","msg":"exchange failed","err":"refused ` + tok + `"}`
			})
			expectCaught(t, r.end(), "found in the log", tok)
		})
		t.Run(name+" in a reply", func(t *testing.T) {
			tok := plant()
			r := &recorder{TB: t}
			WatchReplies(r, func() []map[string]any {
				return []map[string]any{cleanReply, {"type": "message", "text": "debug: " + tok}}
			})
			expectCaught(t, r.end(), "found in a reply", tok)
		})
		t.Run(name+" in a Table row", func(t *testing.T) {
			tok := plant()
			leaky := Row{Table: "users", Properties: map[string]any{"PartitionKey": "p", "RowKey": "r", "Note": tok}}
			r := &recorder{TB: t}
			WatchTables(r, func() ([]Row, error) { return []Row{cleanRow, leaky}, nil })
			expectCaught(t, r.end(), "found in Table Storage", "Note")
		})
	}
	t.Run("the default slog output", func(t *testing.T) {
		prev := slog.Default()
		defer slog.SetDefault(prev)
		logs := CaptureDefault(nil)
		slog.Info("activity", "status", 200)
		if f := Find(logs()); len(f) != 0 {
			t.Fatalf("clean default log reported: %v", f)
		}
		tok := unrecordedJWT()
		slog.Debug("token", "value", tok)
		if f := Find(logs()); len(f) != 1 || !strings.HasPrefix(f[0].Kind, "shape: JWT") {
			t.Fatalf("a JWT logged at debug level through the default logger: found %v", f)
		}
	})
}

func expectCaught(t *testing.T, errs []string, where, mustMention string) {
	t.Helper()
	if len(errs) != 1 || !strings.Contains(errs[0], where) {
		t.Fatalf("want one %q error, got %q", where, errs)
	}
	if strings.Contains(errs[0], mustMention) && len(mustMention) > 16 {
		t.Fatalf("the report shows the whole secret: %s", errs[0])
	}
}

// sealedValue is what a sealed Data property looks like: base64 of 0x01, nonce, ciphertext, tag.
func sealedValue(t *testing.T) string {
	b := make([]byte, 1+12+60+16)
	_, _ = rand.Read(b)
	b[0] = sealedFormat
	return base64.StdEncoding.EncodeToString(b)
}

// A sign-in link is what an OAuthCard exists to carry: it is allowed in a reply, and nowhere else.
func TestSignInLinksAreAllowedInRepliesOnly(t *testing.T) {
	link := "c3f1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b-signin"
	Issue("sign-in link", link)
	card, _ := json.Marshal(map[string]any{"buttons": []any{map[string]any{"type": "signin", "value": "https://token.example/signin?l=" + link}}})
	if f := FindInReplies(string(card)); len(f) != 0 {
		t.Fatalf("a sign-in link in a reply was reported: %v", f)
	}
	if f := Find(`{"msg":"card sent","link":"` + link + `"}`); len(f) != 1 {
		t.Fatalf("a sign-in link in the log: found %v, want it", f)
	}
}

func TestShapes(t *testing.T) {
	jwt := unrecordedJWT()
	unsigned := b64url(`{"alg":"none"}`) + "." + b64url(`{"sub":"x"}`) + "."
	jwe := b64url(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".a2V5.aXY.Y2lwaGVydGV4dA.dGFn"
	cases := []struct {
		name, text, want string
	}{
		{"JWT in an Authorization header", "authorization: Bearer " + jwt, "shape: JWT"},
		{"JWT in JSON", `{"token":"` + jwt + `"}`, "shape: JWT"},
		{"JWT in a query", "GET /cb?id_token=" + jwt + "&x=1", "shape: JWT"},
		{"unsigned JWT", "token " + unsigned + " refused", "shape: JWT"},
		{"JWE", "got " + jwe, "shape: JWT"},
		{"opaque bearer credential", "Authorization: Bearer 8xLOxBtZp8PQ1Zr3GdR4qV7", "shape: bearer credential"},
		{"refresh_token in a form", "grant_type=refresh_token&refresh_token=Qm9iUmVmcmVzaDEyMzQ1Njc4", "shape: OAuth refresh_token"},
		{"refresh_token in JSON", `{"refresh_token":"Qm9iUmVmcmVzaDEyMzQ1Njc4"}`, "shape: OAuth refresh_token"},
		{"refresh_token in escaped JSON", `"body":"{\"refresh_token\":\"Qm9iUmVmcmVzaDEyMzQ1Njc4\"}"`, "shape: OAuth refresh_token"},
		{"client_secret in a form", "client_id=x&client_secret=s3cr3t-V4lue-0123", "shape: OAuth client_secret"},
		{"client_assertion", "client_assertion_type=urn&client_assertion=aBc1dEf2gHi3jKl4mNo5", "shape: OAuth client_assertion"},
		{"code in a redirect", "GET /api/oauth/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=x", "shape: authorization code in a URL"},
		{"Entra refresh token (documented example prefix)", "rt AwABAAAAvPM1KaPlrEqdFSBzjqfTGAMxZGUTdM0t4B4rTfgV29ghDOHRc2B", "shape: Entra refresh token or code"},
		{"Entra authorization code (documented example prefix)", "OAAABAAAAiL9Kn2Z27UubvWFPbm0gLWQJVzCTE9UkP3pSx1aXxUjq3n8b2JRLk4OxVXr", "shape: Entra refresh token or code"},
		{"Entra refresh token (version prefix)", "1.AUsA" + strings.Repeat("Zm9vYmFy", 12), "shape: Entra refresh token or code"},
		{"Entra client secret", "secret=abc8Q~" + strings.Repeat("x1Y2", 8) + "ab", "shape: Entra client secret"},
		{"stand-in Atlassian refresh token", "rt-" + strings.Repeat("aB3_", 8), "shape: stand-in token"},
		{"stand-in Atlassian code", "code-" + strings.Repeat("aB3-", 8), "shape: stand-in token"},
		{"stand-in Entra refresh token", "rt.0a1b2c3d-0000-4000-8000-00000000000a0a1b2c3d-0000-4000-8000-00000000000b", "shape: stand-in token"},
		{"stand-in SAML application token", "app." + strings.Repeat("0f", 16), "shape: stand-in token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Shapes(tc.text)
			if len(got) == 0 || got[0].Kind != tc.want {
				t.Fatalf("Shapes(%q) = %v, want %s", tc.text, got, tc.want)
			}
		})
	}
}

// What our own logs, replies and rows are made of must not look like a secret.
func TestShapesLeaveIdsETagsAndSealedValuesAlone(t *testing.T) {
	clean := []string{
		sealedValue(t),
		`W/"datetime'2026-12-01T16%3A43%3A14.1234567Z'"`,
		`"0x8DCF2A1B3C4D5E6"`,
		"a11ce000-0000-4000-8000-00000000000a",
		"29:1Dxa5Zc3Y0fYlSzP0s-L2Iu8B0nLp3sD7JAvFzzq1rG5Pn3xJ7kWbY0uH2Gm8cQ5",
		"a:1Xq7sB3xY2mQ9rZ0wV4uT6pL8kJ5hG3fD1sA7zX9cV2bN4mQ6wE8rT0yU2iO4pA6s",
		"f:1733071394123",
		"user:9f86d081884c",
		strings.Repeat("9f86d081884c7d65", 4),
		"https://api.atlassian.com/ex/jira/11223344-a1b2-3c4d-5e6f-aabbccddeeff/rest/api/3/myself",
		"https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/oauth2/v2.0/token",
		"api://botid-00000000-0000-4000-8000-000000000b07/access_as_user",
		"alice@contoso.example",
		"github.com/onbehalf/onbehalf/internal/tokenstore.(*Store).FreshToken",
		"eyebrow.example.com is a host, and e.g. is not a token",
		`{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}`,
		`{"msg":"refresh","refresh_token":"rotated","code":"BotNotInConversationRoster"}`,
		"grant_type=refresh_token&client_id=0e0e0e0e-0000-4000-8000-000000000001",
		"Bearer token missing or malformed",
		"version 1.2.3 and 0.A",
		`"code":"invalid_grant"`,
		"?code=&state=abc",
		`{"assertion":"missing_audience_claim","code_verifier":"NOT_PROVIDED_BY_CLIENT"}`,
		"Bearer authorization-header-missing",
		"/api/oauth/callback?code=access_denied_by_the_user",
	}
	for _, s := range clean {
		if got := Shapes(s); len(got) != 0 {
			t.Errorf("Shapes(%q) = %v, want nothing", s, got)
		}
		if opaque(s) && !sealed(s) {
			t.Errorf("%q counts as an unsealed opaque Table value", s)
		}
	}
}

// A Table value that is opaque but not sealed is reported even when it matches no shape:
// Table Storage must hold only sealed values and metadata.
func TestUnsealedOpaqueTableValueIsCaught(t *testing.T) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	b[0] = 0x02 // not our format
	raw := base64.StdEncoding.EncodeToString(b)
	if !opaque(raw) {
		t.Skip("random value happened to miss a character class")
	}
	got := FindInRows([]Row{{Table: "t", Properties: map[string]any{"PartitionKey": "p", "RowKey": "r", "Data": raw}}})
	if len(got) != 1 || got[0].Secret.Kind != "unsealed opaque value" || got[0].Property != "Data" {
		t.Fatalf("got %v", got)
	}
}
