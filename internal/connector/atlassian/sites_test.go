package atlassian

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// accessible-resources lists a site once per product when the grant covers Jira and
// Confluence; the user must see one choice per site.
func TestSitesMergesEntriesOfOneSite(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode([]map[string]any{
			{"id": "c1", "name": "acme", "url": "https://acme.atlassian.net", "scopes": []string{"read:jira-work"}},
			{"id": "c1", "name": "acme", "url": "https://acme.atlassian.net", "scopes": []string{"search:confluence"}},
			{"id": "c2", "name": "globex", "url": "https://globex.atlassian.net", "scopes": []string{"read:jira-work"}},
		})
	}))
	defer srv.Close()
	conn, err := Config{ClientID: "id", ClientSecretName: "n", APIURL: srv.URL, AuthURL: srv.URL}.Open(oauth2.Runtime{
		RedirectURL: "https://bot/api/oauth/callback", HTTPClient: srv.Client(),
		Secret: func(context.Context, string) (string, error) { return "s", nil }})
	if err != nil {
		t.Fatal(err)
	}
	sites, err := conn.Sites(context.Background(), srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 2 || sites[0].ID != "c1" || len(sites[0].Scopes) != 2 || sites[1].ID != "c2" {
		t.Fatalf("sites %+v", sites)
	}
}
