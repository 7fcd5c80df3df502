// Package graphuser is a stand-in for the per-user part of Microsoft Graph v1.0 (GRAPH_URL),
// as a real HTTPS server: the signed-in user's profile, mail and OneDrive files.
//
// Sources (learn.microsoft.com/graph):
//   - api/user-get.md: GET /me, its default properties, $select, least-privileged permission
//     User.Read; /me needs a delegated token ("/me request is only valid with delegated
//     authentication flow.", 400 BadRequest).
//   - api/user-list-messages.md and concepts/query-parameters.md ("Using $search on message
//     collections"): GET /me/messages with $top (page size, default 10), $select, $search="…"
//     (KQL; no ConsistencyLevel header — that is for directory objects), results ordered by
//     date; permissions Mail.ReadBasic, Mail.Read, Mail.ReadWrite; paging via @odata.nextLink.
//   - api/driveitem-list-children.md: GET /me/drive/root/children → value[] of driveItem,
//     $top (page size), $select, $orderby, paging via @odata.nextLink; least privileged
//     permission Files.Read. In OneDrive for Business "the orderby query string only works
//     with name and url" (OneDrive docs, "Optional query parameters"); another property is
//     refused (400 notSupported, as reported for SharePoint drive items on
//     techcommunity.microsoft.com; the exact answer is unverified). Without $orderby the
//     stand-in lists by name, never by date, so a client wanting the newest must sort.
//   - api/driveitem-search.md: GET /me/drive/search(q='{text}') searches the user's drive and
//     the items shared with them; items stored in another drive carry the remoteItem facet
//     (resources/remoteitem.md: id, name, webUrl, size, lastModifiedDateTime, file, folder,
//     parentReference) and, as in the page's example, little else at the top level; $top,
//     $select, paging via @odata.nextLink; least privileged permission Files.Read. q is an
//     OData string literal (single-quoted; a doubled quote stands for one). The stand-in matches every word
//     of q against file names only (Graph also matches metadata and content). Shared items
//     come back only with a *.All permission, as the sharedWithMe page says of shared items
//     (unverified for search). An empty q is refused (unverified).
//   - api/drive-recent.md: GET /me/drive/recent is deprecated; the caution says it "will
//     operate in a degraded state until November, 2026, after which it will stop returning
//     data" (another revision says 2027). The stand-in plays the state after that date: a
//     successful, empty collection (the exact form of "no data" is unverified), so a client
//     still calling it sees its users' files vanish in tests first.
//   - api/profilephoto-get.md: GET /me/photo/$value → 404 ImageNotFound when there is none.
//   - concepts/errors.md: error body {"error": {"code", "message", "innerError"}}; 401
//     InvalidAuthenticationToken, 403 Authorization_RequestDenied / ErrorAccessDenied
//     (Exchange) / accessDenied (OneDrive), 429 and 503 with Retry-After.
//   - concepts/continuous-access-evaluation.md (entra-docs app-resilience-continuous-access-
//     evaluation.md): after a critical event a CAE-capable client (xms_cc contains cp1) gets
//     401 with WWW-Authenticate: Bearer … error="insufficient_claims", claims="<base64 JSON>".
package graphuser

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// UserData is what Graph holds for one user.
type UserData struct {
	DisplayName, Mail, UPN, JobTitle, Department, OfficeLocation string
	Messages                                                     []Message
	// Files are the items at the top of the user's own OneDrive.
	Files []DriveItem
	// Shared are items in other people's drives that were shared with the user; search
	// returns them with the remoteItem facet.
	Shared []DriveItem
}

// Message is a mail message in the user's mailbox.
type Message struct {
	ID, Subject, BodyPreview, WebLink string
	// From is the sender, "Name <address>" or just an address.
	From     string
	Received time.Time
}

// DriveItem is a file in a drive.
type DriveItem struct {
	ID, Name, WebURL string
	LastModified     time.Time
	Size             int64
	// Folder makes the item a folder instead of a file.
	Folder bool
}

// Permissions each endpoint accepts (any one of them), least privileged first.
var (
	profileScopes = []string{"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	mailScopes    = []string{"Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"}
	filesScopes   = []string{"Files.Read", "Files.ReadWrite", "Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All"}
)

// Server is the Graph stand-in.
type Server struct {
	// URL is the base URL (GRAPH_URL); the API is under URL + "/v1.0".
	URL string
	// Now is the clock; nil follows the Entra stand-in's clock (entra.Server.Now).
	Now func() time.Time

	e   *entra.Server
	srv *httptest.Server

	mu      sync.Mutex
	users   map[string]UserData
	calls   map[string]int
	faults  []fault
	revoked map[string]time.Time // oid → sessions revoked at (CAE critical event)
}

type fault struct {
	status     int
	retryAfter string
}

// New starts the stand-in; it accepts delegated tokens e issues for Microsoft Graph.
func New(e *entra.Server) *Server {
	s := &Server{e: e, users: map[string]UserData{}, calls: map[string]int{}, revoked: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/me", s.handle(profileScopes, "Authorization_RequestDenied", s.me))
	mux.HandleFunc("GET /v1.0/me/messages", s.handle(mailScopes, "ErrorAccessDenied", s.messages))
	mux.HandleFunc("GET /v1.0/me/drive/root/children", s.handle(filesScopes, "accessDenied", s.children))
	// drive functions: search(q='…') and the deprecated recent.
	mux.HandleFunc("GET /v1.0/me/drive/{function}", s.handle(filesScopes, "accessDenied", s.driveFunction))
	mux.HandleFunc("GET /v1.0/me/photo/{value}", s.handle(profileScopes, "Authorization_RequestDenied", s.photo))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+strings.TrimPrefix(r.URL.Path, "/")+"'.")
	})
	s.srv = testenv.SharedCA().NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddUser sets the data Graph holds for the user with object id oid.
func (s *Server) AddUser(oid string, d UserData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[oid] = d
}

// Calls is the number of authenticated requests made with the user's tokens.
func (s *Server) Calls(oid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[oid]
}

// FailNext makes the next authenticated request fail with status (429 or 503 typically) and
// the Retry-After header ("" = none). Calls queue up.
func (s *Server) FailNext(status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{status, retryAfter})
}

// RevokeSessions is a CAE critical event for the user (password reset, account disabled, …):
// tokens issued before now are answered with 401 insufficient_claims and a claims challenge.
func (s *Server) RevokeSessions(oid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[oid] = s.now()
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

// caller is the authenticated user of a request.
type caller struct {
	oid    string
	scopes []string
	data   UserData
}

// handle authenticates the request, checks the token carries one of the accepted delegated
// permissions, applies a queued fault and runs h.
func (s *Server) handle(accepted []string, deniedCode string, h func(http.ResponseWriter, *http.Request, caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
			writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
			return
		}
		claims, err := s.e.Verify(tok, entra.GraphResource)
		if err != nil {
			claims, err = s.e.Verify(tok, entra.GraphAppID)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
			writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience, signature or lifetime.")
			return
		}
		scp, _ := claims["scp"].(string)
		oid, _ := claims["oid"].(string)
		if scp == "" || oid == "" {
			writeError(w, http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
			return
		}
		s.mu.Lock()
		s.calls[oid]++
		revokedAt, revoked := s.revoked[oid]
		data, known := s.users[oid]
		var f *fault
		if len(s.faults) > 0 {
			f = &s.faults[0]
			s.faults = s.faults[1:]
		}
		s.mu.Unlock()
		// Only a CAE-capable client (it declared the cp1 capability, so its token carries xms_cc
		// with cp1) is challenged; any other client's token keeps working until it expires.
		if iat, _ := claims["iat"].(float64); revoked && caeCapable(claims) && int64(iat) <= revokedAt.Unix() {
			challenge := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, revokedAt.Unix())
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="%s"`, base64.StdEncoding.EncodeToString([]byte(challenge))))
			writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp")
			return
		}
		if f != nil {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			code := "serviceNotAvailable"
			if f.status == http.StatusTooManyRequests {
				code = "TooManyRequests"
			}
			writeError(w, f.status, code, http.StatusText(f.status))
			return
		}
		scopes := strings.Fields(scp)
		if !slices.ContainsFunc(scopes, func(have string) bool {
			return slices.ContainsFunc(accepted, func(a string) bool { return strings.EqualFold(a, have) })
		}) {
			msg := "Insufficient privileges to complete the operation."
			if deniedCode != "Authorization_RequestDenied" {
				msg = "Access is denied. Check credentials and try again."
			}
			writeError(w, http.StatusForbidden, deniedCode, msg)
			return
		}
		if !known {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", oid))
			return
		}
		h(w, r, caller{oid: oid, scopes: scopes, data: data})
	}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, c caller) {
	d := c.data
	all := map[string]any{
		"id": c.oid, "displayName": d.DisplayName, "mail": nullable(d.Mail), "userPrincipalName": d.UPN,
		"jobTitle": nullable(d.JobTitle), "officeLocation": nullable(d.OfficeLocation), "department": nullable(d.Department),
		"givenName": nullable(firstWord(d.DisplayName)), "surname": nullable(lastWord(d.DisplayName)),
		"businessPhones": []string{}, "mobilePhone": nil, "preferredLanguage": nil,
	}
	// department is not among the default properties; it comes only with $select.
	defaults := []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
	fields, ok := selectFields(w, r, all, defaults)
	if !ok {
		return
	}
	out := pick(all, fields)
	out["@odata.context"] = s.URL + "/v1.0/$metadata#users/$entity"
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	top := 10
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "BadRequest", "Invalid value '"+v+"' for $top query option.")
			return
		}
		top = n
	}
	skip := 0
	if v := q.Get("$skip"); v != "" {
		if q.Get("$search") != "" {
			writeError(w, http.StatusBadRequest, "BadRequest", "$skip is not supported with $search; use the @odata.nextLink.")
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "BadRequest", "Invalid value '"+v+"' for $skip query option.")
			return
		}
		skip = n
	}
	if v := q.Get("$skiptoken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "BadRequest", "Invalid $skiptoken.")
			return
		}
		skip = n
	}
	if q.Get("$search") != "" && q.Get("$orderby") != "" {
		writeError(w, http.StatusBadRequest, "BadRequest", "The query parameter '$orderBy' is not supported with '$search'.")
		return
	}
	terms, ok := searchTerms(w, q.Get("$search"))
	if !ok {
		return
	}
	msgs := slices.Clone(c.data.Messages)
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].Received.After(msgs[j].Received) })
	var hits []Message
	for _, m := range msgs {
		if matches(m, terms) {
			hits = append(hits, m)
		}
	}
	defaults := []string{"id", "receivedDateTime", "subject", "bodyPreview", "from", "webLink", "isRead"}
	var items []map[string]any
	var fields []string
	end := min(skip+top, len(hits))
	for i := min(skip, len(hits)); i < end; i++ {
		m := hits[i]
		name, addr := parseFrom(m.From)
		all := map[string]any{
			"id": m.ID, "receivedDateTime": m.Received.UTC().Format(time.RFC3339), "subject": m.Subject,
			"bodyPreview": m.BodyPreview, "webLink": m.WebLink, "isRead": false,
			"from": map[string]any{"emailAddress": map[string]any{"name": name, "address": addr}},
		}
		if fields == nil {
			if fields, ok = selectFields(w, r, all, defaults); !ok {
				return
			}
		}
		out := pick(all, append(fields, "id")) // id always comes back
		out["@odata.etag"] = `W/"` + m.ID + `"`
		items = append(items, out)
	}
	if fields == nil { // no items: still refuse a bad $select
		if _, ok := selectFields(w, r, map[string]any{"id": 0, "receivedDateTime": 0, "subject": 0, "bodyPreview": 0, "from": 0, "webLink": 0, "isRead": 0}, defaults); !ok {
			return
		}
	}
	if items == nil {
		items = []map[string]any{}
	}
	resp := map[string]any{"@odata.context": s.URL + "/v1.0/$metadata#users('" + c.oid + "')/messages", "value": items}
	if end < len(hits) {
		// The messages nextLink carries $skip (api/user-list-messages.md, "Response").
		next := r.URL.Query()
		next.Del("$skiptoken")
		next.Set("$skip", strconv.Itoa(end))
		resp["@odata.nextLink"] = s.URL + "/v1.0/me/messages?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, resp)
}

// sharedScopes are the permissions with which search also returns items shared with the user.
var sharedScopes = []string{"Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All"}

// driveItemJSON is the driveItem the stand-in returns for an item in the user's own drive.
func driveItemJSON(f DriveItem, driveID string) map[string]any {
	m := map[string]any{
		"id": f.ID, "name": f.Name, "webUrl": f.WebURL, "size": f.Size,
		"lastModifiedDateTime": f.LastModified.UTC().Format(time.RFC3339),
		"parentReference":      map[string]any{"driveId": driveID, "id": driveID + "!root"},
	}
	if f.Folder {
		m["folder"] = map[string]any{"childCount": 0}
	} else {
		m["file"] = map[string]any{}
	}
	return m
}

// remoteItemJSON is how search returns an item stored in another drive: the remoteItem facet
// holds its properties.
func remoteItemJSON(f DriveItem) map[string]any {
	remote := driveItemJSON(f, "b!shared-"+f.ID)
	return map[string]any{"id": "local-" + f.ID, "name": f.Name, "remoteItem": remote, "searchResult": map[string]any{}}
}

func (s *Server) children(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	if ob := strings.TrimSpace(q.Get("$orderby")); ob != "" {
		field, _, _ := strings.Cut(ob, " ")
		if field != "name" && field != "url" {
			writeError(w, http.StatusBadRequest, "notSupported", "Operation not supported")
			return
		}
	}
	files := slices.Clone(c.data.Files)
	desc := strings.HasSuffix(strings.TrimSpace(q.Get("$orderby")), " desc")
	sort.SliceStable(files, func(i, j int) bool {
		if desc {
			return strings.ToLower(files[i].Name) > strings.ToLower(files[j].Name)
		}
		return strings.ToLower(files[i].Name) < strings.ToLower(files[j].Name)
	})
	items := make([]map[string]any, 0, len(files))
	for _, f := range files {
		items = append(items, driveItemJSON(f, "b!"+c.oid))
	}
	s.writePage(w, r, "/v1.0/me/drive/root/children", items, 200)
}

func (s *Server) driveFunction(w http.ResponseWriter, r *http.Request, c caller) {
	fn := r.PathValue("function")
	switch {
	case fn == "recent":
		writeJSON(w, http.StatusOK, map[string]any{"@odata.context": s.URL + "/v1.0/$metadata#Collection(driveItem)", "value": []any{}})
	case strings.HasPrefix(fn, "search(") && strings.HasSuffix(fn, ")"):
		s.search(w, r, c, strings.TrimSuffix(strings.TrimPrefix(fn, "search("), ")"))
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+fn+"'.")
	}
}

// search implements drive search(q='…'); args is what stands between the parentheses.
func (s *Server) search(w http.ResponseWriter, r *http.Request, c caller, args string) {
	text, ok := odataString(strings.TrimPrefix(args, "q="))
	if !strings.HasPrefix(args, "q=") || !ok {
		writeError(w, http.StatusBadRequest, "BadRequest", "Syntax error: the search function takes q='text'.")
		return
	}
	words := strings.Fields(strings.ToLower(text))
	if len(words) == 0 {
		writeError(w, http.StatusBadRequest, "invalidRequest", "The search query must not be empty.")
		return
	}
	match := func(f DriveItem) bool {
		name := strings.ToLower(f.Name)
		for _, wd := range words {
			if !strings.Contains(name, wd) {
				return false
			}
		}
		return true
	}
	items := []map[string]any{}
	for _, f := range c.data.Files {
		if match(f) {
			m := driveItemJSON(f, "b!"+c.oid)
			m["searchResult"] = map[string]any{}
			items = append(items, m)
		}
	}
	if slices.ContainsFunc(c.scopes, func(have string) bool {
		return slices.ContainsFunc(sharedScopes, func(a string) bool { return strings.EqualFold(a, have) })
	}) {
		for _, f := range c.data.Shared {
			if match(f) {
				items = append(items, remoteItemJSON(f))
			}
		}
	}
	s.writePage(w, r, r.URL.Path, items, 200)
}

// odataString decodes an OData string literal: single-quoted, a doubled quote stands for one.
func odataString(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\'' {
			if i+1 >= len(inner) || inner[i+1] != '\'' {
				return "", false // a lone quote ends the literal early
			}
			i++
		}
		b.WriteByte(inner[i])
	}
	return b.String(), true
}

// writePage answers one page of a driveItem collection: $top (1–999, default def), $skiptoken
// from a previous @odata.nextLink, and $select over driveItem properties (id always comes back).
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, path string, items []map[string]any, def int) {
	q := r.URL.Query()
	top := def
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 999 {
			writeError(w, http.StatusBadRequest, "invalidRequest", "Invalid value '"+v+"' for $top query option.")
			return
		}
		top = n
	}
	skip := 0
	if v := q.Get("$skiptoken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalidRequest", "Invalid $skiptoken.")
			return
		}
		skip = n
	}
	var fields []string
	if sel := q.Get("$select"); sel != "" {
		known := []string{"id", "name", "webUrl", "size", "lastModifiedDateTime", "file", "folder", "parentReference", "remoteItem", "searchResult", "createdDateTime", "eTag"}
		for _, f := range strings.Split(sel, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(known, f) {
				writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.driveItem'.", f))
				return
			}
			fields = append(fields, f)
		}
	}
	end := min(skip+top, len(items))
	page := []map[string]any{}
	for _, it := range items[min(skip, len(items)):end] {
		if fields != nil {
			it = pick(it, append(fields, "id"))
			for k, v := range it {
				if v == nil {
					delete(it, k)
				}
			}
		}
		page = append(page, it)
	}
	resp := map[string]any{"@odata.context": s.URL + "/v1.0/$metadata#Collection(driveItem)", "value": page}
	if end < len(items) {
		next := r.URL.Query()
		next.Set("$skiptoken", strconv.Itoa(end))
		resp["@odata.nextLink"] = s.URL + (&url.URL{Path: path}).EscapedPath() + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) photo(w http.ResponseWriter, r *http.Request, c caller) {
	if r.PathValue("value") != "$value" {
		writeError(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+r.PathValue("value")+"'.")
		return
	}
	writeError(w, http.StatusNotFound, "ImageNotFound", "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.")
}

// selectFields resolves $select against the properties of the entity; an unknown property is
// a 400, as at Graph.
func selectFields(w http.ResponseWriter, r *http.Request, all map[string]any, defaults []string) ([]string, bool) {
	sel := r.URL.Query().Get("$select")
	if sel == "" {
		return defaults, true
	}
	var fields []string
	for _, f := range strings.Split(sel, ",") {
		f = strings.TrimSpace(f)
		if _, ok := all[f]; !ok {
			writeError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.%s'.", f, entityType(all)))
			return nil, false
		}
		fields = append(fields, f)
	}
	return fields, true
}

func entityType(all map[string]any) string {
	if _, ok := all["subject"]; ok {
		return "message"
	}
	return "user"
}

func pick(all map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		out[f] = all[f]
	}
	return out
}

// searchTerms parses $search: a double-quoted KQL string; each term (optionally prefixed
// with subject:, from: or body:) must match, case-insensitively.
func searchTerms(w http.ResponseWriter, raw string) ([][2]string, bool) {
	if raw == "" {
		return nil, true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		writeError(w, http.StatusBadRequest, "BadRequest", "Syntax error: the $search value must be enclosed in double quotes.")
		return nil, false
	}
	var terms [][2]string
	for _, t := range strings.Fields(raw[1 : len(raw)-1]) {
		field, text := "", t
		if k, v, ok := strings.Cut(t, ":"); ok && slices.Contains([]string{"subject", "from", "body"}, strings.ToLower(k)) {
			field, text = strings.ToLower(k), v
		}
		terms = append(terms, [2]string{field, strings.ToLower(text)})
	}
	return terms, true
}

func matches(m Message, terms [][2]string) bool {
	for _, t := range terms {
		subject, from, body := strings.ToLower(m.Subject), strings.ToLower(m.From), strings.ToLower(m.BodyPreview)
		var ok bool
		switch t[0] {
		case "subject":
			ok = strings.Contains(subject, t[1])
		case "from":
			ok = strings.Contains(from, t[1])
		case "body":
			ok = strings.Contains(body, t[1])
		default:
			ok = strings.Contains(subject, t[1]) || strings.Contains(from, t[1]) || strings.Contains(body, t[1])
		}
		if !ok {
			return false
		}
	}
	return true
}

func parseFrom(from string) (name, addr string) {
	if i := strings.Index(from, "<"); i >= 0 && strings.HasSuffix(from, ">") {
		return strings.TrimSpace(from[:i]), from[i+1 : len(from)-1]
	}
	return from, from
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 1 {
		return f[0]
	}
	return ""
}

func lastWord(s string) string {
	if f := strings.Fields(s); len(f) > 1 {
		return f[len(f)-1]
	}
	return ""
}

// writeError writes a Graph error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": uuid.NewString(), "client-request-id": uuid.NewString()},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// caeCapable reports whether a token was issued to a client that declared the cp1 client
// capability (claim xms_cc), the only kind Graph challenges after a critical event
// (entra-docs app-resilience-continuous-access-evaluation.md; docs/fidelity.md).
func caeCapable(claims map[string]any) bool {
	switch v := claims["xms_cc"].(type) {
	case string:
		return v == "cp1"
	case []any:
		for _, c := range v {
			if c == "cp1" {
				return true
			}
		}
	}
	return false
}
