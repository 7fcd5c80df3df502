// Package graph answers questions from Microsoft Graph as the signed-in user, with the
// delegated token the bot obtains on their behalf (so Graph returns exactly what that user
// may see). Sources: learn.microsoft.com graph/api/user-get, user-list-messages (with
// $search), driveitem-list-children, driveitem-search and resources/remoteitem. The files
// calls avoid drive-recent and insights/used, both deprecated and due to stop returning data.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/onbehalf/onbehalf/internal/audit"
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
	// Resource and Scopes are the audience and delegated scopes of the tokens passed in,
	// named in the audit record of each call (never the token itself).
	Resource string
	Scopes   []string
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
	Name                 string
	WebURL               string
	LastModifiedDateTime time.Time
	Size                 int64
	// Shared is true for an item stored in someone else's drive and shared with the user.
	Shared bool
}

// driveItemJSON is a driveItem as Graph sends it. An item from another drive (shared with
// the user) carries its own properties in remoteItem; the top level may lack them.
type driveItemJSON struct {
	driveItemFields
	RemoteItem *driveItemFields `json:"remoteItem"`
}

type driveItemFields struct {
	Name                 string    `json:"name"`
	WebURL               string    `json:"webUrl"`
	LastModifiedDateTime time.Time `json:"lastModifiedDateTime"`
	Size                 int64     `json:"size"`
	File                 *struct{} `json:"file"`
	Folder               *struct{} `json:"folder"`
}

// item converts, reading a shared item's fields from remoteItem; ok is false for folders.
func (x driveItemJSON) item() (DriveItem, bool) {
	if r := x.RemoteItem; r != nil {
		if r.Folder != nil {
			return DriveItem{}, false
		}
		return DriveItem{Name: orElse(r.Name, x.Name), WebURL: r.WebURL, LastModifiedDateTime: r.LastModifiedDateTime,
			Size: r.Size, Shared: true}, true
	}
	if x.Folder != nil {
		return DriveItem{}, false
	}
	return DriveItem{Name: x.Name, WebURL: x.WebURL, LastModifiedDateTime: x.LastModifiedDateTime, Size: x.Size}, true
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// driveSelect names the driveItem properties the files calls read.
const driveSelect = "name,webUrl,lastModifiedDateTime,size,file,folder,remoteItem"

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

// childrenPage is how many items of the drive's top folder Files reads (one page).
const childrenPage = 200

// Files lists the newest files at the top of the user's OneDrive, newest first
// (GET /v1.0/me/drive/root/children). OneDrive for Business sorts children only by name, so
// one page is read and sorted here by last modification.
func (c *Client) Files(ctx context.Context, token string, top int) ([]DriveItem, error) {
	q := url.Values{"$top": {strconv.Itoa(childrenPage)}, "$select": {driveSelect}}
	var out struct {
		Value []driveItemJSON `json:"value"`
	}
	if err := c.get(ctx, token, "/v1.0/me/drive/root/children?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	items := make([]DriveItem, 0, len(out.Value))
	for _, x := range out.Value {
		if it, ok := x.item(); ok {
			items = append(items, it)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].LastModifiedDateTime.After(items[j].LastModifiedDateTime) })
	if len(items) > top {
		items = items[:top]
	}
	return items, nil
}

// SearchFiles finds files matching text in the user's OneDrive and among the files shared
// with them (GET /v1.0/me/drive/search(q='…')); shared files come from remoteItem.
func (c *Client) SearchFiles(ctx context.Context, token, text string, top int) ([]DriveItem, error) {
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return nil, errors.New("graph: empty file search")
	}
	// q is an OData string literal: a quote inside it is doubled. The whole literal is one
	// escaped path segment, so '?', '#' or '/' typed by the user stay inside it.
	lit := "'" + strings.ReplaceAll(text, "'", "''") + "'"
	q := url.Values{"$top": {strconv.Itoa(top)}, "$select": {driveSelect}}
	var out struct {
		Value []driveItemJSON `json:"value"`
	}
	if err := c.get(ctx, token, "/v1.0/me/drive/search(q="+url.PathEscape(lit)+")?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	items := make([]DriveItem, 0, len(out.Value))
	for _, x := range out.Value {
		if it, ok := x.item(); ok && len(items) < top {
			items = append(items, it)
		}
	}
	return items, nil
}

func (c *Client) get(ctx context.Context, token, pathQuery string, into any) error {
	ctx = audit.WithTarget(ctx, audit.Target{Connector: ResourceName, Audience: c.Resource, Scopes: c.Scopes})
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
