// Package aisearch is a stand-in for the Azure AI Search data plane (one index), as a real
// HTTPS server, enforcing document-level access control the way Learn documents it. Every
// rule here has a row in docs/fidelity.md ("Azure AI Search").
//
// Sources (MicrosoftDocs/azure-ai-docs, articles/search/):
//   - search-query-access-control-rbac-enforcement.md ("Query-time ACL and RBAC enforcement"):
//     document visibility needs both the calling application's role (Authorization header)
//     and the user identity carried by x-ms-query-source-authorization; userIds match the
//     token's oid, groupIds match the user's group memberships (which the service fetches
//     from Microsoft Graph, not from the token); a document is visible when any permission
//     field matches; without the user token only documents public to everyone are returned
//     (since November 2025, in every API version that supports ACLs); the example query is
//     POST {endpoint}/indexes/{index}/docs/search?api-version=2025-11-01-preview, and the
//     elevated-read example POST {endpoint}/indexes('{index}')/docs/search.post.search; the
//     x-ms-enable-elevated-read header bypasses the filters and needs a custom role with
//     Microsoft.Search/searchServices/indexes/contentSecurity/elevatedOperations/read.
//   - search-index-access-control-lists-and-rbac-push-api.md: the index schema
//     (permissionFilterOption "enabled", fields with "permissionFilter": "userIds" /
//     "groupIds", at most one of each, filterable); the special values "all" (anyone) and
//     "none" / [] (nobody by this field).
//   - search-security-rbac.md, search-howto-aad.md: keyless callers present an Entra token for
//     https://search.azure.com and need a data-plane role (Search Index Data Reader to query).
//   - Azure/azure-rest-api-specs specification/search/data-plane/Azure.Search/preview/
//     2025-11-01-preview/examples/SearchIndexSearchDocumentsPost.json: the request body and
//     the response ({"value":[{"@search.score":…, fields…}], "@odata.count"}).
//   - Azure-Samples/azure-search-python-samples Quickstart-Document-Permissions-Push-API: the
//     header carries the user's raw access token for https://search.azure.com/.default; Learn's
//     elevated-read example writes "Bearer {TOKEN}", so both forms are accepted.
//
// Unverified (no public source found, chosen strictly): the status and body of a refused user
// token (401, "Audience claim is invalid in the JWT token." is the message reported for a wrong
// audience in Azure/azure-sdk-for-python#42540), the refusal of API versions without ACL
// support, and the 400 for unknown request properties.
package aisearch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// Audience is the resource of Azure AI Search tokens, for the caller and the user alike.
const Audience = "https://search.azure.com"

// UserScope is the delegated permission of Azure AI Search's first-party application
// (880da380-985e-4198-81b9-e05b1cc53158) that an on-behalf-of request asks for.
const UserScope = Audience + "/user_impersonation"

// ACLAPIVersions are the api-versions with query-time ACL enforcement (the preview versions
// Learn names: 2025-05-01-preview, 2025-08-01-preview, 2025-11-01-preview, 2026-05-01-preview).
var ACLAPIVersions = []string{"2025-05-01-preview", "2025-08-01-preview", "2025-11-01-preview", "2026-05-01-preview"}

// Document is one indexed document: its content fields and its permission fields.
type Document struct {
	ID, Title, URL, Content string
	// UserIDs is the userIds permission field (object ids, "all" or "none").
	UserIDs []string
	// GroupIDs is the groupIds permission field (group object ids, "all" or "none").
	GroupIDs []string
}

// Query is what the stand-in saw of one search request, for tests.
type Query struct {
	// Caller is the oid of the Authorization token (the bot's managed identity).
	Caller string
	// User is the oid of the x-ms-query-source-authorization token ("" without one).
	User string
	// Search is the search text.
	Search string
	// Returned are the ids of the documents returned.
	Returned []string
}

// Server is one search service with one index.
type Server struct {
	// URL is the service endpoint (AZURE_SEARCH_ENDPOINT).
	URL string
	// Index is the index name (AZURE_SEARCH_INDEX).
	Index string

	srv *httptest.Server

	mu      sync.Mutex
	entra   *entra.Server
	docs    []Document
	readers map[string]bool
	queries []Query
	fail    int
}

// New starts a search service whose index is named index. It answers 503 until Trust names
// its tenant.
func New(index string) *Server {
	s := &Server{Index: index, readers: map[string]bool{}}
	s.srv = testenv.SharedCA().NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Trust makes the service belong to the tenant of the Entra stand-in e: it accepts tokens e
// issues and reads users' group memberships from e's directory (the service asks Microsoft
// Graph; the stand-in's directory is what Graph would answer).
func (s *Server) Trust(e *entra.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entra = e
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Env returns the handler settings that point at this service.
func (s *Server) Env() map[string]string {
	return map[string]string{"AZURE_SEARCH_ENDPOINT": s.URL, "AZURE_SEARCH_INDEX": s.Index}
}

// AddDocument indexes d (the push API's upload action).
func (s *Server) AddDocument(d Document) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = append(s.docs, d)
}

// GrantReader assigns the Search Index Data Reader role to a principal (object id).
func (s *Server) GrantReader(principalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readers[principalID] = true
}

// FailNext makes the next n searches fail with 503, as when ACL evaluation cannot reach
// Microsoft Graph (Learn: a 5xx, never a partially filtered result).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

// Queries returns the searches served so far.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// searchError writes the service's error body {"error":{"code","message"}}.
func searchError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// indexOf parses /indexes('{name}')/docs/search.post.search and /indexes/{name}/docs/search.
func indexOf(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, "/indexes('"); ok {
		name, tail, ok := strings.Cut(rest, "')")
		return name, ok && tail == "/docs/search.post.search"
	}
	if rest, ok := strings.CutPrefix(p, "/indexes/"); ok {
		name, tail, ok := strings.Cut(rest, "/")
		return name, ok && tail == "docs/search"
	}
	return "", false
}

// request is the part of the search request body the stand-in implements; any other
// property is refused rather than silently ignored.
type request struct {
	Search       *string `json:"search"`
	Top          *int    `json:"top"`
	Skip         *int    `json:"skip"`
	Select       string  `json:"select"`
	Count        bool    `json:"count"`
	SearchFields string  `json:"searchFields"`
	SearchMode   string  `json:"searchMode"`
	QueryType    string  `json:"queryType"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tenant := s.entra
	s.mu.Unlock()
	if tenant == nil {
		searchError(w, http.StatusServiceUnavailable, "", "The service is not ready.")
		return
	}
	name, ok := indexOf(r.URL.EscapedPath())
	if !ok || r.Method != http.MethodPost {
		searchError(w, http.StatusNotFound, "", "The requested resource does not exist (the stand-in serves the POST search of documents only).")
		return
	}
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		searchError(w, http.StatusBadRequest, "", "The api-version query parameter is required.")
		return
	case !slices.Contains(ACLAPIVersions, v):
		// Unverified: an API version without ACL support knows no x-ms-query-source-authorization.
		searchError(w, http.StatusBadRequest, "", "api-version '"+v+"' does not support permission filters: use a preview version with query-time ACL enforcement.")
		return
	}
	// The caller: keyless, an Entra token for Search with a data-plane role.
	if r.Header.Get("api-key") != "" {
		searchError(w, http.StatusUnauthorized, "", "Key-based authentication is disabled for this service.")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || bearer == "" {
		searchError(w, http.StatusUnauthorized, "", "Authentication failed: no bearer token.")
		return
	}
	caller, err := tenant.Verify(bearer, Audience)
	if err != nil {
		searchError(w, http.StatusUnauthorized, "", "Authentication failed: "+err.Error())
		return
	}
	callerOID, _ := caller["oid"].(string)
	s.mu.Lock()
	reader := s.readers[callerOID]
	s.mu.Unlock()
	if !reader {
		searchError(w, http.StatusForbidden, "", "Authorization failed.")
		return
	}
	if r.Header.Get("x-ms-enable-elevated-read") != "" {
		// Needs the contentSecurity/elevatedOperations/read permission of a custom role, which
		// no principal here holds: a bot must never read past the user's permissions.
		searchError(w, http.StatusForbidden, "", "Authorization failed: elevated read requires the elevatedOperations permission.")
		return
	}
	if name != s.Index {
		searchError(w, http.StatusNotFound, "", fmt.Sprintf("The index '%s' for service 'stand-in' was not found.", name))
		return
	}
	// The end user, from their own token. Absent: public documents only.
	userOID := ""
	if h := r.Header.Get("x-ms-query-source-authorization"); h != "" {
		tok := strings.TrimPrefix(h, "Bearer ")
		claims, err := tenant.Verify(tok, Audience)
		if err != nil {
			msg := "The query source authorization token is invalid: " + err.Error()
			if strings.Contains(err.Error(), "aud") {
				msg = "Audience claim is invalid in the JWT token."
			}
			searchError(w, http.StatusUnauthorized, "", msg)
			return
		}
		scp, _ := claims["scp"].(string)
		userOID, _ = claims["oid"].(string)
		if scp == "" || userOID == "" || claims["tid"] != tenant.Tenant {
			searchError(w, http.StatusUnauthorized, "", "The query source authorization token is not a user token of this tenant.")
			return
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	var q request
	if err := dec.Decode(&q); err != nil {
		searchError(w, http.StatusBadRequest, "", "The request is invalid. Details: "+err.Error())
		return
	}
	if q.QueryType != "" && q.QueryType != "simple" || q.SearchMode != "" && q.SearchMode != "any" && q.SearchMode != "all" {
		searchError(w, http.StatusBadRequest, "", "The request is invalid: the stand-in implements simple queries only.")
		return
	}
	s.mu.Lock()
	failing := s.fail > 0
	if failing {
		s.fail--
	}
	s.mu.Unlock()
	if failing {
		searchError(w, http.StatusServiceUnavailable, "", "Permission evaluation is unavailable; no results are returned.")
		return
	}
	var groups []string
	if u, ok := tenant.User(userOID); ok && userOID != "" {
		groups = u.Groups
	}
	s.answer(w, q, callerOID, userOID, groups)
}

// visible applies the permission fields: any field that matches grants access.
func (s *Server) visible(d Document, userOID string, groups []string) bool {
	match := func(field []string, ids []string) bool {
		for _, v := range field {
			if strings.EqualFold(v, "all") {
				return true
			}
			if v != "none" && slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, v) }) {
				return true
			}
		}
		return false
	}
	var user []string
	if userOID != "" {
		user = []string{userOID}
	}
	return match(d.UserIDs, user) || match(d.GroupIDs, groups)
}

func (s *Server) answer(w http.ResponseWriter, q request, callerOID, userOID string, groups []string) {
	text := ""
	if q.Search != nil {
		text = strings.TrimSpace(*q.Search)
	}
	terms := strings.Fields(strings.ToLower(text))
	if text == "*" {
		terms = nil
	}
	type hit struct {
		d     Document
		score float64
	}
	s.mu.Lock()
	docs := slices.Clone(s.docs)
	s.mu.Unlock()
	var hits []hit
	for _, d := range docs {
		if !s.visible(d, userOID, groups) {
			continue
		}
		body := strings.ToLower(d.Title + " " + d.Content)
		score, matched := 0.0, 0
		for _, t := range terms {
			if n := strings.Count(body, t); n > 0 {
				score += float64(n)
				matched++
			}
		}
		if len(terms) > 0 && (matched == 0 || q.SearchMode == "all" && matched < len(terms)) {
			continue
		}
		if len(terms) == 0 {
			score = 1
		}
		hits = append(hits, hit{d, score})
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].d.ID < hits[j].d.ID
	})
	total := len(hits)
	skip, top := 0, 50 // Learn: top defaults to 50
	if q.Skip != nil && *q.Skip > 0 {
		skip = min(*q.Skip, len(hits))
	}
	if q.Top != nil && *q.Top >= 0 {
		top = *q.Top
	}
	hits = hits[skip:]
	if len(hits) > top {
		hits = hits[:top]
	}
	selected := map[string]bool{}
	for _, f := range strings.Split(q.Select, ",") {
		if f = strings.TrimSpace(f); f != "" {
			selected[f] = true
		}
	}
	value := make([]map[string]any, 0, len(hits))
	var ids []string
	for _, h := range hits {
		all := map[string]any{"id": h.d.ID, "title": h.d.Title, "url": h.d.URL, "content": h.d.Content, "UserIds": h.d.UserIDs, "GroupIds": h.d.GroupIDs}
		doc := map[string]any{"@search.score": h.score}
		for k, v := range all {
			if len(selected) == 0 || selected[k] {
				doc[k] = v
			}
		}
		value = append(value, doc)
		ids = append(ids, h.d.ID)
	}
	s.mu.Lock()
	s.queries = append(s.queries, Query{Caller: callerOID, User: userOID, Search: text, Returned: ids})
	s.mu.Unlock()
	out := map[string]any{"value": value}
	if q.Count {
		out["@odata.count"] = total
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}
