// Package channel is a stand-in for the Bot Framework channel side, as a real HTTPS server:
//
//   - the channel's OpenID metadata and signing keys, each key carrying the channels it is
//     endorsed for (login.botframework.com/v1/.well-known/openidconfiguration and …/keys;
//     bot-docs rest-api/bot-framework-rest-connector-authentication.md), and minting of the
//     channel tokens a real channel would send (iss https://api.botframework.com, aud = the
//     bot's app id, serviceurl claim);
//   - a connector at serviceUrl that records what the bot sends (replies, new messages,
//     updates, deletes) and refuses requests without a valid bot token when one is required
//     (bot-docs "Authenticate requests from your bot to the Bot Connector service": bearer
//     token for https://api.botframework.com from the bot's tenant, appid = the bot). It
//     answers as Teams does: 201 Created with {"id"} for a send or reply that becomes one
//     message, 202 Accepted with no body when Teams would split it, never a bare 200 (see
//     connector below and docs/fidelity.md).
//   - Teams targeted messages (msteams-docs agents-in-teams/targeted-messages.md, public
//     developer preview): a send or reply with ?isTargetedActivity=true is shown only to the
//     activity's recipient, who must be named (else 400 BadArgument, as documented) and must be
//     a member of the group chat or channel (refused with 400 BadArgument here: the code is
//     unverified); targeted messages do not exist in personal chats (refused with 400 here:
//     unverified). The stand-in records who sees each message (SeenBy).
package channel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Issuer is the issuer of Bot Framework channel tokens.
const Issuer = "https://api.botframework.com"

// ConnectorAudience is the audience of the bot's own token for the connector.
const ConnectorAudience = "https://api.botframework.com"

// Key is one of the channel's signing keys.
type Key struct {
	ID           string
	Private      *rsa.PrivateKey
	Endorsements []string
	// Published keys appear in the JWKS; unpublished ones sign forged tokens in tests.
	Published bool
}

// Recorded is one request the bot made to the connector.
type Recorded struct {
	Method         string
	Path           string
	ConversationID string
	ActivityID     string // the replied-to or updated activity, if any
	Authorization  string
	Activity       map[string]any
	At             time.Time
	// Targeted is a targeted message, seen only by Recipient.
	Targeted  bool
	Recipient string
}

// Text is the recorded activity's text.
func (r Recorded) Text() string { s, _ := r.Activity["text"].(string); return s }

// Type is the recorded activity's type.
func (r Recorded) Type() string { s, _ := r.Activity["type"].(string); return s }

// BotTokenVerifier checks the bearer token the bot sends to the connector.
type BotTokenVerifier func(token string) error

// Fault is an answer the connector gives instead of succeeding.
type Fault struct {
	Status     int
	RetryAfter string
	Code       string
}

// Server is the channel stand-in.
type Server struct {
	// URL is the server's base URL.
	URL string
	// MetadataURL is BOTFRAMEWORK_OPENID_METADATA_URL.
	MetadataURL string
	// ServiceURL is the serviceUrl activities carry (the connector's base).
	ServiceURL string
	// ChannelID is the channelId minted activities carry ("msteams").
	ChannelID string
	// Keys are the signing keys; Keys[0] is the default, endorsed for ChannelID.
	Keys []*Key

	srv *httptest.Server

	mu       sync.Mutex
	verify   BotTokenVerifier
	recorded []Recorded
	sent     [][]byte // every POST and PUT body received, never reset
	faults   []Fault
	members  map[string][]string // conversation id → the user ids in it (group chats, channels)
	noTarget bool                // targeted messages are refused (a tenant or client without them)
	removed  map[string]bool     // conversations the bot was removed from (or its app uninstalled)
	notify   chan struct{}
	fetches  map[string]int
	lastID   int64
}

// New starts the stand-in. The default key is endorsed for msteams, webchat and emulator;
// a second published key is endorsed for webchat only.
func New() *Server {
	s := &Server{ChannelID: "msteams", notify: make(chan struct{}, 1), fetches: map[string]int{}}
	s.Keys = []*Key{
		{ID: "ch-" + uuid.NewString()[:8], Private: newKey(), Endorsements: []string{"msteams", "webchat", "emulator"}, Published: true},
		{ID: "ch-webchat-" + uuid.NewString()[:8], Private: newKey(), Endorsements: []string{"webchat"}, Published: true},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", s.metadata)
	mux.HandleFunc("GET /v1/.well-known/keys", s.jwks)
	mux.HandleFunc("/amer/v3/conversations/{conv}/activities", s.connector)
	mux.HandleFunc("/amer/v3/conversations/{conv}/activities/{id}", s.connector)
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	s.MetadataURL = s.URL + "/v1/.well-known/openidconfiguration"
	s.ServiceURL = s.URL + "/amer/"
	return s
}

func newKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// RequireBotToken makes the connector refuse requests whose bearer token verify rejects.
func (s *Server) RequireBotToken(verify BotTokenVerifier) {
	s.mu.Lock()
	s.verify = verify
	s.mu.Unlock()
}

// AddUnpublishedKey returns a key the JWKS does not list (tokens signed with it must fail).
func (s *Server) AddUnpublishedKey() *Key {
	k := &Key{ID: "ch-unknown-" + uuid.NewString()[:8], Private: newKey(), Endorsements: []string{"msteams"}}
	s.mu.Lock()
	s.Keys = append(s.Keys, k)
	s.mu.Unlock()
	return k
}

// Rotate does what the channel does when it rotates its signing keys: a new key, endorsed as
// the default was, is published and signs from now on (it becomes Keys[0]), and the previous
// default is withdrawn from the JWKS. A validator must accept the new key as soon as it is
// published (auth0/node-jwks-rsa README, "Rate Limiting": an unknown kid may mean the keys
// were rotated; see also docs/fidelity.md).
func (s *Server) Rotate() *Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.Keys[0]
	k := &Key{ID: "ch-" + uuid.NewString()[:8], Private: newKey(), Endorsements: append([]string(nil), old.Endorsements...), Published: true}
	old.Published = false
	s.Keys = append([]*Key{k}, s.Keys...)
	return k
}

// Publish lists a key (for example one from AddUnpublishedKey) in the JWKS from now on.
func (s *Server) Publish(k *Key) {
	s.mu.Lock()
	k.Published = true
	s.mu.Unlock()
}

// KeyFetches is how many times the JWKS was fetched.
func (s *Server) KeyFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches["jwks"]
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                Issuer,
		"authorization_endpoint":                "https://invalid.botframework.com",
		"jwks_uri":                              s.URL + "/v1/.well-known/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.fetches["jwks"]++
	var keys []*Key
	for _, k := range s.Keys {
		if k.Published {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	out := []map[string]any{}
	for _, k := range keys {
		raw, err := jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.ID, Use: "sig"}.MarshalJSON()
		if err != nil {
			panic(err)
		}
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m["endorsements"] = k.Endorsements
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// TokenOptions shape a minted channel token; zero values give a valid token.
type TokenOptions struct {
	Audience   string // required: the bot's app id
	Issuer     string // default Issuer
	ServiceURL string // default s.ServiceURL
	Expiry     time.Time
	NotBefore  time.Time
	Key        *Key // default Keys[0]
	// Claims are added or override the defaults (nil values delete a claim).
	Claims map[string]any
}

// Mint issues a channel token as the Bot Framework channel would send it to the bot.
func (s *Server) Mint(o TokenOptions) string {
	now := time.Now()
	if o.Issuer == "" {
		o.Issuer = Issuer
	}
	if o.ServiceURL == "" {
		o.ServiceURL = s.ServiceURL
	}
	if o.Expiry.IsZero() {
		o.Expiry = now.Add(time.Hour)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Minute)
	}
	if o.Key == nil {
		s.mu.Lock()
		o.Key = s.Keys[0]
		s.mu.Unlock()
	}
	claims := map[string]any{
		"iss": o.Issuer, "aud": o.Audience, "serviceurl": o.ServiceURL,
		"nbf": o.NotBefore.Unix(), "exp": o.Expiry.Unix(), "iat": o.NotBefore.Unix(),
	}
	for k, v := range o.Claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: o.Key.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", o.Key.ID))
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	logcheck.Issue("channel token", tok)
	return tok
}

// Activity returns a well-formed inbound activity from this channel.
func (s *Server) Activity(typ, text string) map[string]any {
	return map[string]any{
		"type": typ, "id": uuid.NewString(), "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"serviceUrl": s.ServiceURL, "channelId": s.ChannelID,
		"from":         map[string]any{"id": "29:user-1", "name": "Ada", "aadObjectId": "aaaaaaaa-0000-0000-0000-000000000001"},
		"recipient":    map[string]any{"id": "28:bot", "name": "onbehalf"},
		"conversation": map[string]any{"id": "a:conv-" + uuid.NewString()[:8], "conversationType": "personal", "tenantId": "tttttttt-0000-0000-0000-000000000000"},
		"text":         text, "locale": "en-US",
	}
}

// FailNext makes the connector answer the next requests with the given faults, in order.
func (s *Server) FailNext(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// SetMembers names the users of a group chat or channel, who all see its ordinary messages.
func (s *Server) SetMembers(conversationID string, userIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members == nil {
		s.members = map[string][]string{}
	}
	s.members[conversationID] = append([]string(nil), userIDs...)
}

// RemoveBot takes the bot out of a conversation (the user removed or uninstalled it): every
// send, reply or update there is refused with 403 BotNotInConversationRoster, "The bot isn't
// part of the conversation roster" (msteams-docs bots/build-conversational-capability.md,
// status codes of the bot conversational APIs). AddBot puts it back.
func (s *Server) RemoveBot(conversationID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed == nil {
		s.removed = map[string]bool{}
	}
	s.removed[conversationID] = true
}

// AddBot undoes RemoveBot: the bot is in the conversation again.
func (s *Server) AddBot(conversationID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.removed, conversationID)
}

// RefuseTargeted makes targeted sends fail with 400 BadArgument, as where targeted messages are
// not available (the status is unverified).
func (s *Server) RefuseTargeted(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noTarget = refuse
}

// SeenBy returns what user userID sees of the bot's messages in a conversation: the ordinary
// ones when the user is a member (anyone, when no members were named) and the targeted ones
// addressed to the user.
func (s *Server) SeenBy(conversationID, userID string) []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, named := s.members[conversationID]
	member := !named
	for _, m := range members {
		if m == userID {
			member = true
		}
	}
	var out []Recorded
	for _, r := range s.recorded {
		if r.ConversationID != conversationID || r.Method == http.MethodDelete {
			continue
		}
		if r.Targeted && r.Recipient == userID || !r.Targeted && member {
			out = append(out, r)
		}
	}
	return out
}

// Recorded returns everything the bot sent so far.
func (s *Server) Recorded() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.recorded...)
}

// Sent returns every activity the bot sent (POST or PUT bodies), including those refused by an
// injected fault or by authentication and those recorded before a Reset, for the leak check
// (logcheck.WatchReplies). A body that is not a JSON object is returned as {"body": text}.
func (s *Server) Sent() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, 0, len(s.sent))
	for _, b := range s.sent {
		var a map[string]any
		if json.Unmarshal(b, &a) != nil {
			a = map[string]any{"body": string(b)}
		}
		out = append(out, a)
	}
	return out
}

// Reset forgets what was recorded.
func (s *Server) Reset() {
	s.mu.Lock()
	s.recorded = nil
	s.mu.Unlock()
}

// WaitFor waits until pred holds for the recorded requests, or ctx ends.
func (s *Server) WaitFor(ctx context.Context, pred func([]Recorded) bool) ([]Recorded, error) {
	for {
		rec := s.Recorded()
		if pred(rec) {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("waiting for the bot: %w (recorded %d requests)", ctx.Err(), len(rec))
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) connector(w http.ResponseWriter, r *http.Request) {
	// Every body the bot sends is kept for Sent, whether it is then refused or recorded.
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		s.sent = append(s.sent, body)
		s.mu.Unlock()
	}
	s.mu.Lock()
	verify := s.verify
	gone := s.removed[r.PathValue("conv")]
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		fault = &f
	}
	s.mu.Unlock()

	authz := r.Header.Get("Authorization")
	if verify != nil {
		tok, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Authorization has been denied for this request."})
			return
		}
		if err := verify(tok); err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Authorization has been denied for this request.", "detail": err.Error()})
			return
		}
	}
	if gone {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{"code": "BotNotInConversationRoster", "message": "The bot is not part of the conversation roster."}})
		return
	}
	if fault != nil {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		writeJSON(w, fault.Status, map[string]any{"error": map[string]any{"code": fault.Code, "message": "injected fault"}})
		return
	}
	rec := Recorded{Method: r.Method, Path: r.URL.Path, ConversationID: r.PathValue("conv"), ActivityID: r.PathValue("id"), Authorization: authz, At: time.Now()}
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": map[string]any{"code": "BadArgument", "message": "expected JSON"}})
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(body, &rec.Activity); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadArgument", "message": "malformed activity"}})
			return
		}
	case http.MethodDelete:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodPost && r.URL.Query().Get("isTargetedActivity") == "true" {
		if msg := s.refuseTargeted(rec); msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "BadArgument", "message": msg}})
			return
		}
		rec.Targeted = true
		rec.Recipient = recipientOf(rec.Activity)
	}
	s.mu.Lock()
	s.recorded = append(s.recorded, rec)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	switch {
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusOK) // swagger: 200, "there is no response"
	case r.Method == http.MethodPut:
		// Update names the activity it updated (swagger: 200/201/202 with a ResourceResponse;
		// which of them Teams uses is unverified).
		writeJSON(w, http.StatusOK, map[string]any{"id": rec.ActivityID})
	case splits(rec.Activity):
		// Teams posts text and cards, or several cards, as separate messages and then names no
		// single id: 202 Accepted with an empty body (OfficeDev/BotBuilder-MicrosoftTeams#125,
		// microsoft/botframework-sdk#6155, MicrosoftDocs/bot-docs#1726).
		w.WriteHeader(http.StatusAccepted)
	default:
		// A send or reply that becomes one message: 201 Created with the new message's id
		// (microsoft/botframework-sdk#6155 "the expected 201 response containing the activity
		// ID"; specs/botframework-protocol/botframework-channel.json).
		writeJSON(w, http.StatusCreated, map[string]any{"id": s.newMessageID()})
	}
}

// recipientOf is the id of an activity's recipient.
func recipientOf(act map[string]any) string {
	r, _ := act["recipient"].(map[string]any)
	id, _ := r["id"].(string)
	return id
}

// refuseTargeted says why a targeted send is refused, or "".
func (s *Server) refuseTargeted(rec Recorded) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	recipient := recipientOf(rec.Activity)
	conv, _ := rec.Activity["conversation"].(map[string]any)
	switch ct, _ := conv["conversationType"].(string); {
	case s.noTarget:
		return "Targeted messages are not available in this conversation."
	case recipient == "":
		return "Recipient is missing for a targeted activity."
	case ct == "" || ct == "personal":
		return "Targeted messages are not available in one-on-one chats."
	}
	if members, ok := s.members[rec.ConversationID]; ok && !slices.Contains(members, recipient) {
		return "The recipient is not a member of the conversation."
	}
	return ""
}

// splits reports whether Teams would post the activity as more than one message.
func splits(act map[string]any) bool {
	atts, _ := act["attachments"].([]any)
	text, _ := act["text"].(string)
	return len(atts) > 1 || len(atts) == 1 && text != ""
}

// newMessageID returns a unique id shaped like a Teams message id (epoch milliseconds, as in
// MicrosoftDocs/bot-docs#2263).
func (s *Server) newMessageID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID = max(time.Now().UnixMilli(), s.lastID+1)
	return strconv.FormatInt(s.lastID, 10)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
