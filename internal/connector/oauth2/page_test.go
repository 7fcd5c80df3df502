package oauth2_test

import (
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// The page names what is being connected and says how long the code lasts in the card's terms.
func TestCallbackPageTitleAndLifetime(t *testing.T) {
	var b strings.Builder
	if err := oauth2.RenderCallbackPage(&b, oauth2.CallbackPage{DisplayName: "Jira and Confluence", Code: "12345678", Nonce: "bm9uY2Vub25jZW5vbmNl", MinutesLeft: 9}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<title>Connect Jira and Confluence</title>", "within 10 minutes of the card you pressed (9 minutes left)", "link 12345678"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	b.Reset()
	if err := oauth2.RenderCallbackPage(&b, oauth2.CallbackPage{Error: "This sign-in link is not valid any more.", Nonce: "bm9uY2Vub25jZW5vbmNl"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "<title>Connect an account</title>") || strings.Contains(b.String(), "your account sign-in") {
		t.Errorf("error page title: %s", b.String())
	}
}
