// Package graph answers questions from Microsoft Graph as the signed-in user, with the
// delegated token the bot obtains on their behalf (so Graph returns exactly what that user
// may see). Sources: learn.microsoft.com graph/api/user-get, user-list-messages (with
// $search), drive-recent.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors callers act on.
var (
	// ErrUnauthorized: Graph refused the token (expired or revoked); obtain a new one.
	ErrUnauthorized = errors.New("graph: token refused")
	// ErrForbidden: the user (or the bot's consented scopes) may not read this.
	ErrForbidden = errors.New("graph: access denied")
	// ErrThrottled: Graph asked the bot to slow down.
	ErrThrottled = errors.New("graph: throttled")
)

// Client calls Graph with a user's delegated token.
type Client struct {
	// BaseURL is GRAPH_URL (https://graph.microsoft.com).
	BaseURL string
	// HTTPClient performs the requests.
	HTTPClient *http.Client
}

// Profile is the signed-in user's profile.
type Profile struct {
	DisplayName       string `json:"displayName"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"userPrincipalName"`
	JobTitle          string `json:"jobTitle"`
	Department        string `json:"department"`
	OfficeLocation    string `json:"officeLocation"`
}

// Message is one mail message.
type Message struct {
	Subject          string    `json:"subject"`
	BodyPreview      string    `json:"bodyPreview"`
	WebLink          string    `json:"webLink"`
	ReceivedDateTime time.Time `json:"receivedDateTime"`
	From             struct {
		EmailAddress struct {
			Name    string `json:"name"`
			Address string `json:"address"`
		} `json:"emailAddress"`
	} `json:"from"`
}

// DriveItem is one file.
type DriveItem struct {
	Name                 string    `json:"name"`
	WebURL               string    `json:"webUrl"`
	LastModifiedDateTime time.Time `json:"lastModifiedDateTime"`
	Size                 int64     `json:"size"`
}

// Me returns the user's profile (GET /v1.0/me).
func (c *Client) Me(ctx context.Context, token string) (*Profile, error) {
	var p Profile
	q := url.Values{"$select": {"displayName,mail,userPrincipalName,jobTitle,department,officeLocation"}}
	if err := c.get(ctx, token, "/v1.0/me?"+q.Encode(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SearchMail searches the user's mailbox (GET /v1.0/me/messages?$search="…").
func (c *Client) SearchMail(ctx context.Context, token, text string, top int) ([]Message, error) {
	// $search takes a quoted KQL string; a double quote inside it would end the string.
	text = strings.ReplaceAll(strings.TrimSpace(text), `"`, " ")
	q := url.Values{"$search": {`"` + text + `"`}, "$top": {strconv.Itoa(top)}, "$select": {"subject,bodyPreview,webLink,receivedDateTime,from"}}
	var out struct {
		Value []Message `json:"value"`
	}
	if err := c.get(ctx, token, "/v1.0/me/messages?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// RecentFiles lists the user's recently used files (GET /v1.0/me/drive/recent).
func (c *Client) RecentFiles(ctx context.Context, token string, top int) ([]DriveItem, error) {
	var out struct {
		Value []DriveItem `json:"value"`
	}
	if err := c.get(ctx, token, "/v1.0/me/drive/recent", &out); err != nil {
		return nil, err
	}
	if len(out.Value) > top {
		out.Value = out.Value[:top]
	}
	return out.Value, nil
}

func (c *Client) get(ctx context.Context, token, pathQuery string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+pathQuery, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error names the whole URL, whose query holds the user's search words.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("graph: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(data, into); err != nil {
			return fmt.Errorf("graph: malformed answer: %w", err)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrUnauthorized
	case resp.StatusCode == http.StatusForbidden:
		return ErrForbidden
	case resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("%w (retry after %s s)", ErrThrottled, resp.Header.Get("Retry-After"))
	default:
		return fmt.Errorf("graph: HTTP %d", resp.StatusCode)
	}
}
