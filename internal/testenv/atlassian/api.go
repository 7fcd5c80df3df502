package atlassian

import (
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
	u, scopes, ok := s.bearer(w, r, "")
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
	u, _, ok := s.bearer(w, r, "")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"key": u.AccountID, "name": strings.Fields(u.Name)[0], "displayName": u.Name, "emailAddress": u.Email, "active": true,
	})
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
	u, _, ok := s.bearer(w, r, "read:jira-work")
	if !ok {
		return
	}
	site, ok := s.site(w, r, u)
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

// handleSearch implements GET /rest/api/3/search/jql (the enhanced JQL search that replaced
// /rest/api/3/search; developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/).
// Results contain only issues the user may browse; an invalid query is 400 with errorMessages.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.bearer(w, r, "read:jira-work")
	if !ok {
		return
	}
	site, ok := s.site(w, r, u)
	if !ok {
		return
	}
	q := r.URL.Query()
	clauses, err := parseQuery(q.Get("jql"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Error in the JQL Query: " + err.Error()}, "errors": map[string]any{}})
		return
	}
	max := 50
	if v := q.Get("maxResults"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < max {
			max = n
		}
	}
	var hits []Issue
	for _, is := range s.world.Issues {
		if is.Site != site.ID || !s.canBrowse(u, site.ID, is.Key) {
			continue
		}
		match, err := jqlMatch(clauses, is, u)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"Error in the JQL Query: " + err.Error()}, "errors": map[string]any{}})
			return
		}
		if match {
			hits = append(hits, is)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Updated.After(hits[j].Updated) })
	if len(hits) > max {
		hits = hits[:max]
	}
	out := []map[string]any{}
	for _, is := range hits {
		out = append(out, s.issueJSON(site, is))
	}
	writeJSON(w, http.StatusOK, map[string]any{"issues": out, "isLast": true, "startAt": 0, "maxResults": max, "total": len(out)})
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
// content by CQL", developer.atlassian.com/cloud/confluence/rest/v1/api-group-search/).
// Only content the user may view is returned.
func (s *Server) handleCQL(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.bearer(w, r, "search:confluence")
	if !ok {
		return
	}
	site, ok := s.site(w, r, u)
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

// handleContent implements GET /wiki/rest/api/content/{id}?expand=space,body.view,version
// (Confluence Cloud REST v1 "Get content by ID"). Content the user may not view is 404, the
// same as content that does not exist (developer.atlassian.com/cloud/confluence/rest/v1/api-group-content/#api-wiki-rest-api-content-id-get:
// "Returned if ... the requesting user does not have permission to view the content").
func (s *Server) handleContent(w http.ResponseWriter, r *http.Request) {
	u, _, ok := s.bearer(w, r, "read:confluence-content.all")
	if !ok {
		return
	}
	site, ok := s.site(w, r, u)
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
