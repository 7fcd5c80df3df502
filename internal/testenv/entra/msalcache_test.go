package entra_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
)

// recordingCache is an external MSAL cache that keeps what MSAL exports.
type recordingCache struct {
	mu       sync.Mutex
	exported map[string][]byte // partition key → serialized cache
}

func (c *recordingCache) Replace(ctx context.Context, u cache.Unmarshaler, h cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.exported[h.PartitionKey]; ok {
		return u.Unmarshal(b)
	}
	return nil
}

func (c *recordingCache) Export(ctx context.Context, m cache.Marshaler, h cache.ExportHints) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exported[h.PartitionKey] = b
	return nil
}

// PROTOCOL.md's MSAL Go note, checked against MSAL Go v1.10.1: an OBO result is written to
// MSAL's partitioned in-memory manager, but Export is handed the other (non-OBO) manager
// (apps/internal/base/base.go AuthResultFromToken), so an external cache never receives OBO
// tokens. Keep OBO results in our own store; do not give an OBO client WithCache.
func TestMSALExternalCacheDoesNotReceiveOBOTokens(t *testing.T) {
	e := newTenant(t)
	ext := &recordingCache{exported: map[string][]byte{}}
	newApp := func() confidential.Client {
		app, err := confidential.New(e.URL+"/"+tenant, botID, mustSecret(t),
			confidential.WithHTTPClient(testenv.SharedCA().Client()), confidential.WithInstanceDiscovery(false),
			confidential.WithCache(ext))
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	sso := e.MintSSOToken(alice, entra.SSOOptions{AppID: botID, Expiry: time.Now().Add(time.Hour)})
	res, err := newApp().AcquireTokenOnBehalfOf(context.Background(), sso, []string{"https://graph.microsoft.com/User.Read"})
	if err != nil {
		t.Fatal(err)
	}
	ext.mu.Lock()
	for key, b := range ext.exported {
		if strings.Contains(string(b), res.AccessToken) {
			t.Errorf("the external cache received the OBO token under %q; MSAL's behaviour changed, revisit the token store design", key)
		}
	}
	ext.mu.Unlock()
	// Worse: what was exported under the assertion's partition key is the non-OBO cache, and a
	// second client (same external cache, same assertion) cannot load it into its OBO cache,
	// so its OBO fails after Entra has answered.
	_, err = newApp().AcquireTokenOnBehalfOf(context.Background(), sso, []string{"https://graph.microsoft.com/User.Read"})
	if err == nil {
		t.Error("a second client sharing the external cache got an OBO token; MSAL's behaviour changed, revisit the token store design")
	}
	if n := e.Count(entra.JWTBearerGrant); n != 2 {
		t.Errorf("OBO requests = %d, want 2 (nothing reused across clients)", n)
	}
}

func mustSecret(t *testing.T) confidential.Credential {
	t.Helper()
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
