// Package stack starts the stand-ins a deployed bot talks to — an Entra tenant with the bot's
// secret-free app registration, its user-assigned managed identity, and the Bot Framework
// channel — wired as a real deployment is, and gives the settings that point the handler at
// them.
package stack

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Fixed identities of the test deployment.
const (
	TenantID = "72f988bf-0000-4000-8000-000000000001"
	BotAppID = "b07a0000-0000-4000-8000-000000000002"
)

// BotRequiredResourceAccess is the delegated permissions the bot's app registration lists:
// the Microsoft Graph scopes of GRAPH_SCOPES' default, Azure AI Search's user_impersonation and
// its own access_as_user, so that one combined consent (a sign-in for
// api://botid-{appId}/.default) covers both the token for the bot's API and the scopes OBO needs.
func BotRequiredResourceAccess() map[string][]string {
	return map[string][]string{
		entra.GraphResource:       {"User.Read", "Mail.Read", "Files.Read.All"},
		"api://botid-" + BotAppID: {entra.SSOScope},
		// Azure AI Search's delegated permission, for the knowledge base queried as the user.
		SearchResource: {"user_impersonation"},
	}
}

// SearchResource is Azure AI Search's resource identifier.
const SearchResource = "https://search.azure.com"

// Stack is a running set of stand-ins.
type Stack struct {
	Entra   *entra.Server
	Channel *channel.Server
	// MIClientID and MIPrincipal identify this stack's user-assigned managed identity. Each
	// stack has its own: MSAL caches managed-identity tokens process-wide by client id.
	MIClientID  string
	MIPrincipal string
}

// New starts the stand-ins. Close them with Close.
func New() *Stack {
	e := entra.New(TenantID)
	logcheck.Issue("managed-identity header", e.IdentityHeader)
	miClient, miPrincipal := uuid.NewString(), uuid.NewString()
	e.AddManagedIdentity(entra.ManagedIdentity{ClientID: miClient, PrincipalID: miPrincipal})
	// The bot's app registration has no secret: federated credential #1 trusts the managed
	// identity (issuer = the tenant, subject = the identity's principal id).
	e.AddApp(entra.App{ClientID: BotAppID, FederatedCredentials: []entra.FederatedCredential{{
		Issuer: e.Issuer(), Subject: miPrincipal, Audiences: []string{entra.TokenExchangeAud},
	}}, RequiredResourceAccess: BotRequiredResourceAccess()})
	// Admin consent is the recommended deployment; tests of a tenant without it revoke it.
	e.GrantAdminConsent(BotAppID)
	ch := channel.New()
	ch.RequireBotToken(func(tok string) error {
		claims, err := e.Verify(tok, channel.ConnectorAudience)
		if err != nil {
			return err
		}
		if claims["appid"] != BotAppID && claims["azp"] != BotAppID {
			return fmt.Errorf("token is not the bot's (appid %v)", claims["appid"])
		}
		return nil
	})
	return &Stack{Entra: e, Channel: ch, MIClientID: miClient, MIPrincipal: miPrincipal}
}

// Close stops every stand-in.
func (s *Stack) Close() {
	s.Channel.Close()
	s.Entra.Close()
}

// Env returns the handler settings (and the App Service managed-identity variables) that
// point at the stand-ins, as a deployed Function App would have them.
func (s *Stack) Env() map[string]string {
	return map[string]string{
		"BOT_APP_ID":                       BotAppID,
		"BOT_TENANT_ID":                    TenantID,
		"BOT_MANAGED_IDENTITY_CLIENT_ID":   s.MIClientID,
		"ENTRA_AUTHORITY_HOST":             s.Entra.URL,
		"BOTFRAMEWORK_OPENID_METADATA_URL": s.Channel.MetadataURL,
		"IDENTITY_ENDPOINT":                s.Entra.IdentityEndpoint,
		"IDENTITY_HEADER":                  s.Entra.IdentityHeader,
		// The per-user rate limit is off here: most tests (and the benchmark) send one user's
		// requests far faster than a person would. The tests about the limit set it.
		"USER_RATE_LIMIT": "0",
	}
}

// Getenv returns a lookup over Env plus extra (extra wins; "" deletes).
func (s *Stack) Getenv(extra map[string]string) func(string) string {
	env := s.Env()
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// HTTPClient trusts the stand-ins' certificates.
func (s *Stack) HTTPClient() *http.Client { return testenv.SharedCA().Client() }

// EnvList renders Env plus extra as KEY=VALUE pairs for a child process.
func (s *Stack) EnvList(extra map[string]string) []string {
	env := s.Env()
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
