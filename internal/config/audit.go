package config

import (
	"strconv"
	"strings"
	"time"
)

// AppInsights is where audit records go as Application Insights custom events, from the
// connection string the Functions host itself uses (learn.microsoft.com azure-monitor/app/
// sdk-connection-string):
//
//	APPLICATIONINSIGHTS_CONNECTION_STRING=InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/
//
// Events are sent with a Microsoft Entra token of the managed identity
// (BOT_MANAGED_IDENTITY_CLIENT_ID), which needs Monitoring Metrics Publisher on the component.
type AppInsights struct {
	// IngestionEndpoint is the connection string's IngestionEndpoint, without a trailing slash.
	IngestionEndpoint string
	// InstrumentationKey is the connection string's InstrumentationKey (an identifier, not a
	// secret once local authentication is disabled).
	InstrumentationKey string
	// Audience is the connection string's AADAudience (sovereign clouds); empty: the public
	// cloud's https://monitor.azure.com.
	Audience string
}

// Configured reports whether custom events can be sent.
func (a AppInsights) Configured() bool {
	return a.IngestionEndpoint != "" && a.InstrumentationKey != ""
}

// DefaultKeepAliveDays is how many days a refresh token may go unused before an active user's
// connection is refreshed in the background (CONNECTION_KEEPALIVE_DAYS).
const DefaultKeepAliveDays = 30

func (r *reader) audit(c *Config) {
	if v := r.str("APPLICATIONINSIGHTS_CONNECTION_STRING"); v != "" {
		ai, ok := parseAIConnectionString(v)
		if !ok {
			r.fail("APPLICATIONINSIGHTS_CONNECTION_STRING", "needs InstrumentationKey=<guid> and an https IngestionEndpoint=")
		} else {
			c.AppInsights = ai
		}
	}
	c.KeepAliveAfter = DefaultKeepAliveDays * 24 * time.Hour
	if v := r.str("CONNECTION_KEEPALIVE_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 0 || n > 80:
			r.fail("CONNECTION_KEEPALIVE_DAYS", "must be a whole number of days from 0 (off) to 80 (Atlassian refresh tokens lapse after 90 days unused)")
		case n == 0:
			c.KeepAliveAfter = -1
		default:
			c.KeepAliveAfter = time.Duration(n) * 24 * time.Hour
		}
	}
}

func parseAIConnectionString(v string) (AppInsights, bool) {
	var ai AppInsights
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "instrumentationkey":
			ai.InstrumentationKey = strings.TrimSpace(val)
		case "aadaudience":
			ai.Audience = strings.TrimSpace(val)
		case "ingestionendpoint":
			ai.IngestionEndpoint = strings.TrimRight(strings.TrimSpace(val), "/")
		}
	}
	ok := IsGUID(ai.InstrumentationKey) && strings.HasPrefix(strings.ToLower(ai.IngestionEndpoint), "https://")
	return ai, ok
}
