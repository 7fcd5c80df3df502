package stack

import (
	"github.com/onbehalf/onbehalf/internal/testenv/graphuser"
	"github.com/onbehalf/onbehalf/internal/testenv/tokenservice"
)

// SSO is the sign-in side of a stack: the Bot Service token API for the bot's OAuth
// connection and Microsoft Graph, both trusting the stack's Entra tenant.
type SSO struct {
	TokenService *tokenservice.Server
	Graph        *graphuser.Server
	// Connection is the OAuth connection name (BOT_OAUTH_CONNECTION).
	Connection string
}

// StartSSO starts the token service for the OAuth connection and the Graph stand-in. Close
// them with (*SSO).Close.
func (s *Stack) StartSSO(connection string) *SSO {
	return &SSO{
		TokenService: tokenservice.New(s.Entra, BotAppID, connection),
		Graph:        graphuser.New(s.Entra),
		Connection:   connection,
	}
}

// Close stops the token service and Graph.
func (x *SSO) Close() {
	x.TokenService.Close()
	x.Graph.Close()
}

// Env returns the settings that point the handler at them; merge with (*Stack).Env.
func (x *SSO) Env() map[string]string {
	return map[string]string{
		"BOTFRAMEWORK_TOKEN_SERVICE_URL": x.TokenService.URL,
		"GRAPH_URL":                      x.Graph.URL,
		"BOT_OAUTH_CONNECTION":           x.Connection,
	}
}
