// Package tokenservice is a stand-in for the Azure Bot Service token API
// (https://api.botframework.com, BOTFRAMEWORK_TOKEN_SERVICE_URL) for one bot and one OAuth
// connection whose scope is the bot's own API (api://botid-{appId}/access_as_user), as a real
// HTTPS server.
//
// Sources:
//   - bot-docs rest-api/bot-framework-rest-connector-authentication.md: every call carries the
//     bot's own token (issued by the bot's tenant for https://api.botframework.com, appid = bot).
//   - The Token API swagger (botbuilder-js libraries/botframework-connector/src/tokenApi,
//     botframework-connector Python token_api/operations/_user_token_operations.py):
//     GET api/botsignin/GetSignInResource?state → SignInUrlResponse
//     {signInLink, tokenExchangeResource {id, uri, providerId}, tokenPostResource {sasUrl}};
//     GET api/usertoken/GetToken?userId&connectionName&channelId&code → 200 TokenResponse,
//     404 when there is none; POST api/usertoken/exchange body TokenExchangeRequest {uri, token}
//     → 200 TokenResponse, 400 ErrorResponse {error {code, message}}, 404;
//     DELETE api/usertoken/SignOut?userId&connectionName&channelId → 200;
//     GET api/usertoken/GetTokenStatus?userId&channelId&include → [TokenStatus
//     {channelId, connectionName, hasToken, serviceProviderDisplayName}].
//     TokenResponse is {channelId, connectionName, token, expiration}.
//   - botbuilder-js botFrameworkAdapter.ts getSignInResource / botbuilder-python
//     bot_framework_adapter.py TokenExchangeState: the state is base64(JSON {connectionName,
//     conversation, relatesTo, botUrl?, msAppId}).
//   - Agents-for-python PR #380 and Agents-for-net Connector/RestClients/UserTokenRestClient.cs
//     (ExchangeAsync): when the user has not consented, exchange answers 400 with the
//     ErrorResponse {"error":{"code":"ServiceError","message":"Consent Required"}} (the SDK
//     reads every 400 as consent required and answers Teams 412); 404 means no token; 500 is
//     "normal when OAuth Connection config is wrong". GetToken's 404 has no body ("there isn't a
//     body provided in this case", the same file's GetTokenAsync).
//   - The token service holds the connection's credential (for "AAD v2 with Federated
//     Credentials", the app's federated credential #2) and signs the user in with the
//     connection's scopes; exchange is on-behalf-of with the SSO token to those scopes. Both go
//     through the Entra stand-in's consent rules (entra.Server.SignIn, OnBehalfOfFor,
//     RefreshFor), so a sign-in consents to exactly what the connection's scopes ask for.
//     The scopes default to api://botid-{appId}/.default: one resource per token request
//     (AADSTS28000), and a combined consent for every permission the app registration lists
//     (entra-docs scopes-oidc.md "The .default scope"; v2-oauth2-on-behalf-of-flow.md
//     "Gaining consent for the middle-tier application"). That OBO to the app's own API is
//     how the service exchanges is unverified (no public source describes its internals).
//   - Users' tokens are partitioned by the channelId each call names (Agents-for-python issue
//     #456 / PR #457: a token exchanged under "msteams:COPILOT" is not found by GetToken under
//     "msteams"), and the sign-in page a link opens completes for the channel in the sign-in
//     state's conversation (Agents-for-net#827: the state's channel decides how the page
//     ends). So a client that sends a composite channel id anywhere loses the user's sign-in.
//   - msteams-docs bot-sso-code.md: the connection's token exchange URL is api://botid-{appId};
//     an SSO token for another API cannot be exchanged (Microsoft-Teams-Samples#1953). The
//     bot's API appears in the token as that URI (v1.0 tokens) or as its client id (v2.0
//     tokens: entra-docs access-tokens.md, "aud"); both are this bot's.
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package tokenservice

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// BotAudience is the audience of the bot's own token for Bot Framework services.
const BotAudience = "https://api.botframework.com"

// ProviderDisplayName is the service provider shown by GetTokenStatus for the connection.
const ProviderDisplayName = "Azure Active Directory v2"

// Server is the token service stand-in.
type Server struct {
	// URL is the base URL: BOTFRAMEWORK_TOKEN_SERVICE_URL.
	URL string
	// TokenLifetime is the lifetime of the user tokens GetToken and exchange return (default 1 h).
	TokenLifetime time.Duration
	// Now is the clock; nil follows the Entra stand-in's clock (entra.Server.Now).
	Now func() time.Time

	// Scopes are the OAuth connection's scopes (default api://botid-{appId}/.default).
	Scopes string

	e          *entra.Server
	botAppID   string
	connection string
	providerID string
	srv        *httptest.Server

	mu       sync.Mutex
	signedIn map[string]string      // partition(channelId, userId) → the user's object id
	magic    map[string]pendingCode // partition(channelId, userId) → the code the page showed
	links    map[string]signInState // signin link id → state it was made for
	broken   bool                   // the connection is misconfigured: exchange answers 500
	counts   map[string]int
}

type pendingCode struct{ code, oid string }

// TeamsChannel is the channel the test helpers (SignIn, Expire, SignedIn, StartMagicCode) act on.
const TeamsChannel = "msteams"

// partition is where the service keeps a user's token: per channel id, as the call names it.
func partition(channelID, userID string) string { return channelID + "\x00" + userID }

// signInState is the state GetSignInResource receives (TokenExchangeState).
type signInState struct {
	ConnectionName string          `json:"connectionName"`
	Conversation   json.RawMessage `json:"conversation"`
	RelatesTo      json.RawMessage `json:"relatesTo,omitempty"`
	BotURL         string          `json:"botUrl,omitempty"`
	MsAppID        string          `json:"msAppId"`
}

// New starts the stand-in for bot botAppID with one OAuth connection named connectionName,
// trusting bot tokens and SSO tokens issued by e.
func New(e *entra.Server, botAppID, connectionName string) *Server {
	s := &Server{
		e: e, botAppID: botAppID, connection: connectionName, providerID: uuid.NewString(),
		signedIn: map[string]string{}, magic: map[string]pendingCode{}, links: map[string]signInState{},
		counts: map[string]int{}, Scopes: "api://botid-" + botAppID + "/.default",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/botsignin/GetSignInResource", s.auth("GetSignInResource", s.getSignInResource))
	mux.HandleFunc("GET /api/usertoken/GetToken", s.auth("GetToken", s.getToken))
	mux.HandleFunc("POST /api/usertoken/exchange", s.auth("exchange", s.exchange))
	mux.HandleFunc("DELETE /api/usertoken/SignOut", s.auth("SignOut", s.signOut))
	mux.HandleFunc("GET /api/usertoken/GetTokenStatus", s.auth("GetTokenStatus", s.getTokenStatus))
	mux.HandleFunc("GET /api/oauth/signin", s.signInPage)
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// ExchangeURI is the connection's token exchange URL: the audience SSO tokens must carry.
func (s *Server) ExchangeURI() string { return "api://botid-" + s.botAppID }

// SignIn marks the user signed in for the connection, as if they had completed sign-in.
// userOID names a user of the Entra stand-in (entra.Server.AddUser); one it does not know is
// added with only the object id when the first token is minted.
func (s *Server) SignIn(userID, userOID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedIn[partition(TeamsChannel, userID)] = userOID
}

// SignedInOn reports whether the user holds a token under the channel id channelID.
func (s *Server) SignedInOn(channelID, userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.signedIn[partition(channelID, userID)]
	return ok
}

// StartMagicCode begins a magic-code sign-in for the user: GetToken with the returned code
// then succeeds once (and signs the user in).
func (s *Server) StartMagicCode(userID, userOID string) string {
	return s.startMagicCode(TeamsChannel, userID, userOID)
}

func (s *Server) startMagicCode(channelID, userID, userOID string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	code := fmt.Sprintf("%06d", n.Int64())
	logcheck.Issue("magic code", code)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.magic[partition(channelID, userID)] = pendingCode{code: code, oid: userOID}
	return code
}

// Expire ends the user's sign-in (as when the connection's refresh token expires or is
// revoked): GetToken then answers 404.
func (s *Server) Expire(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.signedIn, partition(TeamsChannel, userID))
}

// SignedIn reports whether the user is signed in for the connection.
func (s *Server) SignedIn(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.signedIn[partition(TeamsChannel, userID)]
	return ok
}

// Misconfigure makes the connection unusable (as a wrong client id, tenant or federated
// credential does): exchange then answers 500.
func (s *Server) Misconfigure(broken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = broken
}

// Count is the number of authenticated requests of an operation: "GetSignInResource",
// "GetToken", "exchange", "SignOut", "GetTokenStatus" (whatever their outcome).
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	if s.e.Now != nil {
		return s.e.Now()
	}
	return time.Now()
}

func (s *Server) lifetime() time.Duration {
	if s.TokenLifetime > 0 {
		return s.TokenLifetime
	}
	return time.Hour
}

// auth refuses requests without the bot's own token (bot-docs "Authenticate requests from your
// bot to the Bot Connector service"), then counts the operation.
func (s *Server) auth(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "Authorization header with a bearer token is required.")
			return
		}
		claims, err := s.e.Verify(tok, BotAudience)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "The bot token is not valid.")
			return
		}
		if claims["appid"] != s.botAppID && claims["azp"] != s.botAppID {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "The token was not issued to this bot.")
			return
		}
		s.mu.Lock()
		s.counts[op]++
		s.mu.Unlock()
		next(w, r)
	}
}

// userQuery reads userId and connectionName and checks the connection exists.
func (s *Server) userQuery(w http.ResponseWriter, r *http.Request) (userID string, ok bool) {
	q := r.URL.Query()
	userID = q.Get("userId")
	if userID == "" || q.Get("connectionName") == "" {
		writeError(w, http.StatusBadRequest, "BadArgument", "userId and connectionName are required.")
		return "", false
	}
	if q.Get("connectionName") != s.connection {
		writeError(w, http.StatusBadRequest, "BadArgument", fmt.Sprintf("No OAuth connection named %q exists for this bot.", q.Get("connectionName")))
		return "", false
	}
	return userID, true
}

func (s *Server) getSignInResource(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("state")
	var st signInState
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	}
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	switch {
	case raw == "" || err != nil:
		writeError(w, http.StatusBadRequest, "BadArgument", "state must be base64-encoded JSON (TokenExchangeState).")
		return
	case st.ConnectionName != s.connection:
		writeError(w, http.StatusBadRequest, "BadArgument", fmt.Sprintf("No OAuth connection named %q exists for this bot.", st.ConnectionName))
		return
	case st.MsAppID != s.botAppID:
		writeError(w, http.StatusBadRequest, "BadArgument", "state.msAppId is not the calling bot.")
		return
	case len(st.Conversation) == 0 || string(st.Conversation) == "null":
		writeError(w, http.StatusBadRequest, "BadArgument", "state.conversation is required.")
		return
	}
	link := uuid.NewString()
	logcheck.Issue("sign-in link", link)
	s.mu.Lock()
	s.links[link] = st
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"signInLink": s.URL + "/api/oauth/signin?signin=" + link,
		"tokenExchangeResource": map[string]any{
			"id": uuid.NewString(), "uri": s.ExchangeURI(), "providerId": s.providerID,
		},
		"tokenPostResource": map[string]any{"sasUrl": s.URL + "/api/usertoken/post?sas=" + uuid.NewString()},
	})
}

// tokenResponse is a TokenResponse for the connection.
func (s *Server) tokenResponse(channelID, tok string, exp time.Time) map[string]any {
	return map[string]any{
		"channelId": channelID, "connectionName": s.connection, "token": tok,
		"expiration": exp.UTC().Format(time.RFC3339),
	}
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.userQuery(w, r)
	if !ok {
		return
	}
	code := r.URL.Query().Get("code")
	key := partition(r.URL.Query().Get("channelId"), userID)
	s.mu.Lock()
	if code != "" {
		// A magic code is single-use and only good for the user and channel it was issued to.
		if p, ok := s.magic[key]; ok && p.code == code {
			s.signedIn[key] = p.oid
			delete(s.magic, key)
		}
	}
	oid, signed := s.signedIn[key]
	s.mu.Unlock()
	if !signed {
		w.WriteHeader(http.StatusNotFound) // no body (UserTokenRestClient.GetTokenAsync)
		return
	}
	// The service redeems the user's refresh token: consent and conditional access count again.
	tok, exp, err := s.e.RefreshFor(s.botAppID, oid, s.Scopes)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, s.tokenResponse(r.URL.Query().Get("channelId"), tok, exp))
}

func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	userID, ok := s.userQuery(w, r)
	if !ok {
		return
	}
	var req struct {
		URI   string `json:"uri"`
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "BadArgument", "The body must be a TokenExchangeRequest {uri, token}.")
		return
	}
	if req.Token == "" {
		writeError(w, http.StatusBadRequest, "BadArgument", "Token exchange needs a token.")
		return
	}
	claims, err := s.e.Verify(req.Token, s.ExchangeURI())
	if err != nil {
		claims, err = s.e.Verify(req.Token, s.botAppID)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "TokenExchangeFailed", "The token could not be exchanged: it is not a valid token of the tenant for "+s.ExchangeURI()+".")
		return
	}
	scp, _ := claims["scp"].(string)
	oid, _ := claims["oid"].(string)
	if !slices.Contains(strings.Fields(scp), entra.SSOScope) || oid == "" {
		writeError(w, http.StatusBadRequest, "TokenExchangeFailed", "The token could not be exchanged: it lacks the access_as_user scope or a user.")
		return
	}
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken {
		writeError(w, http.StatusInternalServerError, "ServiceError", "The OAuth connection could not obtain a token.")
		return
	}
	tok, exp, err := s.e.OnBehalfOfFor(s.botAppID, req.Token, s.Scopes)
	var refused *entra.Refused
	switch {
	case errors.As(err, &refused) && refused.AADSTS == 65001:
		writeError(w, http.StatusBadRequest, "ServiceError", "Consent Required")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "TokenExchangeFailed", "The token could not be exchanged.")
		return
	}
	s.mu.Lock()
	s.signedIn[partition(r.URL.Query().Get("channelId"), userID)] = oid
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.tokenResponse(r.URL.Query().Get("channelId"), tok, exp))
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	userID := q.Get("userId")
	if userID == "" {
		writeError(w, http.StatusBadRequest, "BadArgument", "userId is required.")
		return
	}
	// connectionName is optional: without it the user is signed out of every connection.
	if c := q.Get("connectionName"); c != "" && c != s.connection {
		writeError(w, http.StatusBadRequest, "BadArgument", fmt.Sprintf("No OAuth connection named %q exists for this bot.", c))
		return
	}
	s.mu.Lock()
	if ch := q.Get("channelId"); ch != "" {
		delete(s.signedIn, partition(ch, userID))
		delete(s.magic, partition(ch, userID))
	} else {
		for k := range s.signedIn {
			if strings.HasSuffix(k, "\x00"+userID) {
				delete(s.signedIn, k)
			}
		}
		for k := range s.magic {
			if strings.HasSuffix(k, "\x00"+userID) {
				delete(s.magic, k)
			}
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) getTokenStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	userID := q.Get("userId")
	if userID == "" {
		writeError(w, http.StatusBadRequest, "BadArgument", "userId is required.")
		return
	}
	out := []map[string]any{}
	// include is a comma-separated filter of connection names.
	if inc := q.Get("include"); inc == "" || slices.Contains(strings.Split(inc, ","), s.connection) {
		out = append(out, map[string]any{
			"channelId": q.Get("channelId"), "connectionName": s.connection,
			"hasToken": s.SignedInOn(q.Get("channelId"), userID), "serviceProviderDisplayName": ProviderDisplayName,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// signInPage stands for the page a signInLink opens. The real one sends the user through
// Entra sign-in and then shows a magic code (or posts signin/verifyState through Teams). Here
// the signing-in user is named by the test with the oid query parameter, and the page shows
// the magic code that GetToken then accepts for the user of the link's conversation.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	st, ok := s.links[q.Get("signin")]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown or expired sign-in link", http.StatusNotFound)
		return
	}
	var ref struct {
		ChannelID string `json:"channelId"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(st.Conversation, &ref); err != nil || ref.User.ID == "" || q.Get("oid") == "" {
		http.Error(w, "the sign-in link's conversation has no user, or no oid was given", http.StatusBadRequest)
		return
	}
	// The user signs in at Entra with the connection's scopes and accepts its consent prompt.
	if _, _, err := s.e.SignIn(s.botAppID, q.Get("oid"), s.Scopes, ""); err != nil {
		http.Error(w, "sign-in failed: "+err.Error(), http.StatusBadRequest)
		return
	}
	code := s.startMagicCode(ref.ChannelID, ref.User.ID, q.Get("oid"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<html><body><p>Type this code in the chat to finish signing in:</p><code id=\"magic\">%s</code></body></html>", code)
}

// writeError writes a Bot Framework ErrorResponse {error: {code, message}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
