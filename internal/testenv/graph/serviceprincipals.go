package graph

// GET /v1.0/servicePrincipals?$filter=servicePrincipalNames/any(x:x eq 'value'): find an
// enterprise app by one of its names (a SAML app's Identifier). Sources:
// microsoft-graph-docs-contrib api-reference/v1.0/api/serviceprincipal-list.md ($filter) and
// resources/serviceprincipal.md (servicePrincipalNames: "The any operator is required for
// filter expressions on multi-valued properties"). Other filters are refused as Graph refuses
// what it does not support.

import (
	"net/http"
	"regexp"
	"strings"
)

var spNameFilterRE = regexp.MustCompile(`^servicePrincipalNames/any\((\w+):(\w+) eq '((?:[^']|'')*)'\)$`)

func (s *Server) listServicePrincipals(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeErr(w, http.StatusMethodNotAllowed, "Request_BadRequest", "method not supported here")
		return
	}
	m := spNameFilterRE.FindStringSubmatch(r.URL.Query().Get("$filter"))
	if m == nil || m[1] != m[2] {
		writeErr(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified")
		return
	}
	want := strings.ReplaceAll(m[3], "''", "'")
	out := []map[string]any{}
	for _, sp := range s.sps {
		names, _ := sp["servicePrincipalNames"].([]any)
		for _, n := range names {
			if v, _ := n.(string); v == want {
				out = append(out, sp)
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}
