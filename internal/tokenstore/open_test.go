package tokenstore_test

import (
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

func TestOpenFromSettings(t *testing.T) {
	e := newEnv(t)
	key := make([]byte, 32)
	for _, tc := range []struct {
		name    string
		setup   tokenstore.Setup
		wantErr string
	}{
		{"dev key locally", tokenstore.Setup{ConnectionString: e.az.ConnectionString(), DevKey: key}, ""},
		{"key vault", tokenstore.Setup{ConnectionString: e.az.ConnectionString(), KeyVaultURL: e.kv.URL(), Credential: e.kv.Credential(), KeyVaultHTTPClient: e.kv.Client()}, ""},
		{"dev key in Azure", tokenstore.Setup{TableEndpoint: "https://x.table.core.windows.net", DevKey: key, InAzure: true}, "refused when running in Azure"},
		{"connection string in Azure", tokenstore.Setup{ConnectionString: e.az.ConnectionString(), KeyVaultURL: e.kv.URL(), InAzure: true}, "refused when running in Azure"},
		{"no key", tokenstore.Setup{ConnectionString: e.az.ConnectionString()}, "no key"},
		{"short dev key", tokenstore.Setup{ConnectionString: e.az.ConnectionString(), DevKey: key[:16]}, "want 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tokenstore.Open(ctx, tc.setup)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := s.PutToken(ctx, alice, jira, sampleToken("x")); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
