// Package arm is an Azure Resource Manager stand-in for tests (never imported by production
// code): a real HTTPS server holding resources as generic JSON under their ARM ids, with the
// reads the doctor makes — the Azure Bot (Microsoft.BotService/botServices), its channels and
// OAuth connections, Function Apps (Microsoft.Web/sites) and their app settings
// (POST …/config/appsettings/list), and role assignments at a scope.
//
// Rules enforced, with their sources:
//   - every request carries api-version, else 400 MissingApiVersionParameter "The api-version
//     query parameter (?api-version=) is required for all requests." (Azure REST API reference,
//     learn.microsoft.com/rest/api/azure; error seen verbatim in Azure/azure-cli#12463);
//   - the version must be one the resource provider registers for the type, else 400
//     NoRegisteredProviderFound listing the supported versions (Azure/azure-powershell#2230);
//   - a missing resource is 404 ResourceNotFound; a missing child such as a channel that was
//     never enabled is 404 too (botservice REST reference, Channels - Get);
//   - GET {scope}/providers/Microsoft.Authorization/roleAssignments with $filter=atScope()
//     returns assignments at the scope and above it, without a filter also those below
//     (learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope);
//   - app settings are read with POST …/config/appsettings/list, never GET
//     (learn.microsoft.com/rest/api/appservice/web-apps/list-application-settings);
//   - every request needs "Authorization: Bearer {Token()}", the token for scope Scope().
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package arm

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
)

// APIVersions are the api-versions each resource provider namespace accepts here.
var APIVersions = map[string][]string{
	"microsoft.botservice":      {"2021-05-01-preview", "2022-09-15", "2023-09-15-preview"},
	"microsoft.web":             {"2022-09-01", "2023-01-01", "2023-12-01", "2024-04-01"},
	"microsoft.authorization":   {"2020-04-01-preview", "2022-04-01"},
	"microsoft.keyvault":        {"2023-07-01"},
	"microsoft.managedidentity": {"2023-01-31"},
	// Azure/bicep-types-az generated/cognitiveservices/microsoft.cognitiveservices/2024-10-01.
	"microsoft.cognitiveservices": {"2024-10-01"},
}

// Server is the ARM stand-in.
type Server struct {
	// URL is the base URL, the value of --arm-url.
	URL string
	// Client trusts the server's certificate.
	Client *http.Client

	srv   *httptest.Server
	token string

	mu          sync.Mutex
	resources   map[string]map[string]any // by lower-cased id
	appSettings map[string]map[string]string
	roles       []roleAssignment
	requests    []string
}

type roleAssignment struct {
	id, scope, roleDefinitionID, principalID string
}

// New starts an ARM stand-in on 127.0.0.1 with a fresh TLS certificate.
func New() *Server {
	s := &Server{
		resources: map[string]map[string]any{}, appSettings: map[string]map[string]string{},
		token: "arm-" + randomHex(16),
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	s.URL, s.Client = s.srv.URL, s.srv.Client()
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Certificate is the server's TLS certificate, for clients that must trust several servers.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// Token is the bearer token the server accepts.
func (s *Server) Token() string { return s.token }

// Scope is the scope whose token the server accepts.
func (s *Server) Scope() string { return s.URL + "/.default" }

// Put stores a resource under its ARM id (the doc's "id" is set to it).
func (s *Server) Put(id string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("arm stand-in: encode %s: %w", id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("arm stand-in: %s is not a JSON object: %w", id, err)
	}
	m["id"] = id
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resources[strings.ToLower(id)] = m
	return nil
}

// Delete removes a resource.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.resources, strings.ToLower(id))
}

// PutAppSettings sets a site's app settings.
func (s *Server) PutAppSettings(siteID string, settings map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := map[string]string{}
	for k, v := range settings {
		c[k] = v
	}
	s.appSettings[strings.ToLower(siteID)] = c
}

// AddRoleAssignment assigns a role definition (full id) to a principal at a scope.
func (s *Server) AddRoleAssignment(scope, roleDefinitionID, principalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = append(s.roles, roleAssignment{
		id:    strings.TrimRight(scope, "/") + "/providers/Microsoft.Authorization/roleAssignments/" + randomHex(16),
		scope: scope, roleDefinitionID: roleDefinitionID, principalID: principalID,
	})
}

// Requests lists "METHOD path" of every request served, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

const roleAssignmentsSuffix = "/providers/microsoft.authorization/roleassignments"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)

	if r.Header.Get("Authorization") != "Bearer "+s.token {
		writeErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return
	}
	path := strings.TrimRight(r.URL.Path, "/")
	lower := strings.ToLower(path)
	if !s.checkAPIVersion(w, r, lower) {
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(lower, roleAssignmentsSuffix):
		s.listRoleAssignments(w, r, strings.TrimSuffix(lower, roleAssignmentsSuffix))
	case r.Method != http.MethodPost && strings.HasSuffix(lower, "/config/appsettings/list"):
		writeErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "app settings are listed with POST")
	case r.Method == http.MethodPost && strings.HasSuffix(lower, "/config/appsettings/list"):
		site := strings.TrimSuffix(lower, "/config/appsettings/list")
		if s.resources[site] == nil {
			writeErr(w, http.StatusNotFound, "ResourceNotFound", "The Resource '"+path+"' was not found.")
			return
		}
		props := s.appSettings[site]
		if props == nil {
			props = map[string]string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": path, "name": "appsettings", "type": "Microsoft.Web/sites/config", "properties": props})
	case r.Method == http.MethodGet:
		if doc := s.resources[lower]; doc != nil {
			writeJSON(w, http.StatusOK, doc)
			return
		}
		var list []map[string]any
		for id, doc := range s.resources {
			if strings.HasPrefix(id, lower+"/") && !strings.Contains(id[len(lower)+1:], "/") {
				list = append(list, doc)
			}
		}
		if list == nil && !isCollection(lower) {
			writeErr(w, http.StatusNotFound, "ResourceNotFound", "The Resource '"+path+"' was not found.")
			return
		}
		slices.SortFunc(list, func(a, b map[string]any) int { return strings.Compare(fmt.Sprint(a["id"]), fmt.Sprint(b["id"])) })
		if list == nil {
			list = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": list})
	default:
		writeErr(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not supported on "+path)
	}
}

// isCollection reports whether a path names a resource type under a provider (odd number
// of segments after /providers/{namespace}), such as …/providers/Microsoft.Web/sites.
func isCollection(path string) bool {
	i := strings.LastIndex(path, "/providers/")
	if i < 0 {
		return false
	}
	rest := strings.Split(strings.Trim(path[i+len("/providers/"):], "/"), "/")
	return len(rest) >= 2 && len(rest)%2 == 0
}

func (s *Server) checkAPIVersion(w http.ResponseWriter, r *http.Request, lower string) bool {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeErr(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	}
	ns := ""
	if i := strings.LastIndex(lower, "/providers/"); i >= 0 {
		ns = strings.SplitN(lower[i+len("/providers/"):], "/", 2)[0]
	}
	supported, ok := APIVersions[ns]
	if !ok {
		writeErr(w, http.StatusBadRequest, "InvalidResourceNamespace", "The resource namespace '"+ns+"' is invalid.")
		return false
	}
	if !slices.Contains(supported, v) {
		writeErr(w, http.StatusBadRequest, "NoRegisteredProviderFound",
			fmt.Sprintf("No registered resource provider found for API version '%s' in namespace '%s'. The supported api-versions are '%s'.", v, ns, strings.Join(supported, ", ")))
		return false
	}
	return true
}

func (s *Server) listRoleAssignments(w http.ResponseWriter, r *http.Request, scope string) {
	filter := strings.TrimSpace(r.URL.Query().Get("$filter"))
	atScope := false
	principal := ""
	switch {
	case filter == "":
	case filter == "atScope()":
		atScope = true
	case strings.HasPrefix(filter, "principalId eq '") && strings.HasSuffix(filter, "'"):
		principal = strings.TrimSuffix(strings.TrimPrefix(filter, "principalId eq '"), "'")
	default:
		writeErr(w, http.StatusBadRequest, "UnsupportedQuery", "The filter '"+filter+"' is not supported.")
		return
	}
	out := []map[string]any{}
	for _, ra := range s.roles {
		rs := strings.ToLower(strings.TrimRight(ra.scope, "/"))
		above := rs == scope || strings.HasPrefix(scope, rs+"/")
		below := strings.HasPrefix(rs, scope+"/")
		if !above && (atScope || !below) {
			continue
		}
		if principal != "" && !strings.EqualFold(principal, ra.principalID) {
			continue
		}
		out = append(out, map[string]any{
			"id": ra.id, "type": "Microsoft.Authorization/roleAssignments",
			"name": ra.id[strings.LastIndex(ra.id, "/")+1:],
			"properties": map[string]any{
				"scope": ra.scope, "roleDefinitionId": ra.roleDefinitionID,
				"principalId": ra.principalID, "principalType": "ServicePrincipal",
			},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
