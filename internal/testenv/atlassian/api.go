package atlassian

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// jiraTime is Jira's timestamp format, e.g. 2026-11-20T09:30:00.000+0000.
const jiraTime = "2006-01-02T15:04:05.000-0700"

// handleResources implements GET /oauth/token/accessible-resources: the sites the grant
// covers, each with id (the cloudid), url, name, scopes and avatarUrl
// (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo, "Get the cloudid for your site").
func (s *Server) handleResources(w http.ResponseWriter, r *http.Request) {
	u, scopes, ok := s.bearer(w, r)
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, id := range u.Sites {
		for _, site := range s.world.Sites {
			if site.ID == id {
				out = append(out, map[string]any{
					"id": site.ID, "url": site.URL, "name": site.Name,
					"scopes": scopes, "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png",
				})
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMe implements GET /me, the user identity API; it needs the read:me scope
// (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo, "Get the user's account").
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.bearer(w, r, "read:me")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account_id": u.AccountID, "account_type": "atlassian", "account_status": "active",
		"email": u.Email, "name": u.Name, "nickname": strings.Fields(u.Name)[0],
	})
}

// handleMyself implements Data Center's GET /rest/api/2/myself.
func (s *Server) handleMyself(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.bearer(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"key": u.AccountID, "name": strings.Fields(u.Name)[0], "displayName": u.Name, "emailAddress": u.Email, "active": true,
	})
}

// siteCaller authenticates a site API request (bearer token carrying one of anyOf) and resolves
// the site it addresses, answering the error itself when either fails.
func (s *Server) siteCaller(w http.ResponseWriter, r *http.Request, anyOf ...string) (User, Site, bool) {
	u, _, ok := s.bearer(w, r, anyOf...)
	if !ok {
		return User{}, Site{}, false
	}
	site, ok := s.site(w, r, u)
	return u, site, ok
}

// site checks that the cloudid in the path belongs to the grant. The gateway answers 404 for
// a site the token does not cover.
func (s *Server) site(w http.ResponseWriter, r *http.Request, u User) (Site, bool) {
	if s.opts.DataCenter {
		// One instance, one site; links are on the instance itself.
		site := s.world.Sites[0]
		site.URL = s.URL
		return site, true
	}
	id := r.PathValue("cloudid")
	if slices.Contains(u.Sites, id) {
		for _, site := range s.world.Sites {
			if site.ID == id {
				return site, true
			}
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "Not Found"})
	return Site{}, false
}

func (s *Server) canBrowse(u User, site, key string) bool {
	proj, _, _ := strings.Cut(key, "-")
	for _, p := range s.world.Projects {
		if p.Site == site && p.Key == proj {
			return slices.Contains(p.Browse, u.AccountID)
		}
	}
	return false
}

func (s *Server) issueJSON(site Site, is Issue) map[string]any {
	fields := map[string]any{
		"summary": is.Summary,
		"status": map[string]any{"name": is.Status, "statusCategory": map[string]any{
			"key": is.Category, "name": map[string]string{"new": "To Do", "indeterminate": "In Progress", "done": "Done"}[is.Category]}},
		"priority": map[string]any{"name": is.Priority},
		"updated":  is.Updated.Format(jiraTime),
		"assignee": nil,
	}
	if a, ok := s.user(is.Assignee); ok {
		fields["assignee"] = map[string]any{"accountId": a.AccountID, "displayName": a.Name, "active": true}
	}
	return map[string]any{
		"id":   strconv.Itoa(len(is.Key) * 1000), // stable enough for a stand-in
		"key":  is.Key,
		"self": fmt.Sprintf("%s/ex/jira/%s/rest/api/3/issue/%s", s.URL, site.ID, is.Key),
		// Cloud and Data Center issue JSON share these fields.
		"fields": fields,
	}
}

var issueKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[0-9]+$`)

// handleIssue implements GET /rest/api/3/issue/{issueIdOrKey}. An issue that does not exist
// and one the user may not browse get the same 404, "Returned if the issue is not found or
// the user does not have permission to view it"
// (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get).
func (s *Server) handleIssue(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:jira-work")
	if !ok {
		return
	}
	key := r.PathValue("key")
	if issueKeyRE.MatchString(key) && s.canBrowse(u, site.ID, key) {
		for _, is := range s.world.Issues {
			if is.Site == site.ID && is.Key == key {
				writeJSON(w, http.StatusOK, s.issueJSON(site, is))
				return
			}
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{
		"errorMessages": []string{"Issue does not exist or you do not have permission to see it."},
		"errors":        map[string]any{},
	})
}

// searchHits runs a JQL search for u on site: the issues the user may browse that match,
// most recently updated first. ok is false when an answer (400) was written.
func (s *Server) searchHits(w http.ResponseWriter, jql string, site Site, u User) ([]Issue, bool) {
	clauses, err := parseQuery(jql)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Error in the JQL Query: " + err.Error()}, "errors": map[string]any{}})
		return nil, false
	}
	var hits []Issue
	for _, is := range s.world.Issues {
		if is.Site != site.ID || !s.canBrowse(u, site.ID, is.Key) {
			continue
		}
		match, err := jqlMatch(clauses, is, u)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Error in the JQL Query: " + err.Error()}, "errors": map[string]any{}})
			return nil, false
		}
		if match {
			hits = append(hits, is)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Updated.After(hits[j].Updated) })
	return hits, true
}

// handleSearch implements GET /rest/api/3/search/jql, "Search for issues using JQL enhanced
// search" (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/; the
// response schema SearchAndReconcileResults in Atlassian's OpenAPI document):
//   - the answer is {issues, nextPageToken, isLast} — no total, startAt or maxResults;
//   - maxResults defaults to 50 and a page may hold fewer issues than asked (SearchPageLimit);
//   - nextPageToken is present only when another page exists (JRACLOUD-92184: the key is
//     absent on the last page) and is valid for 7 days, for the same query only;
//   - results contain only issues the user may browse; an invalid or unbounded query is 400
//     with errorMessages.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:jira-work")
	if !ok {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k == "startAt" {
			// Offset paging belongs to the removed /rest/api/3/search.
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Unrecognized parameter: startAt; use nextPageToken."}, "errors": map[string]any{}})
			return
		}
	}
	want := 50
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"maxResults must be a positive integer."}, "errors": map[string]any{}})
			return
		}
		want = n
	}
	start := 0
	if tok := q.Get("nextPageToken"); tok != "" {
		n, ok := s.readPageToken(tok, q.Get("jql"))
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"The provided next page token is invalid or expired."}, "errors": map[string]any{}})
			return
		}
		start = n
	}
	hits, ok := s.searchHits(w, q.Get("jql"), site, u)
	if !ok {
		return
	}
	end := min(start+min(want, s.opts.SearchPageLimit), len(hits))
	start = min(start, len(hits))
	out := []map[string]any{}
	for _, is := range hits[start:end] {
		out = append(out, s.issueJSON(site, is))
	}
	resp := map[string]any{"issues": out, "isLast": end >= len(hits)}
	if end < len(hits) {
		resp["nextPageToken"] = s.pageToken(end, q.Get("jql"))
	}
	writeJSON(w, http.StatusOK, resp)
}

// pageToken is an opaque continuation token: the offset, a digest binding it to the query,
// and when it was issued. Caller may hold s.mu or not; the clock is read under it.
func (s *Server) pageToken(offset int, jql string) string {
	sum := sha256.Sum256([]byte(jql))
	raw := fmt.Sprintf("%d.%d.%s", offset, s.Now().Unix(), hex.EncodeToString(sum[:8]))
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func (s *Server) readPageToken(tok, jql string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 {
		return 0, false
	}
	off, err1 := strconv.Atoi(parts[0])
	issued, err2 := strconv.ParseInt(parts[1], 10, 64)
	sum := sha256.Sum256([]byte(jql))
	if err1 != nil || err2 != nil || off < 0 || parts[2] != hex.EncodeToString(sum[:8]) ||
		s.Now().Sub(time.Unix(issued, 0)) > 7*24*time.Hour {
		return 0, false
	}
	return off, true
}

// handleSearchDC implements Data Center's GET /rest/api/2/search, which still pages by
// startAt and reports total (docs.atlassian.com Jira Server REST API, "Search for issues
// using JQL (GET)").
func (s *Server) handleSearchDC(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:jira-work")
	if !ok {
		return
	}
	q := r.URL.Query()
	max := 50
	if v := q.Get("maxResults"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < max {
			max = n
		}
	}
	hits, ok := s.searchHits(w, q.Get("jql"), site, u)
	if !ok {
		return
	}
	total := len(hits)
	if len(hits) > max {
		hits = hits[:max]
	}
	out := []map[string]any{}
	for _, is := range hits {
		out = append(out, s.issueJSON(site, is))
	}
	writeJSON(w, http.StatusOK, map[string]any{"issues": out, "startAt": 0, "maxResults": max, "total": total})
}

func jqlMatch(cs []clause, is Issue, u User) (bool, error) {
	for _, c := range cs {
		var ok bool
		switch {
		case c.field == "assignee" && c.fn && strings.EqualFold(c.value, "currentUser") && (c.op == "=" || c.op == "!="):
			ok = (is.Assignee == u.AccountID) == (c.op == "=")
		case c.field == "statuscategory" && (c.op == "=" || c.op == "!="):
			cat := map[string]string{"to do": "new", "in progress": "indeterminate", "done": "done"}[strings.ToLower(c.value)]
			if cat == "" {
				return false, fmt.Errorf("the value '%s' does not exist for the field 'statusCategory'", c.value)
			}
			ok = (is.Category == cat) == (c.op == "=")
		case (c.field == "text" || c.field == "summary") && c.op == "~":
			ok = textMatch(is.Summary, c.value)
		case c.field == "project" && (c.op == "=" || c.op == "!="):
			proj, _, _ := strings.Cut(is.Key, "-")
			ok = (proj == c.value) == (c.op == "=")
		default:
			return false, fmt.Errorf("unsupported clause %s %s", c.field, c.op)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func (s *Server) canView(u User, site, space string) (Space, bool) {
	for _, sp := range s.world.Spaces {
		if sp.Site == site && sp.Key == space {
			return sp, slices.Contains(sp.View, u.AccountID)
		}
	}
	return Space{}, false
}

func webui(p Page) string {
	return fmt.Sprintf("/spaces/%s/pages/%s/%s", p.Space, p.ID, url.PathEscape(strings.ReplaceAll(p.Title, " ", "+")))
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// handleCQL implements GET /wiki/rest/api/search?cql= (Confluence Cloud REST v1 "Search
// content by CQL", developer.atlassian.com/cloud/confluence/rest/v1/api-group-search/; v2
// has no search). Its OpenAPI operation accepts the classic scope search:confluence or the
// granular read:content-details:confluence. Only content the user may view is returned.
func (s *Server) handleCQL(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "search:confluence", "read:content-details:confluence")
	if !ok {
		return
	}
	q := r.URL.Query()
	clauses, err := parseQuery(q.Get("cql"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "Could not parse cql : " + err.Error()})
		return
	}
	limit := 25
	if v := q.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < limit {
			limit = n
		}
	}
	results := []map[string]any{}
	for _, p := range s.world.Pages {
		if p.Site != site.ID {
			continue
		}
		sp, visible := s.canView(u, site.ID, p.Space)
		if !visible {
			continue
		}
		match := true
		for _, c := range clauses {
			switch {
			case c.field == "type" && c.op == "=":
				match = match && c.value == "page"
			case (c.field == "text" || c.field == "sitesearch") && c.op == "~":
				match = match && textMatch(p.Title+" "+tagRE.ReplaceAllString(p.Body, " "), c.value)
			case c.field == "title" && c.op == "~":
				match = match && textMatch(p.Title, c.value)
			case c.field == "space" && c.op == "=":
				match = match && p.Space == c.value
			default:
				writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "Could not parse cql : unsupported clause " + c.field})
				return
			}
		}
		if !match || len(results) >= limit {
			continue
		}
		results = append(results, map[string]any{
			"content": map[string]any{"id": p.ID, "type": "page", "status": "current", "title": p.Title,
				"_links": map[string]any{"webui": webui(p)}},
			"title":                 p.Title,
			"excerpt":               excerpt(p.Body, 120),
			"url":                   webui(p),
			"resultGlobalContainer": map[string]any{"title": sp.Name, "displayUrl": "/spaces/" + sp.Key},
			"lastModified":          p.Updated.Format(time.RFC3339),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"results": results, "start": 0, "limit": limit, "size": len(results),
		"_links": map[string]any{"base": s.wikiBase(site)},
	})
}

// wikiBase is Confluence's browser root: {site}/wiki on Cloud, the instance on Data Center.
func (s *Server) wikiBase(site Site) string {
	if s.opts.DataCenter {
		return site.URL
	}
	return site.URL + "/wiki"
}

func excerpt(html string, n int) string {
	t := strings.Join(strings.Fields(tagRE.ReplaceAllString(html, " ")), " ")
	if len(t) > n {
		t = t[:n]
	}
	return t
}

// handleContent implements Data Center's GET /rest/api/content/{id}?expand=space,body.view,version
// (Confluence REST "Get content by ID"; Cloud reads pages through REST v2, handlePageV2). Content the user may not view is 404, the
// same as content that does not exist (developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/#api-wiki-rest-api-content-id-get:
// "Returned if ... the requesting user does not have permission to view the content").
func (s *Server) handleContent(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:confluence-content.all")
	if !ok {
		return
	}
	id := r.PathValue("id")
	for _, p := range s.world.Pages {
		if p.Site != site.ID || p.ID != id {
			continue
		}
		sp, visible := s.canView(u, site.ID, p.Space)
		if !visible {
			break
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": p.ID, "type": "page", "status": "current", "title": p.Title,
			"space":   map[string]any{"key": sp.Key, "name": sp.Name},
			"body":    map[string]any{"view": map[string]any{"value": p.Body, "representation": "view"}},
			"version": map[string]any{"when": p.Updated.Format(time.RFC3339), "number": 1},
			"_links":  map[string]any{"webui": webui(p), "base": s.wikiBase(site)},
		})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "message": "No content found with id: " + id})
}

// spaceID is the numeric id REST v2 gives a space (stable for the stand-in's world).
func (s *Server) spaceID(key string) string {
	for i, sp := range s.world.Spaces {
		if sp.Key == key {
			return strconv.Itoa(98300 + i)
		}
	}
	return ""
}

// v2Formats are the body-format values Get page by id accepts
// (PrimaryBodyRepresentationSingle in Confluence's REST v2 OpenAPI document).
var v2Formats = []string{"storage", "atlas_doc_format", "view", "export_view", "anonymous_export_view"}

// handlePageV2 implements GET /wiki/api/v2/pages/{id} (Confluence Cloud REST v2 "Get page by
// id", developer.atlassian.com/cloud/confluence/rest/v2/api-group-page/#api-pages-id-get,
// operation getPageById of its OpenAPI document):
//   - OAuth 2.0 scope read:page:confluence (granular; the classic scopes are not listed);
//   - id is an int64; body-format is one of v2Formats; anything else is 400;
//   - the body holds only the representation asked for, none without body-format;
//   - the page has spaceId (not the space's name or key) and version.createdAt;
//   - 404 "if the calling user does not have permission to view the requested page or the
//     page was not found".
func (s *Server) handlePageV2(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:page:confluence")
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		writeV2Error(w, http.StatusBadRequest, "INVALID_REQUEST_PARAMETER", "id must be an integer")
		return
	}
	format := r.URL.Query().Get("body-format")
	if format != "" && !slices.Contains(v2Formats, format) {
		writeV2Error(w, http.StatusBadRequest, "INVALID_REQUEST_PARAMETER", "body-format must be one of "+strings.Join(v2Formats, ", "))
		return
	}
	for _, p := range s.world.Pages {
		if p.Site != site.ID || p.ID != id {
			continue
		}
		if _, visible := s.canView(u, site.ID, p.Space); !visible {
			break
		}
		body := map[string]any{}
		if format != "" {
			body[format] = map[string]any{"representation": format, "value": p.Body}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": p.ID, "status": "current", "title": p.Title, "spaceId": s.spaceID(p.Space),
			"createdAt": p.Updated.Format("2006-01-02T15:04:05.000Z07:00"),
			"version":   map[string]any{"number": 1, "createdAt": p.Updated.Format("2006-01-02T15:04:05.000Z07:00"), "minorEdit": false},
			"body":      body,
			"_links":    map[string]any{"webui": webui(p), "tinyui": "/x/" + p.ID},
		})
		return
	}
	writeV2Error(w, http.StatusNotFound, "NOT_FOUND", "Not Found")
}

// handleSpaceV2 implements GET /wiki/api/v2/spaces/{id} ("Get space by id", scope
// read:space:confluence; 404 when the space does not exist or the user may not view it).
func (s *Server) handleSpaceV2(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "read:space:confluence")
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		writeV2Error(w, http.StatusBadRequest, "INVALID_REQUEST_PARAMETER", "id must be an integer")
		return
	}
	for _, sp := range s.world.Spaces {
		if sp.Site != site.ID || s.spaceID(sp.Key) != id {
			continue
		}
		if !slices.Contains(sp.View, u.AccountID) {
			break
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "key": sp.Key, "name": sp.Name, "type": "global", "status": "current",
			"_links": map[string]any{"webui": "/spaces/" + sp.Key},
		})
		return
	}
	writeV2Error(w, http.StatusNotFound, "NOT_FOUND", "Not Found")
}

// writeV2Error writes Confluence REST v2's error body ({"errors":[{status, code, title}]};
// the shape is unverified beyond the status codes the OpenAPI document lists).
func writeV2Error(w http.ResponseWriter, status int, code, title string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"status": status, "code": code, "title": title}}})
}
