// Package atlassian is the Jira and Confluence connector: one Atlassian OAuth 2.0 (3LO) app
// for both products, the user's sites (accessible-resources), their identity (/me), and
// small Jira and Confluence clients that return plain Go structs, plus Adaptive Card
// renderers. It acts only as the user: every call carries the user's own access token from
// an authorized client made by the generic oauth2 connector, so Atlassian applies the user's
// own permissions.
package atlassian

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// Cloud defaults (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo).
const (
	DefaultAuthURL = "https://auth.atlassian.com"
	DefaultAPIURL  = "https://api.atlassian.com"
	// Name is the connector's stored-token key and command word.
	Name = "atlassian"
)

// CloudScopes are the scopes onbehalf asks for, each needed by a call it makes (least
// privilege):
//   - read:jira-work — Jira REST v3 issue and enhanced JQL search; read:jira-user — the
//     assignee's display name; write:jira-work — a comment the user confirmed on a card;
//   - search:confluence — Confluence CQL search, which exists only in REST v1;
//   - read:page:confluence, read:space:confluence — granular scopes of the Confluence REST v2
//     page and space reads (Atlassian's v2 OpenAPI operations list no classic scope);
//   - read:me — the "Connected as" message; offline_access — a refresh token.
var CloudScopes = []string{
	"read:jira-work", "read:jira-user", "write:jira-work",
	"search:confluence", "read:page:confluence", "read:space:confluence",
	"read:me", "offline_access",
}

// DataCenterScopes are the OAuth 2.0 incoming-link scopes of Jira/Confluence Data Center
// (confluence.atlassian.com "Jira OAuth 2.0 provider API": READ, WRITE, ADMIN, SYSTEM_ADMIN).
var DataCenterScopes = []string{"READ"}

// Config is the Atlassian connector's configuration, read from the settings
// ATLASSIAN_CLIENT_ID, ATLASSIAN_CLIENT_SECRET_NAME, ATLASSIAN_AUTH_URL, ATLASSIAN_API_URL and
// ATLASSIAN_DC_BASE_URL.
//
// Example (Atlassian Cloud; the app registered at developer.atlassian.com/console/myapps with
// callback URL {BOT_PUBLIC_URL}/api/oauth/callback):
//
//	atlassian.Config{
//		ClientID:         "aBcD1234eFgH5678iJkL9012mNoP3456", // ATLASSIAN_CLIENT_ID
//		ClientSecretName: "atlassian-client-secret",          // ATLASSIAN_CLIENT_SECRET_NAME (Key Vault)
//	}
//
// Data Center (an OAuth 2.0 incoming link created in the product's administration):
//
//	atlassian.Config{
//		ClientID:          "6f1d9e0c4b2a...",
//		ClientSecretName:  "jira-dc-client-secret",
//		DataCenterBaseURL: "https://jira.example.com", // ATLASSIAN_DC_BASE_URL
//	}
type Config struct {
	// ClientID of the Atlassian OAuth 2.0 (3LO) app.
	ClientID string
	// ClientSecretName is the Key Vault secret holding the app's secret.
	ClientSecretName string
	// AuthURL is the authorization server; default https://auth.atlassian.com. Tests point it
	// at the stand-in.
	AuthURL string
	// APIURL is the API gateway; default https://api.atlassian.com.
	APIURL string
	// DataCenterBaseURL switches to Data Center: authorize and token at
	// {base}/rest/oauth2/latest/authorize and …/token, REST at {base}/rest/api/2 (Jira) and
	// {base}/rest/api (Confluence). AuthURL and APIURL are then ignored.
	DataCenterBaseURL string
	// Scopes overrides the default scope list.
	Scopes []string
}

// OAuth2 returns the generic connector configuration this Atlassian configuration amounts to.
func (c Config) OAuth2() oauth2.Config {
	if c.DataCenterBaseURL != "" {
		base := strings.TrimRight(c.DataCenterBaseURL, "/")
		scopes := c.Scopes
		if len(scopes) == 0 {
			scopes = DataCenterScopes
		}
		return oauth2.Config{
			Name: Name, DisplayName: "Jira and Confluence",
			AuthURL: base + "/rest/oauth2/latest/authorize", TokenURL: base + "/rest/oauth2/latest/token",
			APIBaseURL: base, Scopes: scopes, ClientID: c.ClientID, ClientSecretName: c.ClientSecretName,
		}
	}
	auth := strings.TrimRight(orDefault(c.AuthURL, DefaultAuthURL), "/")
	api := strings.TrimRight(orDefault(c.APIURL, DefaultAPIURL), "/")
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = CloudScopes
	}
	return oauth2.Config{
		Name: Name, DisplayName: "Jira and Confluence",
		AuthURL: auth + "/authorize", TokenURL: auth + "/oauth/token", APIBaseURL: api,
		Scopes: scopes, ClientID: c.ClientID, ClientSecretName: c.ClientSecretName,
		// audience and prompt are required by Atlassian's authorize endpoint
		// (developer.atlassian.com/cloud/oauth/getting-started/implementing-oauth-3lo).
		AuthParams: map[string]string{"audience": "api.atlassian.com", "prompt": "consent"},
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Connector is the opened Atlassian connector.
type Connector struct {
	// OAuth is the generic connector: AuthCodeURL, Exchange, Refresh, Client.
	OAuth      *oauth2.Connector
	apiURL     string
	dataCenter bool
}

// Open validates the configuration and opens the connector.
func (c Config) Open(rt oauth2.Runtime) (*Connector, error) {
	oc := c.OAuth2()
	conn, err := oc.Open(rt)
	if err != nil {
		return nil, fmt.Errorf("atlassian: %w", err)
	}
	return &Connector{OAuth: conn, apiURL: oc.APIBaseURL, dataCenter: c.DataCenterBaseURL != ""}, nil
}

// Site is one Atlassian site the user's grant covers.
type Site struct {
	// ID is the cloudid (empty for Data Center).
	ID string `json:"id"`
	// Name is the site's short name ("acme").
	Name string `json:"name"`
	// URL is the site's browser URL (https://acme.atlassian.net), used for links.
	URL string `json:"url"`
	// Scopes granted on this site.
	Scopes []string `json:"scopes,omitempty"`

	apiURL     string
	dataCenter bool
}

// Sites lists the sites the user's grant covers (GET {api}/oauth/token/accessible-resources).
// With several, the bot asks the user once and remembers the chosen ID; see ChooseSite.
// hc is the user's authorized client from OAuth.Client. Data Center has one site, its base URL.
func (c *Connector) Sites(ctx context.Context, hc *http.Client) ([]Site, error) {
	if c.dataCenter {
		u, _ := url.Parse(c.apiURL)
		return []Site{{Name: u.Hostname(), URL: c.apiURL, apiURL: c.apiURL, dataCenter: true}}, nil
	}
	var sites []Site
	if err := getJSON(ctx, hc, "atlassian sites", c.apiURL+"/oauth/token/accessible-resources", &sites, nil); err != nil {
		return nil, err
	}
	// One site can be listed once per product (Jira, Confluence) when the grant covers both:
	// merge entries by cloud id, keeping every scope.
	out := sites[:0]
	seen := map[string]int{}
	for _, s := range sites {
		if s.ID == "" || checkSiteURL(s.URL) != nil {
			continue // unusable entry: no id, or a link we would not put in a card
		}
		if i, ok := seen[s.ID]; ok {
			for _, sc := range s.Scopes {
				if !slices.Contains(out[i].Scopes, sc) {
					out[i].Scopes = append(out[i].Scopes, sc)
				}
			}
			continue
		}
		s.apiURL = c.apiURL
		seen[s.ID] = len(out)
		out = append(out, s)
	}
	return out, nil
}

// Site rebuilds a Site from what the bot stored (id, name, url) so it can make clients.
func (c *Connector) Site(id, name, siteURL string) (Site, error) {
	if err := checkSiteURL(siteURL); err != nil {
		return Site{}, fmt.Errorf("atlassian site: %w", err)
	}
	return Site{ID: id, Name: name, URL: strings.TrimRight(siteURL, "/"), apiURL: c.apiURL, dataCenter: c.dataCenter}, nil
}

func checkSiteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("site URL %q is not an https URL", raw)
	}
	return nil
}

// ChooseSite picks the site to use: the remembered one if still granted, else the only one.
// ok is false when the user must choose (several sites, none remembered) or has none.
func ChooseSite(sites []Site, rememberedID string) (Site, bool) {
	for _, s := range sites {
		if rememberedID != "" && s.ID == rememberedID {
			return s, true
		}
	}
	if len(sites) == 1 {
		return sites[0], true
	}
	return Site{}, false
}

// Account is the user's Atlassian identity, for "Connected to Jira as <Name>".
type Account struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
}

// Me returns the user's Atlassian account (GET {api}/me; Data Center: the Jira
// {base}/rest/api/2/myself).
func (c *Connector) Me(ctx context.Context, hc *http.Client) (Account, error) {
	if c.dataCenter {
		var m struct {
			Key          string `json:"key"`
			DisplayName  string `json:"displayName"`
			EmailAddress string `json:"emailAddress"`
		}
		err := getJSON(ctx, hc, "atlassian me", c.apiURL+"/rest/api/2/myself", &m, nil)
		return Account{AccountID: m.Key, Name: m.DisplayName, Email: m.EmailAddress}, err
	}
	var a Account
	err := getJSON(ctx, hc, "atlassian me", c.apiURL+"/me", &a, nil)
	return a, err
}

// getJSON GETs u with the user's client and decodes a 2xx JSON answer into v. 403 and 404 go
// to notFound when given (Atlassian answers them for things the user may not see); 400 is a
// *QueryError; other statuses an *oauth2.StatusError. 401, 429 and 5xx never arrive here:
// the authorized client turned them into oauth2 errors.
func getJSON(ctx context.Context, hc *http.Client, op, u string, v any, notFound func() error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s: read: %w", op, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("%s: decode: %w", op, err)
		}
		return nil
	case (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden) && notFound != nil:
		return fmt.Errorf("%s: %w", op, notFound())
	case resp.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("%s: %w", op, &QueryError{Messages: errorMessages(body)})
	default:
		return fmt.Errorf("%s: %w", op, &oauth2.StatusError{StatusCode: resp.StatusCode, Body: snippet(body)})
	}
}

// errorMessages extracts Jira's errorMessages or Confluence's message from an error body.
func errorMessages(body []byte) []string {
	var e struct {
		ErrorMessages []string `json:"errorMessages"`
		Message       string   `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Message != "" {
		e.ErrorMessages = append(e.ErrorMessages, e.Message)
	}
	return e.ErrorMessages
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
