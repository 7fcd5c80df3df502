package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/onbehalf/onbehalf/internal/keyring"
)

// Setup is what Open needs: the token-store settings (as read by the config package) and the
// runtime pieces.
//
// Example (in Azure):
//
//	store, err := tokenstore.Open(ctx, tokenstore.Setup{
//		TableEndpoint: cfg.TokenStore.TableEndpoint, // TOKENSTORE_TABLE_ENDPOINT
//		KeyVaultURL:   cfg.TokenStore.KeyVaultURL,   // TOKENSTORE_KEYVAULT_URL
//		KeyName:       cfg.TokenStore.KeyName,       // TOKENSTORE_KEY_NAME
//		InAzure:       cfg.InAzure,
//		Credential:    managedIdentityCredential,
//		Logger:        logger,
//	})
type Setup struct {
	// TableEndpoint (with Credential) or ConnectionString (local only): where the tables are.
	TableEndpoint    string
	ConnectionString string
	// KeyVaultURL and KeyName locate the key secret; DevKey (32 bytes, local only) replaces them.
	KeyVaultURL string
	KeyName     string
	DevKey      []byte
	// InAzure refuses the local-only settings.
	InAzure bool
	// Credential is the managed identity, for TableEndpoint and KeyVaultURL.
	Credential azcore.TokenCredential
	// TableHTTPClient and KeyVaultHTTPClient, if set, carry the requests. Nil: SDK defaults.
	TableHTTPClient    *http.Client
	KeyVaultHTTPClient *http.Client
	// Logger receives Key Vault outage warnings.
	Logger *slog.Logger
}

// Open builds the keyring and the Store from settings, preferring Key Vault over a dev key,
// and creates the tables if missing.
func Open(ctx context.Context, s Setup) (*Store, error) {
	if s.InAzure && s.ConnectionString != "" {
		return nil, errors.New("tokenstore: TOKENSTORE_CONNECTION_STRING is refused when running in Azure; use TOKENSTORE_TABLE_ENDPOINT")
	}
	var keys Keys
	switch {
	case s.KeyVaultURL != "":
		v, err := keyring.NewVault(keyring.VaultOptions{
			VaultURL: s.KeyVaultURL, SecretName: s.KeyName, Credential: s.Credential,
			HTTPClient: s.KeyVaultHTTPClient, Logger: s.Logger,
		})
		if err != nil {
			return nil, err
		}
		keys = v
	case s.DevKey != nil:
		k, err := keyring.NewDevKey(s.DevKey, s.InAzure)
		if err != nil {
			return nil, err
		}
		keys = k
	default:
		return nil, errors.New("tokenstore: no key: set TOKENSTORE_KEYVAULT_URL (or TOKENSTORE_DEV_KEY for local development)")
	}
	st, err := New(ctx, Options{
		TableEndpoint: s.TableEndpoint, Credential: s.Credential, ConnectionString: s.ConnectionString,
		Keys: keys, HTTPClient: s.TableHTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("tokenstore: open: %w", err)
	}
	return st, nil
}
