package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// HRAudience is the sandbox organisation API's identifier URI; the bot asks for its
// access_as_user scope on behalf of the user.
const HRAudience = "api://contoso-hr"

// hrAPI is an organisation's own Entra-protected API ("Contoso HR") for the api command: it
// accepts only delegated tokens from the sandbox tenant for its own audience and answers with
// the calling user's own leave balance, so each user sees only their own.
func startHRAPI(e *entra.Server, days map[string]int) *httptest.Server {
	return testenv.SharedCA().NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := e.Verify(tok, HRAudience)
		if !ok || err != nil || claims["scp"] == nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/me/leave" {
			http.NotFound(w, r)
			return
		}
		oid, _ := claims["oid"].(string)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"employee": claims["name"], "daysLeft": days[oid]})
	}))
}

// hrAPIEnv is the ENTRA_APIS setting that names the API "contoso".
func hrAPIEnv(baseURL string) string {
	b, _ := json.Marshal([]map[string]any{{"name": "contoso", "display": "Contoso HR", "baseUrl": baseURL + "/api", "scopes": []string{HRAudience + "/access_as_user"}}})
	return string(b)
}
