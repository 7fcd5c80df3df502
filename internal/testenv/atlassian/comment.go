package atlassian

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Comment is a comment the stand-in accepted.
type Comment struct {
	Site, Key, Author, Text string
}

// handleAddComment implements Jira Cloud's POST /rest/api/3/issue/{issueIdOrKey}/comment
// (developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments, "Add
// comment"): classic scope write:jira-work; the body field is an Atlassian Document Format
// document ({"type":"doc","version":1,"content":[…]}, developer.atlassian.com/cloud/jira/
// platform/apis/document/structure); 201 with the comment; 400 for a malformed body; 404 when
// the issue does not exist or the user may not see it. The stand-in lets whoever may browse a
// project comment in it (Jira's separate "Add comments" permission is not modelled).
func (s *Server) handleAddComment(w http.ResponseWriter, r *http.Request) {
	u, site, ok := s.siteCaller(w, r, "write:jira-work")
	if !ok {
		return
	}
	key := r.PathValue("key")
	found := false
	if issueKeyRE.MatchString(key) && s.canBrowse(u, site.ID, key) {
		for _, is := range s.world.Issues {
			found = found || (is.Site == site.ID && is.Key == key)
		}
	}
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}, "errors": map[string]any{}})
		return
	}
	var body struct {
		Body struct {
			Type    string `json:"type"`
			Version int    `json:"version"`
			Content []struct {
				Type    string `json:"type"`
				Content []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
			} `json:"content"`
		} `json:"body"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil || body.Body.Type != "doc" || body.Body.Version != 1 || len(body.Body.Content) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": map[string]any{"comment": "Comment body is not valid!"}})
		return
	}
	text := ""
	for i, p := range body.Body.Content {
		if p.Type != "paragraph" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"INVALID_INPUT"}, "errors": map[string]any{}})
			return
		}
		if i > 0 {
			text += "\n"
		}
		for _, n := range p.Content {
			text += n.Text
		}
	}
	s.mu.Lock()
	s.comments = append(s.comments, Comment{Site: site.ID, Key: key, Author: u.AccountID, Text: text})
	id := len(s.comments) + 10000
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": fmt.Sprint(id), "self": fmt.Sprintf("%s/rest/api/3/issue/%s/comment/%d", site.URL, key, id),
		"author": map[string]any{"accountId": u.AccountID, "displayName": u.Name},
		"body":   body.Body, "created": s.now().Format(jiraTime), "updated": s.now().Format(jiraTime),
		"jsdPublic": true,
	})
}

// Comments returns the comments accepted so far.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Comment(nil), s.comments...)
}
