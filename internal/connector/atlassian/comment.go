package atlassian

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// MaxCommentLen bounds a comment the bot writes for a user, in characters.
const MaxCommentLen = 2000

// CheckComment validates a comment's text and returns it trimmed.
func CheckComment(text string) (string, error) {
	text = strings.TrimSpace(strings.ToValidUTF8(text, ""))
	switch {
	case text == "":
		return "", badInput("The comment is empty.")
	case utf8.RuneCountInString(text) > MaxCommentLen:
		return "", badInput("The comment is longer than %d characters.", MaxCommentLen)
	}
	return text, nil
}

// AddComment posts text as a comment on issue key, as the user (Jira Cloud REST v3 "Add
// comment", POST …/issue/{key}/comment with an Atlassian Document Format body: one paragraph
// per line). The request is sent exactly once: its body cannot be replayed, so the authorized
// client never retries it. Returns the link to the issue.
func (j *Jira) AddComment(ctx context.Context, key, text string) (string, error) {
	key = strings.ToUpper(strings.TrimSpace(key))
	if !ValidIssueKey(key) {
		return "", badInput("%q is not a Jira issue key; it looks like PROJ-123.", truncate(key, 40))
	}
	text, err := CheckComment(text)
	if err != nil {
		return "", err
	}
	if j.site.dataCenter {
		return "", badInput("Commenting is available for Jira Cloud only.")
	}
	var paras []any
	for _, line := range strings.Split(text, "\n") {
		p := map[string]any{"type": "paragraph", "content": []any{}}
		if line = strings.TrimRight(line, "\r"); line != "" {
			p["content"] = []any{map[string]any{"type": "text", "text": line}}
		}
		paras = append(paras, p)
	}
	b, _ := json.Marshal(map[string]any{"body": map[string]any{"type": "doc", "version": 1, "content": paras}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.base+"/issue/"+key+"/comment", io.NopCloser(bytes.NewReader(b)))
	if err != nil {
		return "", fmt.Errorf("jira comment: %w", err)
	}
	req.GetBody = nil
	req.ContentLength = int64(len(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := j.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("jira comment: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		return j.site.URL + "/browse/" + key, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("jira comment: %w", &NotPermittedError{Kind: "issue", Ref: key})
	case resp.StatusCode == http.StatusBadRequest:
		return "", fmt.Errorf("jira comment: %w", &QueryError{Messages: errorMessages(body)})
	default:
		return "", fmt.Errorf("jira comment: %w", &oauth2.StatusError{StatusCode: resp.StatusCode, Body: snippet(body)})
	}
}
