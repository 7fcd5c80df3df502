package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditAndKeepAliveSettings(t *testing.T) {
	base := map[string]string{"BOT_APP_ID": appID, "BOT_TENANT_ID": tenantID, "BOT_MANAGED_IDENTITY_CLIENT_ID": miID}
	with := func(kv map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	c, err := Load(env(base))
	if err != nil || c.KeepAliveAfter != 30*24*time.Hour || c.AppInsights.Configured() {
		t.Fatalf("defaults: %v %+v %v", c.KeepAliveAfter, c.AppInsights, err)
	}
	c, err = Load(env(with(map[string]string{
		"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=" + appID + ";IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;LiveEndpoint=https://westeurope.livediagnostics.monitor.azure.com/",
		"CONNECTION_KEEPALIVE_DAYS":             "0",
	})))
	if err != nil || c.KeepAliveAfter >= 0 || c.AppInsights.IngestionEndpoint != "https://westeurope-5.in.applicationinsights.azure.com" || c.AppInsights.InstrumentationKey != appID {
		t.Fatalf("set: %v %+v %v", c.KeepAliveAfter, c.AppInsights, err)
	}
	for _, bad := range []map[string]string{
		{"CONNECTION_KEEPALIVE_DAYS": "90"},
		{"CONNECTION_KEEPALIVE_DAYS": "-1"},
		{"CONNECTION_KEEPALIVE_DAYS": "30d"},
		{"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=" + appID},
		{"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=" + appID + ";IngestionEndpoint=http://collector.example/"},
	} {
		if _, err := Load(env(with(bad))); err == nil || !strings.Contains(err.Error(), func() string {
			for k := range bad {
				return k
			}
			return ""
		}()) {
			t.Errorf("%v accepted: %v", bad, err)
		}
	}
}
