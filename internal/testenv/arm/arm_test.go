package arm

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const (
	rg   = "/subscriptions/s1/resourceGroups/rg"
	bot  = rg + "/providers/Microsoft.BotService/botServices/b"
	site = rg + "/providers/Microsoft.Web/sites/f"
)

func (s *Server) call(t *testing.T, method, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func code(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func newServer(t *testing.T) *Server {
	s := New()
	t.Cleanup(s.Close)
	if err := s.Put(bot, map[string]any{"name": "b", "properties": map[string]any{"msaAppId": "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(site, map[string]any{"name": "f", "properties": map[string]any{"defaultHostName": "f.azurewebsites.net"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAPIVersionIsRequiredAndChecked(t *testing.T) {
	s := newServer(t)
	cases := []struct {
		path, code string
		status     int
	}{
		{bot, "MissingApiVersionParameter", 400},
		{bot + "?api-version=2019-01-01", "NoRegisteredProviderFound", 400},
		{bot + "?api-version=2023-12-01", "NoRegisteredProviderFound", 400}, // a Microsoft.Web version
		{bot + "?api-version=2022-09-15", "", 200},
		{rg + "/providers/Microsoft.Web/sites?api-version=2023-12-01", "", 200},
	}
	for _, c := range cases {
		status, m := s.call(t, "GET", c.path, s.Token())
		if status != c.status || code(m) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.path, status, code(m), c.status, c.code)
		}
	}
	if status, m := s.call(t, "GET", bot+"?api-version=2019-01-01", s.Token()); !strings.Contains(m["error"].(map[string]any)["message"].(string), "2022-09-15") {
		t.Errorf("the error lists the supported versions: %d %v", status, m)
	}
}

func TestBearerTokenRequired(t *testing.T) {
	s := newServer(t)
	if status, m := s.call(t, "GET", bot+"?api-version=2022-09-15", "wrong"); status != 401 || code(m) != "InvalidAuthenticationToken" {
		t.Errorf("%d %v", status, m)
	}
}

func TestMissingChildIs404AndCollectionsList(t *testing.T) {
	s := newServer(t)
	if status, m := s.call(t, "GET", bot+"/channels/MsTeamsChannel?api-version=2022-09-15", s.Token()); status != 404 || code(m) != "ResourceNotFound" {
		t.Errorf("missing channel: %d %v", status, m)
	}
	status, m := s.call(t, "GET", rg+"/providers/Microsoft.Web/sites?api-version=2023-12-01", s.Token())
	if status != 200 || len(m["value"].([]any)) != 1 {
		t.Errorf("list sites: %d %v", status, m)
	}
	if status, m := s.call(t, "GET", rg+"/providers/Microsoft.BotService/botServices/b/connections?api-version=2022-09-15", s.Token()); status != 200 || len(m["value"].([]any)) != 0 {
		t.Errorf("empty collection: %d %v", status, m)
	}
}

func TestAppSettingsOnlyThroughPostList(t *testing.T) {
	s := newServer(t)
	s.PutAppSettings(site, map[string]string{"BOT_APP_ID": "a"})
	if status, m := s.call(t, "POST", site+"/config/appsettings/list?api-version=2023-12-01", s.Token()); status != 200 || m["properties"].(map[string]any)["BOT_APP_ID"] != "a" {
		t.Errorf("list: %d %v", status, m)
	}
	if status, _ := s.call(t, "GET", site+"/config/appsettings/list?api-version=2023-12-01", s.Token()); status != 405 {
		t.Errorf("GET is not how settings are read: %d", status)
	}
	if status, _ := s.call(t, "POST", rg+"/providers/Microsoft.Web/sites/none/config/appsettings/list?api-version=2023-12-01", s.Token()); status != 404 {
		t.Errorf("missing site: %d", status)
	}
}

func TestRoleAssignmentsAtScope(t *testing.T) {
	s := newServer(t)
	vault := rg + "/providers/Microsoft.KeyVault/vaults/kv"
	s.AddRoleAssignment(vault, "/roleDefinitions/user", "p1")
	s.AddRoleAssignment(rg, "/roleDefinitions/reader", "p2")
	s.AddRoleAssignment("/subscriptions/other", "/roleDefinitions/owner", "p3")
	s.AddRoleAssignment(vault+"/secrets/x", "/roleDefinitions/below", "p4")
	list := func(q string) []string {
		status, m := s.call(t, "GET", vault+"/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"+q, s.Token())
		if status != 200 {
			t.Fatalf("%s: %d %v", q, status, m)
		}
		var out []string
		for _, v := range m["value"].([]any) {
			out = append(out, v.(map[string]any)["properties"].(map[string]any)["principalId"].(string))
		}
		return out
	}
	if got := strings.Join(list("&$filter=atScope()"), ","); got != "p1,p2" {
		t.Errorf("atScope(): %s (at the scope and above)", got)
	}
	if got := strings.Join(list(""), ","); got != "p1,p2,p4" {
		t.Errorf("no filter: %s (at, above and below)", got)
	}
	if got := strings.Join(list("&$filter=principalId%20eq%20'p2'"), ","); got != "p2" {
		t.Errorf("principal filter: %s", got)
	}
}
