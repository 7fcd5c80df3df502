// Package sandbox runs the Microsoft side of the local sandbox (make dev) as one process: the
// Entra tenant, the Bot Framework channel, the Bot Service token service and Microsoft Graph
// stand-ins (internal/testenv/stack), with the sandbox users Alice and Bob, plus a channel
// bridge between the Microsoft 365 Agents Playground and the handler.
//
// The Playground plays a Teams client but sends no channel token and no user identity the
// handler could trust, and it does no sign-in: its README lists single sign-on under
// "Limitations", it never sends signin/tokenExchange or signin/verifyState, and its own
// OAuth-card handling calls https://token.botframework.com, which is hard-coded (dist/index.js
// of @microsoft/m365agentsplayground 0.2.28, TOKEN_API_BASE_URL). The bridge therefore does
// what the Bot Framework channel and the Teams client do around it:
//
//   - Inbound: it accepts activities only from the sandbox users' Playground ids, sets the
//     user's Entra object id and the tenant from its own table (never from what the Playground
//     sent), points serviceUrl at itself and signs the activity with the channel stand-in's key,
//     as the Bot Framework channel does (bot-docs rest-api/bot-framework-rest-connector-
//     authentication.md: iss, aud = the bot, serviceurl claim).
//   - Outbound: it accepts the bot's replies only with a valid bot token from the Entra
//     stand-in (appid = the bot) and passes them to the Playground's mock connector.
//   - Sign-in: silent SSO is what the Playground cannot do, so an OAuthCard is shown as Teams
//     shows it when SSO does not happen: a card with a Sign in button (msteams-docs
//     bot-sso-code.md; Agents-for-js azureBotAuthorization.ts). The button opens the bridge's
//     consent page, which stands for the sign-in window: the user accepts as the sandbox user,
//     the token service's sign-in link issues the magic code, and the bridge sends
//     signin/verifyState with it from that user's conversation — what the Teams client does
//     when its sign-in window closes (msteams-docs "Add authentication to your Teams bot":
//     the magic code reaches the bot as signin/verifyState). The handler then takes the
//     real path: GetToken with the code, On-Behalf-Of at Entra, Graph as the user.
//
// The assistant's model is the chat-completions stand-in (internal/testenv/openai) serving the
// deterministic rule-based openai.SandboxModel as the deployment "sandbox-model": it accepts
// only the managed identity's Entra token for Cognitive Services, as an Azure OpenAI resource
// with the "Cognitive Services OpenAI User" role assignment does, and streams its answers.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/config"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/openai"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// Connection is the OAuth connection name of the sandbox bot (BOT_OAUTH_CONNECTION).
const Connection = "sandbox-sso"

// Options configure Start.
type Options struct {
	// Addr is the bridge's listen address; it must be on loopback. Default 127.0.0.1:3980.
	Addr string
	// BotEndpoint is the handler's messaging endpoint.
	BotEndpoint string
	// Now is the clock for the users' data; nil is time.Now.
	Now func() time.Time
}

// Sandbox is the running stand-ins and bridge.
type Sandbox struct {
	Stack *stack.Stack
	SSO   *stack.SSO
	Users []User
	// URL is the bridge's base URL; the Playground's endpoint is URL + "/api/messages".
	URL string

	botEndpoint string
	bot         *http.Client // to the handler (plain HTTP on loopback)
	tls         *http.Client // to the stand-ins
	srv         *http.Server
	ln          net.Listener
	hr          *httptest.Server
	// Model is the assistant's model: the chat-completions stand-in with the sandbox model.
	Model *openai.Server
	// connector serves the bot's replies over HTTPS (the stand-ins' CA): outside local
	// anonymous mode the handler accepts only an https serviceUrl, as in Azure.
	connector *httptest.Server

	mu      sync.Mutex
	convs   map[string]conversation // conversation id → where the Playground listens, and who
	signins map[string]signin       // consent page id → the sign-in it completes
}

type conversation struct {
	serviceURL string
	user       User
	raw        map[string]any // the Playground's conversation object
	bot        map[string]any // the recipient the Playground addressed
}

type signin struct {
	link    string
	conv    string
	expires time.Time
}

// Start starts the stand-ins and the bridge. Close stops them.
func Start(o Options) (*Sandbox, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:3980"
	}
	if host, _, err := net.SplitHostPort(o.Addr); err != nil || !isLoopback(host) {
		return nil, fmt.Errorf("sandbox: listen address %q is not on loopback", o.Addr)
	}
	if _, err := url.Parse(o.BotEndpoint); err != nil || o.BotEndpoint == "" {
		return nil, fmt.Errorf("sandbox: bot endpoint %q is not a URL", o.BotEndpoint)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	st := stack.New()
	sso := st.StartSSO(Connection)
	s := &Sandbox{
		Stack: st, SSO: sso, Users: Users(now()), URL: "http://" + ln.Addr().String(),
		botEndpoint: o.BotEndpoint, bot: &http.Client{Timeout: 30 * time.Second}, tls: st.HTTPClient(), ln: ln,
		convs: map[string]conversation{}, signins: map[string]signin{},
	}
	days := map[string]int{}
	for _, u := range s.Users {
		st.Entra.AddUser(u.Entra)
		sso.Graph.AddUser(u.Entra.ObjectID, u.Graph)
		days[u.Entra.ObjectID] = u.LeaveDays
	}
	s.hr = startHRAPI(st.Entra, days)
	s.Model = startModel(st)
	// The organisation's administrator has consented to the bot calling Contoso HR as its users,
	// as for Graph (stack.New grants that admin consent).
	st.Entra.SetPermissions(stack.BotAppID, HRAudience, "access_as_user")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/messages", s.inbound)
	// The Playground waits for its endpoint with HEAD on every page load.
	mux.HandleFunc("HEAD /api/messages", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/connector/v3/conversations/{conv}/activities", s.outbound)
	mux.HandleFunc("/connector/v3/conversations/{conv}/activities/{id}", s.outbound)
	mux.HandleFunc("GET /signin", s.consentPage)
	mux.HandleFunc("POST /signin", s.consent)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	s.connector = testenv.SharedCA().NewServer(mux)
	return s, nil
}

// Close stops the bridge and the stand-ins.
func (s *Sandbox) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.connector.Close()
	s.hr.Close()
	s.Model.Close()
	s.SSO.Close()
	s.Stack.Close()
}

// Env is the handler's settings for the sandbox: the bot identity, the stand-ins' URLs and
// the managed-identity endpoint, as a deployed Function App has them.
func (s *Sandbox) Env() map[string]string {
	env := s.Stack.Env()
	for k, v := range s.SSO.Env() {
		env[k] = v
	}
	env["ENTRA_APIS"] = hrAPIEnv(s.hr.URL)
	env["AZURE_OPENAI_ENDPOINT"] = s.Model.URL
	env["AZURE_OPENAI_DEPLOYMENT"] = openai.SandboxDeployment
	// The sandbox organisation lets the assistant comment on Jira issues, each comment
	// confirmed by the user on a card first.
	env["CONNECTOR_POLICY"] = `{"atlassian":{"write":true,"confirm":true}}`
	return env
}

// ConnectorURL is the HTTPS base of the connector the bridge offers the bot (the serviceUrl of
// every activity it delivers, without its "/connector/" path).
func (s *Sandbox) ConnectorURL() string { return s.connector.URL }

// CertificatePEM is the certificate of the CA that signed the stand-ins' HTTPS certificates.
func (s *Sandbox) CertificatePEM() []byte { return testenv.SharedCA().PEM() }

// UserByPlaygroundID finds a sandbox user.
func (s *Sandbox) UserByPlaygroundID(id string) (User, bool) {
	for _, u := range s.Users {
		if u.PlaygroundID == id {
			return u, true
		}
	}
	return User{}, false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// playgroundServiceURL accepts only the Playground's own mock connector on loopback, so the
// bridge never forwards the bot's replies anywhere else.
func playgroundServiceURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) || u.Port() == "" || u.User != nil {
		return "", fmt.Errorf("serviceUrl %q is not a Playground on loopback", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

const maxBody = 256 << 10

func (s *Sandbox) inbound(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var act map[string]any
	if err == nil {
		err = json.Unmarshal(body, &act)
	}
	if err != nil {
		http.Error(w, "malformed activity", http.StatusBadRequest)
		return
	}
	from, _ := act["from"].(map[string]any)
	id, _ := from["id"].(string)
	user, ok := s.UserByPlaygroundID(id)
	if !ok {
		http.Error(w, "not a sandbox user: start the Playground with a sandbox user's .m365agentsplayground.yml", http.StatusForbidden)
		return
	}
	conv, _ := act["conversation"].(map[string]any)
	convID, _ := conv["id"].(string)
	svc, err := playgroundServiceURL(str(act["serviceUrl"]))
	if convID == "" || err != nil {
		http.Error(w, "activity without a conversation or a Playground serviceUrl", http.StatusBadRequest)
		return
	}
	recipient, _ := act["recipient"].(map[string]any)
	s.mu.Lock()
	s.convs[convID] = conversation{serviceURL: svc, user: user, raw: conv, bot: recipient}
	s.mu.Unlock()
	status, resp, ctype, err := s.deliver(r.Context(), user, act)
	if err != nil {
		http.Error(w, "the bot is not reachable: "+err.Error(), http.StatusBadGateway)
		return
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

// deliver sends act to the bot as the channel would: the user's identity from the sandbox
// table, serviceUrl = the bridge, signed with the channel's key.
func (s *Sandbox) deliver(ctx context.Context, user User, act map[string]any) (int, []byte, string, error) {
	from, _ := act["from"].(map[string]any)
	if from == nil {
		from = map[string]any{}
	}
	from["id"], from["name"], from["aadObjectId"] = user.PlaygroundID, user.Entra.Name, user.Entra.ObjectID
	act["from"] = from
	if conv, ok := act["conversation"].(map[string]any); ok {
		conv["tenantId"] = stack.TenantID
	}
	cd, _ := act["channelData"].(map[string]any)
	if cd == nil {
		cd = map[string]any{}
	}
	cd["tenant"] = map[string]any{"id": stack.TenantID}
	act["channelData"] = cd
	act["channelId"] = "msteams"
	svc := s.connector.URL + "/connector/"
	act["serviceUrl"] = svc
	body, err := json.Marshal(act)
	if err != nil {
		return 0, nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.botEndpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Stack.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID, ServiceURL: svc}))
	resp, err := s.bot.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, out, resp.Header.Get("Content-Type"), nil
}

// checkBotToken is the connector's rule (bot-docs "Authenticate requests from your bot to the
// Bot Connector service"): a token from the bot's tenant for https://api.botframework.com
// whose appid (v1) or azp (v2) is the bot.
func (s *Sandbox) checkBotToken(authz string) error {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || tok == "" {
		return errors.New("no bearer token")
	}
	claims, err := s.Stack.Entra.Verify(tok, channel.ConnectorAudience)
	if err != nil {
		return err
	}
	if claims["appid"] != stack.BotAppID && claims["azp"] != stack.BotAppID {
		return errors.New("the token is not the bot's")
	}
	return nil
}

func (s *Sandbox) outbound(w http.ResponseWriter, r *http.Request) {
	if err := s.checkBotToken(r.Header.Get("Authorization")); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Authorization has been denied for this request."}`))
		return
	}
	convID := r.PathValue("conv")
	s.mu.Lock()
	conv, ok := s.convs[convID]
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":{"code":"ConversationNotFound","message":"unknown conversation"}}`, http.StatusNotFound)
		return
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var act map[string]any
		if err == nil {
			err = json.Unmarshal(raw, &act)
		}
		if err != nil {
			http.Error(w, `{"error":{"code":"BadArgument","message":"malformed activity"}}`, http.StatusBadRequest)
			return
		}
		s.showSignInCards(act, convID)
		// The Playground addresses activities to the bot id of its own configuration.
		if conv.bot != nil {
			act["from"] = conv.bot
		}
		body, _ = json.Marshal(act)
	}
	target := conv.serviceURL + "/v3/conversations/" + url.PathEscape(convID) + "/activities"
	if id := r.PathValue("id"); id != "" {
		target += "/" + url.PathEscape(id)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.bot.Do(req)
	if err != nil {
		http.Error(w, "the Playground is not reachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// showSignInCards replaces each OAuthCard with what Teams shows when silent SSO does not
// happen: the card's text and a Sign in button, here opening the bridge's consent page.
func (s *Sandbox) showSignInCards(act map[string]any, convID string) {
	atts, _ := act["attachments"].([]any)
	for i, a := range atts {
		att, _ := a.(map[string]any)
		if !strings.EqualFold(str(att["contentType"]), "application/vnd.microsoft.card.oauth") {
			continue
		}
		content, _ := att["content"].(map[string]any)
		link := ""
		buttons, _ := content["buttons"].([]any)
		for _, b := range buttons {
			if bm, _ := b.(map[string]any); strings.EqualFold(str(bm["type"]), "signin") {
				link = str(bm["value"])
			}
		}
		if link == "" {
			continue
		}
		id := randomID()
		s.mu.Lock()
		s.signins[id] = signin{link: link, conv: convID, expires: time.Now().Add(15 * time.Minute)}
		s.mu.Unlock()
		text := str(content["text"])
		if text == "" {
			text = "Please sign in."
		}
		atts[i] = map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"content": map[string]any{
				"type": "AdaptiveCard", "version": "1.5", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"body":    []any{map[string]any{"type": "TextBlock", "text": text, "wrap": true}},
				"actions": []any{map[string]any{"type": "Action.OpenUrl", "title": "Sign in", "url": s.URL + "/signin?id=" + id}},
			},
		}
	}
}

func randomID() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func str(v any) string { s, _ := v.(string); return s }

// pending returns the sign-in behind a consent page id, if it is still valid.
func (s *Sandbox) pending(id string, take bool) (signin, conversation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	si, ok := s.signins[id]
	if !ok || time.Now().After(si.expires) {
		delete(s.signins, id)
		return signin{}, conversation{}, false
	}
	conv, ok := s.convs[si.conv]
	if take {
		delete(s.signins, id)
	}
	return si, conv, ok
}

var pageTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to onbehalf (sandbox)</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.4rem 1rem;margin-right:.5rem}</style>
</head><body>
{{if .Done}}<h1>{{.Done}}</h1><p>{{.Detail}}</p><p>You can close this window and go back to the Playground.</p>
{{else}}<h1>Sign in as {{.Name}}</h1>
<p>Sandbox tenant: you are signing in as <strong>{{.Name}}</strong> ({{.UPN}}), the user of the Playground chat that asked.</p>
<p><strong>onbehalf</strong> asks for: <code>{{.Scope}}</code> — sign you in and act as you towards the services its administrator approved (Microsoft Graph: your profile, mail and recent files).</p>
<form method="post" action="/signin"><input type="hidden" name="id" value="{{.ID}}">
<button name="action" value="accept">Accept</button><button name="action" value="cancel">Cancel</button></form>
{{end}}</body></html>
`))

type pageData struct{ ID, Name, UPN, Scope, Done, Detail string }

func (s *Sandbox) writePage(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

// consentPage shows who signs in and what is asked. Showing it consumes nothing.
func (s *Sandbox) consentPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	_, conv, ok := s.pending(id, false)
	if !ok {
		s.writePage(w, http.StatusNotFound, pageData{Done: "This sign-in link is not valid any more", Detail: "It was used already or has expired. Ask the bot again to get a new card."})
		return
	}
	s.writePage(w, http.StatusOK, pageData{ID: id, Name: conv.user.Entra.Name, UPN: conv.user.Entra.UPN, Scope: s.SSO.TokenService.Scopes})
}

var magicRE = regexp.MustCompile(`<code id="magic">([0-9]{6})</code>`)

// consent completes (or cancels) the sign-in: the token service's sign-in link issues the
// magic code for the user, and the user's "client" sends it to the bot as signin/verifyState.
func (s *Sandbox) consent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	si, conv, ok := s.pending(r.PostForm.Get("id"), true)
	if !ok {
		s.writePage(w, http.StatusNotFound, pageData{Done: "This sign-in link is not valid any more", Detail: "It was used already or has expired. Ask the bot again to get a new card."})
		return
	}
	state := "CancelledByUser"
	if r.PostForm.Get("action") == "accept" {
		code, err := s.magicCode(r.Context(), si.link, conv.user)
		if err != nil {
			s.writePage(w, http.StatusBadGateway, pageData{Done: "Sign-in did not complete", Detail: "The token service did not issue a code. Ask the bot again."})
			return
		}
		state = code
	}
	act := map[string]any{
		"type": "invoke", "name": "signin/verifyState", "id": uuid.NewString(),
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "locale": "en-US",
		"from": map[string]any{}, "recipient": conv.bot, "conversation": cloneMap(conv.raw),
		"value": map[string]any{"state": state},
	}
	status, _, _, err := s.deliver(r.Context(), conv.user, act)
	switch {
	case err != nil:
		s.writePage(w, http.StatusBadGateway, pageData{Done: "Sign-in did not complete", Detail: "The bot is not reachable."})
	case state == "CancelledByUser":
		s.writePage(w, http.StatusOK, pageData{Done: "Sign-in cancelled", Detail: "Nothing was signed in."})
	case status == http.StatusOK:
		s.writePage(w, http.StatusOK, pageData{Done: "Signed in as " + conv.user.Entra.Name, Detail: "The bot is answering your question in the Playground."})
	default:
		s.writePage(w, http.StatusOK, pageData{Done: "Sign-in did not complete", Detail: fmt.Sprintf("The bot answered %d. Ask it again.", status)})
	}
}

// magicCode follows the token service's sign-in link as the user would after signing in at
// Entra, and reads the code it shows.
func (s *Sandbox) magicCode(ctx context.Context, link string, u User) (string, error) {
	lu, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, s.SSO.TokenService.URL+"/") {
		return "", errors.New("the sign-in link is not the token service's")
	}
	q := lu.Query()
	q.Set("oid", u.Entra.ObjectID)
	lu.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lu.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := s.tls.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	m := magicRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("token service sign-in page answered %d without a code", resp.StatusCode)
	}
	return string(m[1]), nil
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// modelAudience is the audience of Entra tokens for Azure OpenAI (scope
// https://cognitiveservices.azure.com/.default).
const modelAudience = "https://cognitiveservices.azure.com"

// SandboxChunkDelay spaces the sandbox model's streamed pieces, so that an answer takes a
// couple of seconds and the Playground shows it streaming.
const SandboxChunkDelay = 300 * time.Millisecond

// startModel serves the sandbox model to the managed identity only: any other token is
// refused as Azure refuses an identity without the data-plane role (403).
func startModel(st *stack.Stack) *openai.Server {
	m := openai.New(openai.SandboxDeployment, "", config.DefaultOpenAIAPIVersion)
	m.Verify = func(tok string) (int, error) {
		claims, err := st.Entra.Verify(tok, modelAudience)
		if err != nil {
			return http.StatusUnauthorized, err
		}
		if claims["oid"] != st.MIPrincipal {
			return http.StatusForbidden, errors.New("the principal has no data-plane role on the sandbox model")
		}
		return 0, nil
	}
	m.Responder = openai.SandboxModel{ChunkDelay: SandboxChunkDelay}.Respond
	return m
}
