package oauth2

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"time"
)

// Linking a user's account, in four steps (the HTTP handlers and the store live elsewhere;
// the pure parts live here):
//
//  1. A turn from authenticated user U in conversation C calls NewLink and stores the
//     PendingLink create-only, keyed by StateKey(link.State). The sign-in card points at
//     {BOT_PUBLIC_URL}/api/oauth/start?state=…, which redirects to AuthCodeURL.
//  2. GET /api/oauth/callback?code&state: load the row by StateKey(state) and consume the
//     callback step (conditional update: a second callback with the same state is refused);
//     Check it has not expired; Exchange(code, link.Verifier); then Complete the row with a
//     fresh one-time code and the tokens, and answer with RenderCallbackPage. Nothing is
//     stored under the user's connection yet.
//  3. In Teams the page calls microsoftTeams.authentication.notifySuccess(code), so Teams
//     sends invoke signin/verifyState {state: code} from U's own client; elsewhere the page
//     shows the code and U types it into the chat.
//  4. The bot, handling that invoke or message from authenticated user X, loads X's pending
//     rows and calls Confirm(X, code). Only when X == U and the code matches are the tokens
//     moved to the user's connection and the row deleted. A forwarded link therefore links
//     nothing: the code reaches the bot only from the forwarder's victim, whose identity
//     does not match U.

// LinkTTL is how long a link may take from card to confirmation.
const LinkTTL = 10 * time.Minute

// maxCodeAttempts bounds wrong one-time codes per link before it is dropped.
const maxCodeAttempts = 5

// Link errors. All mean "nothing was stored"; the row should be deleted on each except
// ErrLinkWrongCode below the attempt limit.
var (
	ErrLinkExpired   = errors.New("the sign-in link has expired")
	ErrLinkWrongUser = errors.New("the sign-in was started by another user")
	ErrLinkWrongCode = errors.New("the code does not match")
	ErrLinkState     = errors.New("the sign-in is not in the expected step")
)

// PendingLink is one sign-in in progress. It holds secrets (Verifier, Token): store it sealed.
type PendingLink struct {
	// State is the OAuth state: 32 random bytes, base64url. Only its StateKey is used as a
	// row key, so a leaked table key does not give a usable state.
	State string `json:"state"`
	// User is the authenticated user key of the turn that started the link.
	User string `json:"user"`
	// Conversation is where the connected message goes.
	Conversation string `json:"conversation"`
	// Connector is Config.Name.
	Connector string `json:"connector"`
	// Verifier is the PKCE code verifier.
	Verifier string    `json:"verifier"`
	Expires  time.Time `json:"expires"`
	// CodeHash is set by Complete: SHA-256 over the state and the one-time code.
	CodeHash string `json:"codeHash,omitempty"`
	// Token is set by Complete and moved to the connection by Confirm.
	Token *Token `json:"token,omitempty"`
	// Attempts counts wrong codes.
	Attempts int `json:"attempts,omitempty"`
}

// NewLink starts a link for an authenticated user in a conversation.
func NewLink(user, conversation, connector string, now time.Time) (*PendingLink, error) {
	if user == "" || conversation == "" || connector == "" {
		return nil, errors.New("new link: user, conversation and connector are required")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("new link: %w", err)
	}
	return &PendingLink{
		State: base64.RawURLEncoding.EncodeToString(b), User: user, Conversation: conversation,
		Connector: connector, Verifier: NewVerifier(), Expires: now.Add(LinkTTL),
	}, nil
}

// StateKey is the row key for a state value: its SHA-256, hex.
func StateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// Check reports whether the link can still be used at now.
func (p *PendingLink) Check(now time.Time) error {
	if !now.Before(p.Expires) {
		return ErrLinkExpired
	}
	return nil
}

// Complete records the exchanged tokens after the callback and returns the one-time code to
// hand to the page. It refuses a link already completed (a replayed callback).
func (p *PendingLink) Complete(tok *Token, now time.Time) (string, error) {
	if err := p.Check(now); err != nil {
		return "", err
	}
	if p.CodeHash != "" || p.Token != nil {
		return "", ErrLinkState
	}
	if tok == nil || tok.AccessToken == "" {
		return "", errors.New("complete link: no token")
	}
	code, err := newCode()
	if err != nil {
		return "", fmt.Errorf("complete link: %w", err)
	}
	p.CodeHash = codeHash(p.State, code)
	p.Token = tok
	return code, nil
}

// Confirm checks that the code arrives from the user who started the link, in time, and
// returns the tokens to store. On ErrLinkWrongCode the caller saves the incremented Attempts;
// once they reach the limit Confirm returns ErrLinkExpired and the row must be deleted.
func (p *PendingLink) Confirm(user, code string, now time.Time) (*Token, error) {
	if err := p.Check(now); err != nil {
		return nil, err
	}
	if p.Attempts >= maxCodeAttempts {
		return nil, ErrLinkExpired
	}
	if p.CodeHash == "" || p.Token == nil {
		return nil, ErrLinkState
	}
	if subtle.ConstantTimeCompare([]byte(user), []byte(p.User)) != 1 {
		return nil, ErrLinkWrongUser
	}
	if subtle.ConstantTimeCompare([]byte(codeHash(p.State, code)), []byte(p.CodeHash)) != 1 {
		p.Attempts++
		return nil, ErrLinkWrongCode
	}
	return p.Token, nil
}

// codeDigits is the one-time code's length: short enough to type, and guessing is bounded
// by maxCodeAttempts on a row that only its owner's identity can confirm.
const codeDigits = 8

func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", codeDigits, n.Int64()), nil
}

func codeHash(state, code string) string {
	sum := sha256.Sum256([]byte("onbehalf-link-code\x00" + state + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// CallbackPage is what the OAuth callback page shows.
type CallbackPage struct {
	// DisplayName of the connector ("Jira and Confluence").
	DisplayName string
	// Code is the one-time code; empty on failure.
	Code string
	// Error is a sentence for the user on failure.
	Error string
	// MinutesLeft is how long the code stays valid, rounded up; 0 leaves it out.
	MinutesLeft int
	// Nonce is the CSP script nonce (see CallbackPageCSP); base64 of at least 16 random bytes.
	Nonce string
}

// TeamsJSURL is the Microsoft Teams JavaScript client library the page loads
// (learn.microsoft.com/microsoftteams/platform/tabs/how-to/using-teams-client-library).
const TeamsJSURL = "https://res.cdn.office.net/teams-js/2.34.0/js/MicrosoftTeams.min.js"

// CallbackPageCSP is the Content-Security-Policy header value to send with the page.
// Send also "Referrer-Policy: no-referrer" and "Cache-Control: no-store": the page's URL
// carries the authorization code.
func CallbackPageCSP(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "' https://res.cdn.office.net; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors https://teams.microsoft.com https://*.teams.microsoft.com https://*.cloud.microsoft"
}

var callbackTmpl = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .DisplayName}}Connect {{.DisplayName}}{{else}}Connect an account{{end}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}#code{font-size:2rem;letter-spacing:.3rem;font-family:monospace}</style>
</head>
<body>
{{if .Error}}<h1>Sign-in did not complete</h1>
<p>{{.Error}}</p>
<p>Nothing was connected. Go back to the chat and try again.</p>
{{else}}<h1>Almost done</h1>
<div id="teams" hidden><p>Finishing in Teams… you can close this window if it stays open.</p></div>
<div id="manual">
<p>To finish connecting {{.DisplayName}}, type this in <strong>your own</strong> chat with the bot:</p>
<p id="code">link {{.Code}}</p>
<p>It works once, only for the person who started the sign-in, and only within 10 minutes of the card you pressed{{if .MinutesLeft}} ({{.MinutesLeft}} {{if eq .MinutesLeft 1}}minute{{else}}minutes{{end}} left){{end}}.
If someone sent you this link, do not share the code.</p>
</div>
<script nonce="{{.Nonce}}" src="` + TeamsJSURL + `"></script>
<script nonce="{{.Nonce}}">
(function () {
  var code = {{.Code}};
  var teams = window.microsoftTeams;
  if (!teams || !teams.app) { return; }
  // Inside Teams the sign-in window hands the code to Teams, which sends
  // signin/verifyState from this user's own client.
  teams.app.initialize().then(function () {
    document.getElementById("manual").hidden = true;
    document.getElementById("teams").hidden = false;
    teams.authentication.notifySuccess(code);
  }).catch(function () { /* not in Teams: the code stays on screen */ });
})();
</script>
{{end}}</body>
</html>
`))

// RenderCallbackPage writes the callback page.
func RenderCallbackPage(w io.Writer, p CallbackPage) error {
	if p.Error == "" && p.Code == "" {
		return errors.New("callback page: neither code nor error")
	}
	return callbackTmpl.Execute(w, p)
}
