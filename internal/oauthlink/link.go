package oauthlink

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/bot"
	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/cards"
	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// Steps recorded in a sign-in state: the card's link, then the provider's round trip.
const (
	stepCard      = "card"
	stepAuthorize = "authorize"
)

// Sign-in state Extra keys.
const (
	xStep     = "step"
	xConv     = "conv"
	xRef      = "ref"
	xDeadline = "exp"
)

// SigninCardContentType is the Bot Framework sign-in card; Teams opens its "signin" button in
// its authentication window, where the callback page can call notifySuccess.
const SigninCardContentType = "application/vnd.microsoft.card.signin"

// sendSignIn starts a link for the turn's user in the turn's conversation and sends the card.
func (s *Service) sendSignIn(ctx context.Context, t *bot.Turn, u tokenstore.UserKey, p *Provider, sentence string) error {
	ref, err := json.Marshal(t.Reference())
	if err != nil {
		return err
	}
	if err := s.Store.PutConversationRef(ctx, u, ref); err != nil {
		return fmt.Errorf("oauthlink: store conversation reference: %w", err)
	}
	deadline := s.now().Add(oauth2.LinkTTL)
	state, err := s.Store.CreateSignIn(ctx, tokenstore.SignInState{
		User: u, Connector: p.name(), PKCEVerifier: oauth2.NewVerifier(),
		Extra: map[string]string{
			xStep: stepCard, xConv: t.Activity.Conversation.ID, xRef: string(ref),
			xDeadline: strconv.FormatInt(deadline.Unix(), 10),
		},
	}, oauth2.LinkTTL)
	if err != nil {
		return fmt.Errorf("oauthlink: create sign-in state: %w", err)
	}
	link := strings.TrimRight(s.PublicURL, "/") + "/api/oauth/start?state=" + state
	title := "Connect " + p.display()
	if t.Activity.BaseChannelID() == "msteams" && !s.Anonymous {
		return t.ReplyCard(ctx, "", botframework.Attachment{ContentType: SigninCardContentType, Content: map[string]any{
			"text":    sentence,
			"buttons": []map[string]any{{"type": "signin", "title": title, "value": link}},
		}})
	}
	card := cards.WithActions(cards.New(
		cards.Text(sentence, false),
		cards.Text("After you sign in, the page shows a code: type **link** and the code here, for example **link 12345678**. The button and the code work once, for you only, within 10 minutes of this card.", true),
	), map[string]any{"type": "Action.OpenUrl", "title": title, "url": link})
	return t.ReplyCard(ctx, "", cards.Attachment(card))
}

// ServeHTTP serves GET /api/oauth/start and GET /api/oauth/callback.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// GET only: both pages consume a single-use state, which a HEAD from a link scanner must
	// not burn.
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/api/oauth/start":
		s.start(w, r)
	case "/api/oauth/callback":
		s.callback(w, r)
	default:
		http.NotFound(w, r)
	}
}

const notValid = "This sign-in link is not valid any more: it was already used, it has expired, or it was not made for this bot. Go back to the chat and ask to connect again."

// start turns the card's state into the provider's authorization request. The card's state
// is consumed: a second click, or a copy of the link, finds nothing.
func (s *Service) start(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, p, deadline, ok := s.consume(w, r, stepCard)
	if !ok {
		return
	}
	st.Extra[xStep] = stepAuthorize
	next, err := s.Store.CreateSignIn(ctx, st, deadline.Sub(s.now()))
	if err != nil {
		s.log().Warn("oauth start: storing the state failed", slog.String("connector", p.name()), slog.String("error", err.Error()))
		s.page(w, http.StatusServiceUnavailable, p.display(), "", "The bot could not start the sign-in right now. Go back to the chat and try again in a minute.")
		return
	}
	s.log().Info("oauth start", slog.String("connector", p.name()), slog.String("user", st.User.String()))
	noStore(w)
	http.Redirect(w, r, p.Conn.AuthCodeURL(next, st.PKCEVerifier), http.StatusFound)
}

// consume takes the request's state once and checks its step and deadline. On failure it has
// answered the request.
func (s *Service) consume(w http.ResponseWriter, r *http.Request, step string) (tokenstore.SignInState, *Provider, time.Time, bool) {
	state := r.URL.Query().Get("state")
	fail := func(status int, display, msg, reason string) (tokenstore.SignInState, *Provider, time.Time, bool) {
		s.log().Warn("oauth "+step+" refused", slog.String("reason", reason))
		s.page(w, status, display, "", msg)
		return tokenstore.SignInState{}, nil, time.Time{}, false
	}
	if state == "" || len(state) > 128 {
		return fail(http.StatusBadRequest, "", notValid, "missing or oversized state")
	}
	st, err := s.Store.ConsumeSignIn(r.Context(), state)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrSignInNeeded):
		return fail(http.StatusBadRequest, "", notValid, "unknown, used or expired state")
	case err != nil:
		s.log().Warn("oauth: reading the state failed", slog.String("error", err.Error()))
		return fail(http.StatusServiceUnavailable, "", "The bot could not check this sign-in right now. Go back to the chat and try again in a minute.", "store unavailable")
	}
	p, perr := s.provider(st.Connector)
	if perr != nil || st.Connector != p.name() {
		return fail(http.StatusBadRequest, "", notValid, "state for an unknown connector")
	}
	secs, _ := strconv.ParseInt(st.Extra[xDeadline], 10, 64)
	deadline := time.Unix(secs, 0)
	if st.Extra[xStep] != step {
		return fail(http.StatusBadRequest, p.display(), notValid, "state used at the wrong step")
	}
	if !s.now().Before(deadline) {
		return fail(http.StatusBadRequest, p.display(), notValid, "state past its deadline")
	}
	return st, p, deadline, true
}

// pendingRow is a parked link awaiting confirmation.
type pendingRow struct {
	Link oauth2.PendingLink `json:"link"`
	Ref  json.RawMessage    `json:"ref"`
}

// callback redeems the code and parks the tokens until the user confirms. The state is
// consumed first, so a replayed or forged callback stores nothing.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, p, deadline, ok := s.consume(w, r, stepAuthorize)
	if !ok {
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		// RFC 6749 §4.1.2.1: the user (or the provider) declined. The code is a short ASCII token.
		s.log().Info("oauth callback: provider returned an error", slog.String("connector", p.name()), slog.String("user", st.User.String()), slog.String("error_code", safeCode(e)))
		s.page(w, http.StatusBadRequest, p.display(), "", fmt.Sprintf("%s did not grant access (%s). Nothing was connected.", p.display(), safeCode(e)))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.page(w, http.StatusBadRequest, p.display(), "", notValid)
		return
	}
	tok, err := p.Conn.Exchange(ctx, code, st.PKCEVerifier)
	if err != nil {
		s.log().Warn("oauth callback: code exchange refused", slog.String("connector", p.name()), slog.String("user", st.User.String()), slog.String("reason", err.Error()))
		status, msg := http.StatusBadRequest, fmt.Sprintf("%s did not accept this sign-in. Nothing was connected. Go back to the chat and ask to connect again.", p.display())
		if errors.Is(err, oauth2.ErrUnavailable) || errors.Is(err, oauth2.ErrMisconfigured) {
			status, msg = http.StatusBadGateway, fmt.Sprintf("%s could not complete the sign-in right now. Nothing was connected. Try again in a few minutes.", p.display())
		}
		s.page(w, status, p.display(), "", msg)
		return
	}
	link := &oauth2.PendingLink{
		State: r.URL.Query().Get("state"), User: st.User.Partition(), Conversation: st.Extra[xConv],
		Connector: p.name(), Expires: deadline,
	}
	otc, err := link.Complete(tok, s.now())
	if err == nil {
		var payload []byte
		payload, err = json.Marshal(pendingRow{Link: *link, Ref: json.RawMessage(st.Extra[xRef])})
		if err == nil {
			_, err = s.Store.Park(ctx, st.User, tokenstore.Parked{Connector: linkPrefix + p.name(), Payload: payload}, deadline.Sub(s.now()))
		}
	}
	if err != nil {
		s.log().Warn("oauth callback: keeping the pending link failed", slog.String("connector", p.name()), slog.String("error", err.Error()))
		s.page(w, http.StatusServiceUnavailable, p.display(), "", "The bot could not finish the sign-in right now. Nothing was connected. Try again in a few minutes.")
		return
	}
	s.log().Info("oauth callback: awaiting confirmation", slog.String("connector", p.name()), slog.String("user", st.User.String()))
	s.pageLeft(w, http.StatusOK, p.display(), otc, "", deadline.Sub(s.now()))
}

func safeCode(e string) string {
	if len(e) > 40 {
		e = e[:40]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, e)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// page renders the callback page: the one-time code, or an error sentence.
func (s *Service) page(w http.ResponseWriter, status int, display, code, errMsg string) {
	s.pageLeft(w, status, display, code, errMsg, 0)
}

// pageLeft is page with the time the code stays valid.
func (s *Service) pageLeft(w http.ResponseWriter, status int, display, code, errMsg string, left time.Duration) {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	nonce := base64.StdEncoding.EncodeToString(b)
	minutes := 0
	if left > 0 {
		minutes = int((left + time.Minute - 1) / time.Minute)
	}
	noStore(w)
	w.Header().Set("Content-Security-Policy", oauth2.CallbackPageCSP(nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = oauth2.RenderCallbackPage(w, oauth2.CallbackPage{DisplayName: display, Code: code, Error: errMsg, Nonce: nonce, MinutesLeft: minutes})
}
