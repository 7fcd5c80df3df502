package logcheck

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
)

// Shapes returns the secret-shaped values in text that no stand-in recorded: tokens another
// process issued, a real provider's tokens, or a recorded one the record missed. Each finding's
// Kind starts with "shape:" and names the shape; each distinct value is reported once.
//
// The shapes, and where each comes from:
//   - a JWS or JWE in compact serialization (RFC 7515 §7.1, RFC 7516 §7.1): three (or five)
//     dot-separated base64url segments whose first decodes to a JSON object with "alg". Entra
//     access, ID and SSO tokens, channel tokens, managed-identity tokens and Atlassian access
//     tokens are all JWTs;
//   - a bearer credential after "Bearer " (RFC 6750 §2.1);
//   - a value given to an OAuth parameter that carries a credential: access_token,
//     refresh_token, id_token, client_secret, client_assertion, assertion, code_verifier
//     (RFC 6749 §4–6, RFC 7521 §4.2, RFC 7636 §4.5), and code in a URL query (RFC 6749 §4.1.2);
//   - Entra's opaque refresh tokens and authorization codes, by the prefixes of the
//     examples in the Microsoft identity platform documentation ("AwABAAAA", "OAAABAAAA",
//     "OAQABAAAA"; entra-docs v2-oauth2-auth-code-flow.md) and the "0.A"/"1.A" version prefix
//     seen on current tokens (unverified: not documented);
//   - Entra client secrets ("xxx8Q~…", 40 characters; unverified: not documented);
//   - the stand-ins' own opaque formats: Atlassian "at-", "rt-", "code-", "fam-" + 32 base64url
//     characters; Entra "rt." + two GUIDs; the SAML application's "app." + hex.
//
// Atlassian documents its refresh tokens only as strings; their format is unverified, and a
// JWT-shaped one is caught as a JWT.
//
// Identifiers (GUIDs, hex hashes), ETags, timestamps, host names and our sealed values match
// none of these shapes.
func Shapes(text string) []Secret {
	var out []Secret
	seen := map[string]bool{}
	add := func(kind, v string) {
		if !seen[v] {
			seen[v] = true
			out = append(out, Secret{Kind: "shape: " + kind, Value: v})
		}
	}
	for _, run := range tokenRuns(text) {
		if kind, v, ok := shapeOf(run); ok {
			add(kind, v)
		}
	}
	for _, m := range bearerRE.FindAllStringSubmatch(text, -1) {
		if !wordy(m[1]) {
			add("bearer credential", m[1])
		}
	}
	for _, m := range paramRE.FindAllStringSubmatch(text, -1) {
		if !wordy(m[2]) {
			add("OAuth "+strings.ToLower(m[1]), m[2])
		}
	}
	for _, m := range codeParamRE.FindAllStringSubmatch(text, -1) {
		if !wordy(m[1]) {
			add("authorization code in a URL", m[1])
		}
	}
	return out
}

// wordy reports a value made of one case of letters and separators only ("invalid_grant",
// "NOT_PROVIDED", "token-missing"): an error code or a placeholder, not a credential. A random
// value of 12 or more base64 characters is like that about once in a million.
func wordy(v string) bool {
	lower, upper := true, true
	for i := 0; i < len(v); i++ {
		c := v[i]
		sep := c == '_' || c == '-' || c == '.'
		lower = lower && (c >= 'a' && c <= 'z' || sep)
		upper = upper && (c >= 'A' && c <= 'Z' || sep)
	}
	return lower || upper
}

var (
	// bearerRE: "Bearer" then a token68 (RFC 7235 §2.1) long enough not to be a word.
	bearerRE = regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)`)
	// paramRE: a credential-carrying parameter name, then = or ":" (form, query or JSON),
	// then a value. Empty or short values (a placeholder, a boolean) are not credentials.
	paramRE = regexp.MustCompile(`(?i)\b(access_token|refresh_token|id_token|client_secret|client_assertion|assertion|code_verifier)(?:=|\\?"\s*:\s*\\?")([A-Za-z0-9._~+/%-]{12,})`)
	// codeParamRE: code=… in a query string (after ? or &), as a redirect carries it.
	codeParamRE = regexp.MustCompile(`[?&]code=([A-Za-z0-9._~+/%-]{16,})`)
	// entraSecretRE: three characters, a digit, "Q~", then 31–34 more.
	entraSecretRE = regexp.MustCompile(`^[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}$`)
	standinRE     = regexp.MustCompile(`^(?:(?:at|rt|code|fam)-[A-Za-z0-9_-]{32}|rt\.[0-9a-f-]{72}|app\.[0-9a-f]{32,})$`)
)

// isRunChar is the alphabet of compact JWTs, base64, base64url and the opaque formats above
// (padding aside: "=" also separates a name from its value).
func isRunChar(c byte) bool { return isWord(c) || c == '.' }

// tokenRuns splits s into maximal runs of token characters at least 16 long.
func tokenRuns(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isRunChar(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if i-start >= 16 {
				out = append(out, s[start:i])
			}
			start = -1
		}
	}
	return out
}

// shapeOf reports which shape run (or the JWT inside it) has.
func shapeOf(run string) (kind, value string, ok bool) {
	if v, ok := jwtIn(run); ok {
		return "JWT", v, true
	}
	r := strings.TrimRight(run, ".")
	switch {
	case standinRE.MatchString(r):
		return "stand-in token", r, true
	case entraSecretRE.MatchString(r):
		return "Entra client secret", r, true
	case len(r) >= 40 && (strings.HasPrefix(r, "AwABAAAA") || strings.HasPrefix(r, "OAAABAAAA") || strings.HasPrefix(r, "OAQABAAAA")):
		return "Entra refresh token or code", r, true
	case len(r) >= 80 && (strings.HasPrefix(r, "0.A") || strings.HasPrefix(r, "1.A")):
		return "Entra refresh token or code", r, true
	}
	return "", "", false
}

// jwtIn finds a compact JWS (3 segments) or JWE (5 segments) in run: the run may carry
// other characters before it (a "+" or "/" from base64) but each segment must be base64url.
func jwtIn(run string) (string, bool) {
	for off := 0; off < len(run); {
		i := strings.IndexByte(run[off:], 'e') // a JSON object's base64url always starts "e"
		if i < 0 {
			return "", false
		}
		start := off + i
		if v, ok := jwtAt(run[start:]); ok && (start == 0 || !isB64URL(run[start-1])) {
			return v, true
		}
		off = start + 1
	}
	return "", false
}

func isB64URL(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// jwtAt reports whether s begins with a compact JWS or JWE and returns it.
func jwtAt(s string) (string, bool) {
	end := 0
	for end < len(s) && (isB64URL(s[end]) || s[end] == '.') {
		end++
	}
	parts := strings.Split(s[:end], ".")
	if len(parts) != 3 && len(parts) != 5 || len(parts[0]) < 10 {
		return "", false
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", false
	}
	var h map[string]any
	if json.Unmarshal(hdr, &h) != nil {
		return "", false
	}
	if _, ok := h["alg"].(string); !ok {
		return "", false
	}
	return s[:end], true
}
