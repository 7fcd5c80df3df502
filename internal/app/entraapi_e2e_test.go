package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
	tenv "github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// companyAPI is an organisation's own API protected by Entra: it accepts only delegated tokens
// for its own audience and answers with what the calling user may see.
type companyAPI struct {
	url      string
	tenant   atomic.Pointer[tenv.Server]
	refuse   atomic.Int32 // answer the next n requests with 401, as after a revocation
	requests atomic.Int32
	outside  atomic.Int32 // requests for paths outside /api
}

func startCompanyAPI(t *testing.T) *companyAPI {
	api := &companyAPI{}
	srv := testenv.SharedCA().NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.requests.Add(1)
		if r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/") {
			api.outside.Add(1)
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := api.tenant.Load().Verify(tok, "api://contoso-hr")
		if !ok || err != nil || claims["scp"] == nil || api.refuse.Add(-1) >= 0 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/me/leave" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"employee": claims["name"], "daysLeft": 12})
	}))
	t.Cleanup(srv.Close)
	api.url = srv.URL + "/api"
	return api
}

// The extension point for a company's own API: "api <name> <path>" calls it as the user, with
// a token obtained on their behalf; a 401 gets one fresh token; other origins get nothing.
func TestEntraAPIConnectorCallsAsTheUser(t *testing.T) {
	api := startCompanyAPI(t)
	h := newSSOHarness(t, map[string]string{
		"ENTRA_APIS": `[{"name":"contoso","display":"Contoso HR","baseUrl":"` + api.url + `","scopes":["api://contoso-hr/access_as_user"]}]`,
	})
	api.tenant.Store(h.st.Entra)
	api.refuse.Store(0)
	// The company API is among the permissions an administrator consented to for the bot.
	h.st.Entra.SetPermissions(stack.BotAppID, "api://contoso-hr", "access_as_user")
	c := h.client(alice)
	ctx := ctxTimeout(t, 15*time.Second)

	// First use: sign-in card, silent exchange, then the parked call is answered.
	c.Say(ctx, "api contoso /me/leave")
	if _, err := c.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if res, err := c.ExchangeSSO(ctx, 1, tenv.SSOOptions{}); err != nil || res[0].Status != http.StatusOK {
		t.Fatalf("exchange: %v %+v\n%s", err, res, h.logs.String())
	}
	rep, _ := c.WaitReplies(ctx, 2)
	if got := texts(rep[1:]); !strings.Contains(got, `"employee":"Alice Example"`) || !strings.Contains(got, "HTTP 200") {
		t.Fatalf("the API was not called as Alice:\n%s\n%s", got, h.logs.String())
	}
	if n := h.st.Entra.OBOCount("api://contoso-hr"); n != 1 {
		t.Fatalf("%d OBO requests for the API, want 1", n)
	}

	// The API refuses the token once (revoked): one fresh token, then the answer.
	api.refuse.Store(1)
	c.Say(ctx, "api contoso /me/leave")
	rep, _ = c.WaitReplies(ctx, 3)
	if got := texts(rep[2:]); !strings.Contains(got, `"employee":"Alice Example"`) {
		t.Fatalf("no answer after one refused token:\n%s", got)
	}

	// A path cannot leave the API's base: "/../admin" is resolved inside it.
	c.Say(ctx, "api contoso /../admin")
	rep, _ = c.WaitReplies(ctx, 4)
	if api.outside.Load() != 0 || !strings.Contains(texts(rep[3:]), "cannot see that") {
		t.Fatalf("a request left the API's base path (%d), or no answer:\n%s", api.outside.Load(), texts(rep[3:]))
	}
}
