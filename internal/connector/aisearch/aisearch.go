// Package aisearch queries an Azure AI Search index as the signed-in user, through the
// service's document-level access control: the request is authorized by the bot's managed
// identity (a data-plane role, no key) and carries the user's own Entra token for Search in
// x-ms-query-source-authorization, so the service returns only the documents whose permission
// fields name the user or one of their groups (learn.microsoft.com
// azure/search/search-query-access-control-rbac-enforcement). There is no path without the
// user's token: Search refuses an empty one before any request is sent.
package aisearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/onbehalf/onbehalf/internal/audit"
	connpolicy "github.com/onbehalf/onbehalf/internal/policy"
)

// Audience is Azure AI Search's resource: the audience of the bot's token and the user's.
const Audience = "https://search.azure.com"

// UserScope is the delegated scope requested on the user's behalf (OBO): Azure AI Search's
// user_impersonation permission (first-party application 880da380-985e-4198-81b9-e05b1cc53158).
const UserScope = Audience + "/user_impersonation"

// ConnectorName names the knowledge base in audit records and the connector policy.
const ConnectorName = "search"

// Errors callers act on.
var (
	// ErrUserRefused: Search refused the user's token (expired, revoked, wrong audience); a
	// fresh sign-in helps.
	ErrUserRefused = errors.New("aisearch: the user's token was refused")
	// ErrForbidden: the bot's identity lacks a data-plane role on the service (an
	// administrator's fix).
	ErrForbidden = errors.New("aisearch: the bot may not query this index")
	// ErrUnavailable: Search is busy or could not evaluate permissions (429, 5xx).
	ErrUnavailable = errors.New("aisearch: the search service is unavailable")
)

// Config configures a Client.
//
//	aisearch.Config{
//		Endpoint:   "https://contoso-kb.search.windows.net",
//		Index:      "handbook",
//		APIVersion: "2025-11-01-preview",
//		Fields:     aisearch.Fields{Title: "title", URL: "url", Content: "content"},
//		Credential: managedIdentity, // holds Search Index Data Reader
//	}
type Config struct {
	Endpoint, Index, APIVersion string
	Fields                      Fields
	// Credential is the bot's own identity (the managed identity in Azure).
	Credential azcore.TokenCredential
	HTTPClient *http.Client
}

// Fields names the index fields read for a result. Permission fields are never selected.
type Fields struct{ Title, URL, Content string }

// Document is one search result.
type Document struct{ Title, URL, Content string }

// Client searches one index. Safe for concurrent use.
type Client struct{ c Config }

// New returns a client; it makes no network call.
func New(c Config) (*Client, error) {
	if c.Endpoint == "" || c.Index == "" || c.APIVersion == "" || c.Credential == nil || c.Fields.Title == "" || c.Fields.URL == "" || c.Fields.Content == "" {
		return nil, errors.New("aisearch: endpoint, index, api-version, fields and credential are required")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return &Client{c: c}, nil
}

// Search returns up to top documents matching text that the owner of userToken may read.
func (c *Client) Search(ctx context.Context, userToken, text string, top int) ([]Document, error) {
	if strings.TrimSpace(userToken) == "" {
		return nil, errors.New("aisearch: no user token: refusing to search without the user's identity")
	}
	svc, err := c.c.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Audience + "/.default"}})
	if err != nil {
		return nil, fmt.Errorf("aisearch: the bot's own token: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"search": text, "top": top, "queryType": "simple", "searchMode": "any",
		"select": c.c.Fields.Title + "," + c.c.Fields.URL + "," + c.c.Fields.Content,
	})
	if err != nil {
		return nil, err
	}
	// A query is a POST that changes nothing: the connector policy must not treat it as a write.
	ctx = connpolicy.ReadOnly(audit.WithTarget(ctx, audit.Target{Connector: ConnectorName, Audience: Audience, Scopes: []string{UserScope}}))
	u := strings.TrimRight(c.c.Endpoint, "/") + "/indexes('" + url.PathEscape(c.c.Index) + "')/docs/search.post.search?api-version=" + url.QueryEscape(c.c.APIVersion)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+svc.Token)
	req.Header.Set("x-ms-query-source-authorization", userToken)
	resp, err := c.c.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized:
		// The bot's own token is minted by the credential and checked above; a 401 is about
		// the user's token (or, rarely, the bot's: a fresh turn tells them apart).
		return nil, fmt.Errorf("%w: %s", ErrUserRefused, message(data))
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrForbidden, message(data))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: HTTP %d", ErrUnavailable, resp.StatusCode)
	default:
		return nil, fmt.Errorf("aisearch: HTTP %d: %s", resp.StatusCode, message(data))
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("aisearch: malformed answer: %w", err)
	}
	docs := make([]Document, 0, len(out.Value))
	for _, v := range out.Value {
		if len(docs) == top {
			break
		}
		s := func(k string) string { x, _ := v[k].(string); return x }
		docs = append(docs, Document{Title: s(c.c.Fields.Title), URL: s(c.c.Fields.URL), Content: s(c.c.Fields.Content)})
	}
	return docs, nil
}

// message is the service's error message, bounded (it never contains a token).
func message(data []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
		return "no error message"
	}
	m := e.Error.Message
	if len(m) > 200 {
		m = m[:200]
	}
	return m
}
