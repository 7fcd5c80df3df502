// Package graph is a Microsoft Graph stand-in for tests (never imported by production code):
// a real HTTPS server with the application, federated identity credential, service principal
// and oAuth2PermissionGrant endpoints the doctor uses, enforcing the rules Graph documents for
// them. Objects are kept as generic JSON so nothing a client sends or reads is lost.
//
// Sources (microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0):
//   - api/application-get.md, api/application-update.md: address an app by id or
//     applications(appId='{appId}'); PATCH changes only the properties in the body and answers
//     204 No Content; passwordCredentials cannot be set with PATCH (addPassword/removePassword).
//   - resources/permissionscope.md (isEnabled): "To delete a permission, this property must
//     first be set to false. At that point, in a subsequent call, the permission may be
//     removed." Graph answers CannotDeleteOrUpdateEnabledEntitlement otherwise.
//   - resources/preauthorizedapplication.md: delegatedPermissionIds are ids of the app's
//     oauth2PermissionScopes.
//   - resources/apiapplication.md: requestedAccessTokenVersion is 1, 2 or null, and must be 2
//     when signInAudience is AzureADandPersonalMicrosoftAccount.
//   - api/application-post-federatedidentitycredentials.md: at most 20 per app; audiences takes
//     a single value; issuer+subject unique within the app.
//   - api/oauth2permissiongrant-list.md: $filter on clientId.
//   - OData 4.01 Part 1 §11.4.3 (Update an Entity): in PATCH, complex-typed properties are
//     merged property by property, collections are replaced whole.
//
// Every request needs "Authorization: Bearer {Token()}", the token for scope Scope() (see
// testenv/azuretoken), so a client asking for the wrong audience is refused.
//
// The external behaviours it stands for, with their public sources, are listed in
// docs/fidelity.md; change a row there when a rule here changes.
package graph

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Server is the Graph stand-in.
type Server struct {
	// URL is the base URL (https://127.0.0.1:port), the value of --graph-url.
	URL string
	// Client trusts the server's certificate.
	Client *http.Client

	srv   *httptest.Server
	token string

	mu       sync.Mutex
	apps     map[string]map[string]any // by object id
	fics     map[string][]map[string]any
	sps      map[string]map[string]any // by appId
	grants   []map[string]any
	requests []string
}

// New starts a Graph stand-in on 127.0.0.1 with a fresh TLS certificate.
func New() *Server {
	s := &Server{
		apps: map[string]map[string]any{}, fics: map[string][]map[string]any{},
		sps: map[string]map[string]any{}, token: "graph-" + randomHex(16),
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

// PutApp stores an application object (any JSON-encodable value with "id" and "appId").
func (s *Server) PutApp(app any) error {
	m, err := toMap(app)
	if err != nil {
		return err
	}
	id, _ := m["id"].(string)
	if id == "" || m["appId"] == nil {
		return errors.New("graph stand-in: an application needs id and appId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[id] = m
	return nil
}

// PutFederatedCredential stores a federated identity credential on the app with that object id.
func (s *Server) PutFederatedCredential(appObjectID string, fic any) error {
	m, err := toMap(fic)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fics[appObjectID] = append(s.fics[appObjectID], m)
	return nil
}

// PutServicePrincipal stores a service principal (with "id" and "appId").
func (s *Server) PutServicePrincipal(sp any) error {
	m, err := toMap(sp)
	if err != nil {
		return err
	}
	appID, _ := m["appId"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sps[strings.ToLower(appID)] = m
	return nil
}

// PutGrant stores an oAuth2PermissionGrant.
func (s *Server) PutGrant(g any) error {
	m, err := toMap(g)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants = append(s.grants, m)
	return nil
}

// App returns a copy of the application with that appId, or nil.
func (s *Server) App(appID string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.appByAppID(appID); a != nil {
		c, _ := toMap(a)
		return c
	}
	return nil
}

// Requests lists "METHOD path" of every request served, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *Server) appByAppID(appID string) map[string]any {
	for _, a := range s.apps {
		if v, _ := a["appId"].(string); strings.EqualFold(v, appID) {
			return a
		}
	}
	return nil
}

var (
	byAppIDRE = regexp.MustCompile(`^/v1\.0/applications\(appId='([^']+)'\)(/federatedIdentityCredentials)?$`)
	byIDRE    = regexp.MustCompile(`^/v1\.0/applications/([^/]+)(/federatedIdentityCredentials)?$`)
	spRE      = regexp.MustCompile(`^/v1\.0/servicePrincipals\(appId='([^']+)'\)$`)
	grantsRE  = regexp.MustCompile(`^clientId eq '([^']+)'$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)

	if r.Header.Get("Authorization") != "Bearer "+s.token {
		writeErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty or invalid.")
		return
	}
	path := r.URL.Path
	switch {
	case byAppIDRE.MatchString(path):
		m := byAppIDRE.FindStringSubmatch(path)
		s.application(w, r, s.appByAppID(m[1]), m[2] != "")
	case byIDRE.MatchString(path):
		m := byIDRE.FindStringSubmatch(path)
		s.application(w, r, s.apps[m[1]], m[2] != "")
	case spRE.MatchString(path):
		if r.Method != http.MethodGet {
			writeErr(w, http.StatusMethodNotAllowed, "Request_BadRequest", "method not supported here")
			return
		}
		sp := s.sps[strings.ToLower(spRE.FindStringSubmatch(path)[1])]
		if sp == nil {
			writeErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present.")
			return
		}
		writeJSON(w, http.StatusOK, sp)
	case path == "/v1.0/servicePrincipals":
		s.listServicePrincipals(w, r)
	case path == "/v1.0/oauth2PermissionGrants":
		s.listGrants(w, r)
	default:
		writeErr(w, http.StatusNotFound, "Request_ResourceNotFound", "unsupported path "+path)
	}
}

func (s *Server) application(w http.ResponseWriter, r *http.Request, app map[string]any, fics bool) {
	if app == nil {
		writeErr(w, http.StatusNotFound, "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present.")
		return
	}
	objectID, _ := app["id"].(string)
	switch {
	case fics && r.Method == http.MethodGet:
		list := s.fics[objectID]
		if list == nil {
			list = []map[string]any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": list})
	case fics && r.Method == http.MethodPost:
		s.createFIC(w, r, objectID)
	case !fics && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, app)
	case !fics && r.Method == http.MethodPatch:
		s.patchApp(w, r, app)
	default:
		writeErr(w, http.StatusMethodNotAllowed, "Request_BadRequest", "method not supported here")
	}
}

func (s *Server) createFIC(w http.ResponseWriter, r *http.Request, objectID string) {
	var f map[string]any
	if err := decodeBody(r, &f); err != nil {
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	name, _ := f["name"].(string)
	issuer, _ := f["issuer"].(string)
	subject, _ := f["subject"].(string)
	aud, _ := f["audiences"].([]any)
	switch {
	case name == "" || issuer == "" || subject == "":
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", "name, issuer and subject are required")
		return
	case len(aud) != 1:
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", "audiences must hold exactly one value")
		return
	case len(s.fics[objectID]) >= 20:
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", "an application can have at most 20 federated identity credentials")
		return
	}
	for _, g := range s.fics[objectID] {
		if g["name"] == name || (g["issuer"] == issuer && g["subject"] == subject) {
			writeErr(w, http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", "a federated identity credential with this name or issuer and subject exists")
			return
		}
	}
	f["id"] = newGUID()
	s.fics[objectID] = append(s.fics[objectID], f)
	writeJSON(w, http.StatusCreated, f)
}

func (s *Server) patchApp(w http.ResponseWriter, r *http.Request, app map[string]any) {
	var patch map[string]any
	if err := decodeBody(r, &patch); err != nil {
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", err.Error())
		return
	}
	for _, ro := range []string{"id", "appId"} {
		if v, ok := patch[ro]; ok && v != app[ro] {
			writeErr(w, http.StatusBadRequest, "Request_BadRequest", "Property '"+ro+"' is read-only and cannot be set.")
			return
		}
	}
	if _, ok := patch["passwordCredentials"]; ok {
		writeErr(w, http.StatusBadRequest, "Request_BadRequest", "passwordCredentials cannot be updated with PATCH: use addPassword and removePassword")
		return
	}
	next, _ := toMap(app)
	merge(next, patch)
	if code, msg := validateApp(app, next); code != "" {
		writeErr(w, http.StatusBadRequest, code, msg)
		return
	}
	for k := range app {
		delete(app, k)
	}
	for k, v := range next {
		app[k] = v
	}
	w.WriteHeader(http.StatusNoContent)
}

// merge applies a PATCH body: objects merge recursively, everything else (collections
// included) replaces the old value (OData 4.01 §11.4.3).
func merge(dst, patch map[string]any) {
	for k, v := range patch {
		pv, pIsObj := v.(map[string]any)
		dv, dIsObj := dst[k].(map[string]any)
		if pIsObj && dIsObj {
			merge(dv, pv)
			continue
		}
		dst[k] = v
	}
}

// validateApp enforces the documented rules on the app as it would be after a PATCH.
func validateApp(before, after map[string]any) (code, msg string) {
	oldScopes := scopesOf(before)
	newScopes := scopesOf(after)
	newByID := map[string]map[string]any{}
	values := map[string]bool{}
	for _, sc := range newScopes {
		id, _ := sc["id"].(string)
		val, _ := sc["value"].(string)
		if !guidRE.MatchString(id) || val == "" {
			return "Request_BadRequest", "every permission scope needs a GUID id and a value"
		}
		if newByID[id] != nil || values[val] {
			return "Request_BadRequest", "permission scope ids and values must be unique"
		}
		newByID[id], values[val] = sc, true
	}
	for _, old := range oldScopes {
		if enabled, _ := old["isEnabled"].(bool); !enabled {
			continue
		}
		id, _ := old["id"].(string)
		nu := newByID[id]
		if nu == nil || !sameExceptEnabled(old, nu) {
			return "CannotDeleteOrUpdateEnabledEntitlement", "Permission (scope or role) cannot be deleted or updated unless disabled first."
		}
	}
	if api, ok := after["api"].(map[string]any); ok {
		pre, _ := api["preAuthorizedApplications"].([]any)
		for _, p := range pre {
			pm, _ := p.(map[string]any)
			ids, _ := pm["delegatedPermissionIds"].([]any)
			for _, id := range ids {
				s, _ := id.(string)
				if newByID[s] == nil {
					return "Request_BadRequest", fmt.Sprintf("Property PreAuthorizedApplication references a permission %s that is not among the application's oauth2PermissionScopes.", s)
				}
			}
		}
		switch v := api["requestedAccessTokenVersion"].(type) {
		case nil:
		case float64:
			if v != 1 && v != 2 {
				return "Request_BadRequest", "requestedAccessTokenVersion must be 1, 2 or null"
			}
			if aud, _ := after["signInAudience"].(string); aud == "AzureADandPersonalMicrosoftAccount" && v != 2 {
				return "Request_BadRequest", "requestedAccessTokenVersion must be 2 for AzureADandPersonalMicrosoftAccount"
			}
		default:
			return "Request_BadRequest", "requestedAccessTokenVersion must be a number"
		}
	}
	uris, _ := after["identifierUris"].([]any)
	for _, u := range uris {
		s, _ := u.(string)
		if p, err := url.Parse(s); err != nil || p.Scheme == "" || p.Host == "" {
			return "Request_BadRequest", "identifierUris holds an invalid URI: " + s
		}
	}
	if web, ok := after["web"].(map[string]any); ok {
		redirects, _ := web["redirectUris"].([]any)
		for _, u := range redirects {
			s, _ := u.(string)
			p, err := url.Parse(s)
			if err != nil || (p.Scheme != "https" && !(p.Scheme == "http" && p.Hostname() == "localhost")) {
				return "Request_BadRequest", "web redirect URIs must use https (or http://localhost): " + s
			}
		}
	}
	return "", ""
}

func scopesOf(app map[string]any) []map[string]any {
	api, _ := app["api"].(map[string]any)
	list, _ := api["oauth2PermissionScopes"].([]any)
	var out []map[string]any
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func sameExceptEnabled(a, b map[string]any) bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		if k == "isEnabled" {
			continue
		}
		av, bv := a[k], b[k]
		if av == "" {
			av = nil
		}
		if bv == "" {
			bv = nil
		}
		if fmt.Sprint(av) != fmt.Sprint(bv) {
			return false
		}
	}
	return true
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeErr(w, http.StatusMethodNotAllowed, "Request_BadRequest", "method not supported here")
		return
	}
	filter := r.URL.Query().Get("$filter")
	m := grantsRE.FindStringSubmatch(filter)
	if filter != "" && m == nil {
		writeErr(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified")
		return
	}
	out := []map[string]any{}
	for _, g := range s.grants {
		if m == nil || strings.EqualFold(fmt.Sprint(g["clientId"]), m[1]) {
			out = append(out, g)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func decodeBody(r *http.Request, into any) error {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return errors.New("Content-Type must be application/json")
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("graph stand-in: encode: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("graph stand-in: not a JSON object: %w", err)
	}
	return m, nil
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

func newGUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}
