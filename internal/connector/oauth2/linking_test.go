package oauth2

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func completedLink(t *testing.T, now time.Time) (*PendingLink, string) {
	t.Helper()
	l, err := NewLink("user-a", "conv-1", "atlassian", now)
	if err != nil {
		t.Fatal(err)
	}
	code, err := l.Complete(&Token{AccessToken: "at", RefreshToken: "rt"}, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return l, code
}

func TestLinkConfirmation(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	l, code := completedLink(t, now)
	if len(code) != codeDigits || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("code %q", code)
	}
	if strings.Contains(l.CodeHash, code) {
		t.Fatal("code stored in clear")
	}
	tok, err := l.Confirm("user-a", code, now.Add(2*time.Minute))
	if err != nil || tok.RefreshToken != "rt" {
		t.Fatalf("owner confirm: %v", err)
	}

	for _, tc := range []struct {
		name      string
		user      string
		code      func(string) string
		at        time.Duration
		wantErr   error
		completed bool
	}{
		{"another user's session", "user-b", func(c string) string { return c }, 2 * time.Minute, ErrLinkWrongUser, true},
		{"wrong code", "user-a", func(string) string { return "00000000" }, 2 * time.Minute, ErrLinkWrongCode, true},
		{"expired", "user-a", func(c string) string { return c }, 11 * time.Minute, ErrLinkExpired, true},
		{"not completed", "user-a", func(c string) string { return c }, 2 * time.Minute, ErrLinkState, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l *PendingLink
			var code string
			if tc.completed {
				l, code = completedLink(t, now)
			} else {
				l, _ = NewLink("user-a", "conv-1", "atlassian", now)
			}
			tok, err := l.Confirm(tc.user, tc.code(code), now.Add(tc.at))
			if !errors.Is(err, tc.wantErr) || tok != nil {
				t.Errorf("err = %v, tok = %v", err, tok)
			}
		})
	}
}

func TestLinkGuards(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l, code := completedLink(t, now)
	if _, err := l.Complete(&Token{AccessToken: "other"}, now.Add(time.Minute)); !errors.Is(err, ErrLinkState) {
		t.Errorf("second callback: %v", err)
	}
	for range maxCodeAttempts {
		_, _ = l.Confirm("user-a", "11111111", now.Add(time.Minute))
	}
	if _, err := l.Confirm("user-a", code, now.Add(time.Minute)); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("right code after too many wrong ones: %v", err)
	}

	a, _ := NewLink("u", "c", "x", now)
	b, _ := NewLink("u", "c", "x", now)
	if a.State == b.State || a.Verifier == b.Verifier || len(a.State) < 43 {
		t.Error("states or verifiers are not random")
	}
	if StateKey(a.State) == a.State || len(StateKey(a.State)) != 64 {
		t.Error("state key")
	}
	if _, err := NewLink("", "c", "x", now); err == nil {
		t.Error("link without a user")
	}
	late, _ := NewLink("u", "c", "x", now)
	if _, err := late.Complete(&Token{AccessToken: "a"}, now.Add(LinkTTL)); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("callback after expiry: %v", err)
	}
}

func TestCallbackPage(t *testing.T) {
	var b bytes.Buffer
	if err := RenderCallbackPage(&b, CallbackPage{DisplayName: "Jira", Code: "12345678", Nonce: "bm9uY2U"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`<p id="code">12345678</p>`, `var code = "12345678"`, "notifySuccess(code)",
		`<meta name="referrer" content="no-referrer">`, `nonce="bm9uY2U"`, TeamsJSURL, "your own"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	b.Reset()
	if err := RenderCallbackPage(&b, CallbackPage{DisplayName: "Jira", Error: `<script>alert(1)</script>`}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>alert") || strings.Contains(b.String(), "notifySuccess") {
		t.Error("error page not escaped or still reports success")
	}
	if err := RenderCallbackPage(&b, CallbackPage{}); err == nil {
		t.Error("empty page rendered")
	}
	if csp := CallbackPageCSP("n"); !strings.Contains(csp, "'nonce-n'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("csp %q", csp)
	}
}
