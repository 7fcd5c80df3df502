package app

import (
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/onbehalf/onbehalf/internal/config"
)

// identity is the app's user-assigned managed identity, built on first use and shared by
// every Azure client that signs as it (Table Storage, Key Vault, the work queue, the model,
// Search, Application Insights), so they share one token cache.
type identity struct {
	once sync.Once
	cred azcore.TokenCredential
	err  error
}

// managedIdentity returns the managed identity named by BOT_MANAGED_IDENTITY_CLIENT_ID, using
// the outbound HTTP client of opts.
func managedIdentity(cfg *config.Config, opts Options) (azcore.TokenCredential, error) {
	id := opts.identity
	if id == nil {
		id = &identity{}
	}
	id.once.Do(func() {
		mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
			ID: azidentity.ClientID(cfg.ManagedIdentityClientID), ClientOptions: azcore.ClientOptions{Transport: opts.HTTPClient},
		})
		if err != nil {
			id.err = fmt.Errorf("managed identity: %w", err)
			return
		}
		id.cred = mi
	})
	return id.cred, id.err
}
