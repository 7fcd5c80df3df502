package botframework

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrNoUserToken means the token service holds no token for the user and connection
// (GetToken answered 404): the user must sign in.
var ErrNoUserToken = errors.New("token service: the user has no token for this connection")

// ErrConsentRequired means the token service could not exchange the SSO token because the user
// must consent first (exchange answered 400, with the error {"code":"ServiceError","message":
// "Consent Required"}). Agents-for-net UserTokenRestClient.ExchangeAsync reads every 400 from
// exchange this way and OAuthFlow answers Teams 412 for it; a 500 there means a misconfigured
// OAuth connection and is answered 400.
var ErrConsentRequired = errors.New("token service: consent required")

// TokenExchangeResource tells Teams which resource to request an SSO token for.
type TokenExchangeResource struct {
	ID         string `json:"id"`
	URI        string `json:"uri"`
	ProviderID string `json:"providerId,omitempty"`
}

// TokenPostResource is where a client may post a token directly.
type TokenPostResource struct {
	SASURL string `json:"sasUrl,omitempty"`
}

// SignInResource is GetSignInResource's answer.
type SignInResource struct {
	SignInLink            string                 `json:"signInLink"`
	TokenExchangeResource *TokenExchangeResource `json:"tokenExchangeResource,omitempty"`
	TokenPostResource     *TokenPostResource     `json:"tokenPostResource,omitempty"`
}

// UserToken is a token the token service holds for a user and connection.
type UserToken struct {
	ChannelID      string `json:"channelId,omitempty"`
	ConnectionName string `json:"connectionName"`
	Token          string `json:"token"`
	Expiration     string `json:"expiration,omitempty"`
}

// TokenServiceError is a refusal from the token service.
type TokenServiceError struct {
	Op      string
	Status  int
	Code    string
	Message string
}

func (e *TokenServiceError) Error() string {
	return fmt.Sprintf("token service %s: HTTP %d %s %s", e.Op, e.Status, e.Code, e.Message)
}

// Unwrap makes errors.Is(err, ErrConsentRequired) match an exchange refused with 400.
func (e *TokenServiceError) Unwrap() error {
	if e.Op == "exchange" && e.Status == http.StatusBadRequest {
		return ErrConsentRequired
	}
	return nil
}

// TokenService is the Bot Service token API client (bot-docs
// rest-api/bot-framework-rest-connector-authentication.md; botframework-connector
// tokenApi: BotSignIn.getSignInResource, UserToken.getToken/exchangeAsync/signOut). Its
// requests carry the bot's own connector token. The service partitions users' tokens by the base
// channel, so every call names BaseChannel of the channel id it is given (Agents-for-net
// UserTokenRestClient uses ChannelId.Channel; Agents-for-python PR #457).
type TokenService struct {
	// BaseURL is BOTFRAMEWORK_TOKEN_SERVICE_URL (https://api.botframework.com, or regional).
	BaseURL string
	// AppID is the bot's app id (msAppId in the sign-in state).
	AppID string
	// Tokens supplies the bot's bearer token.
	Tokens TokenSource
	// HTTPClient performs the requests.
	HTTPClient *http.Client
}

// signInState is the state GetSignInResource takes, base64 of this JSON.
type signInState struct {
	ConnectionName string                `json:"connectionName"`
	Conversation   ConversationReference `json:"conversation"`
	RelatesTo      any                   `json:"relatesTo,omitempty"`
	MsAppID        string                `json:"msAppId"`
}

// GetSignInResource returns the sign-in link and token-exchange resource for a connection.
func (t *TokenService) GetSignInResource(ctx context.Context, connection string, ref ConversationReference) (*SignInResource, error) {
	// The state is kept by the service, and its sign-in page completes silently in Teams only
	// for the base channel (Agents-for-net#827): a composite channel id never goes there.
	ref.ChannelID = BaseChannel(ref.ChannelID)
	st, err := json.Marshal(signInState{ConnectionName: connection, Conversation: ref, MsAppID: t.AppID})
	if err != nil {
		return nil, err
	}
	q := url.Values{"state": {base64.StdEncoding.EncodeToString(st)}}
	var out SignInResource
	if err := t.retried(ctx, func() error {
		return t.do(ctx, "GetSignInResource", http.MethodGet, "/api/botsignin/GetSignInResource?"+q.Encode(), nil, &out)
	}); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetToken returns the user's token for a connection; code completes a magic-code sign-in.
// ErrNoUserToken when there is none.
func (t *TokenService) GetToken(ctx context.Context, userID, connection, channelID, code string) (*UserToken, error) {
	q := url.Values{"userId": {userID}, "connectionName": {connection}, "channelId": {BaseChannel(channelID)}}
	if code != "" {
		q.Set("code", code)
	}
	var out UserToken
	get := func() error {
		return t.do(ctx, "GetToken", http.MethodGet, "/api/usertoken/GetToken?"+q.Encode(), nil, &out)
	}
	var err error
	if code == "" {
		err = t.retried(ctx, get)
	} else {
		err = get() // a sign-in code is single-use: never sent twice
	}
	if err != nil {
		return nil, err
	}
	if out.Token == "" {
		return nil, ErrNoUserToken
	}
	return &out, nil
}

// Exchange hands the token service the user's SSO token, so that it holds the user's
// sign-in for the connection, and returns the connection's token. Errors: ErrConsentRequired
// (400: the user must consent), ErrNoUserToken (404: no token; the user must sign in), or a
// *TokenServiceError (500: the OAuth connection is misconfigured; anything else).
func (t *TokenService) Exchange(ctx context.Context, userID, connection, channelID, ssoToken string) (*UserToken, error) {
	q := url.Values{"userId": {userID}, "connectionName": {connection}, "channelId": {BaseChannel(channelID)}}
	body, _ := json.Marshal(map[string]string{"token": ssoToken})
	var out UserToken
	if err := t.do(ctx, "exchange", http.MethodPost, "/api/usertoken/exchange?"+q.Encode(), body, &out); err != nil {
		return nil, err
	}
	if out.Token == "" {
		return nil, &TokenServiceError{Op: "exchange", Status: http.StatusOK, Message: "no token in the answer"}
	}
	return &out, nil
}

// SignOut removes the user's token for a connection at the token service.
func (t *TokenService) SignOut(ctx context.Context, userID, connection, channelID string) error {
	q := url.Values{"userId": {userID}, "connectionName": {connection}, "channelId": {BaseChannel(channelID)}}
	err := t.do(ctx, "SignOut", http.MethodDelete, "/api/usertoken/SignOut?"+q.Encode(), nil, nil)
	if errors.Is(err, ErrNoUserToken) {
		return nil
	}
	return err
}

// transientRetryDelay is the pause before the one retry of a read that failed transiently.
const transientRetryDelay = 250 * time.Millisecond

// retried runs a read (GetSignInResource, GetToken without a code: nothing changes on the
// service) and runs it once more, after transientRetryDelay, when it failed transiently: a
// one-off fault of the service then costs the user a quarter of a second instead of their
// message. Transient is the rule of the retry strategy the Bot Framework's .NET clients inherit
// from Microsoft.Rest.ClientRuntime (TransientFaultHandling/HttpStatusCodeErrorDetectionStrategy:
// HTTP 408, or 500 and above except 501 and 505), plus a request that never got an answer.
func (t *TokenService) retried(ctx context.Context, read func() error) error {
	err := read()
	if err == nil || !transient(err) {
		return err
	}
	select {
	case <-ctx.Done():
		return err
	case <-time.After(transientRetryDelay):
	}
	return read()
}

// transient reports whether a token-service failure is worth one retry.
func transient(err error) bool {
	var tse *TokenServiceError
	if errors.As(err, &tse) {
		return tse.Status == http.StatusRequestTimeout ||
			tse.Status >= 500 && tse.Status != http.StatusNotImplemented && tse.Status != http.StatusHTTPVersionNotSupported
	}
	if errors.Is(err, ErrNoUserToken) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func (t *TokenService) do(ctx context.Context, op, method, pathQuery string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(t.BaseURL, "/")+pathQuery, rd)
	if err != nil {
		return fmt.Errorf("token service %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := t.Tokens.Token(ctx)
	if err != nil {
		return fmt.Errorf("token service %s: bot token: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	client := t.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error names the whole URL, whose query may hold a sign-in code.
		return fmt.Errorf("token service %s: %w", op, withoutURL(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusNotFound && op != "GetSignInResource" {
		return fmt.Errorf("token service %s: %w", op, ErrNoUserToken)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &TokenServiceError{Op: op, Status: resp.StatusCode}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		return e
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("token service %s: malformed answer: %w", op, err)
		}
	}
	return nil
}

// withoutURL drops the request URL from a transport error, keeping its cause.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
