package app

import (
	"strings"

	"github.com/onbehalf/onbehalf/internal/audit"
	"github.com/onbehalf/onbehalf/internal/config"
)

// sendAuditEvents adds the Application Insights sink when the connection string is set: the
// records then also land in customEvents, sent as the managed identity.
func (a *App) sendAuditEvents(cfg *config.Config, opts Options) error {
	if !cfg.AppInsights.Configured() {
		return nil
	}
	cred := opts.MonitorCredential
	if cred == nil {
		mi, err := managedIdentity(cfg, opts)
		if err != nil {
			return err
		}
		cred = mi
	}
	scope := ""
	if aud := cfg.AppInsights.Audience; aud != "" {
		scope = strings.TrimRight(aud, "/") + "//.default"
	}
	a.AuditEvents = &audit.EventSink{
		Endpoint: cfg.AppInsights.IngestionEndpoint, IKey: cfg.AppInsights.InstrumentationKey,
		Credential: cred, Scope: scope, HTTPClient: opts.HTTPClient, Log: opts.Log,
	}
	a.Audit.Sinks = append(a.Audit.Sinks, a.AuditEvents)
	return nil
}
