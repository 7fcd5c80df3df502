// Package keyring supplies the sealing keys of the token store: the versions of one Key Vault
// secret (each version's value is the base64 of 32 random bytes), or one local development key.
//
// New writes use the newest enabled version; a stored value names the version that sealed it
// and is opened with exactly that version. Keys are cached for a bounded time; while Key Vault
// is unreachable, cached keys keep working and the failure is logged at most once per interval;
// a key not cached then fails at once for a few seconds before the vault is asked again.
// A version that is disabled, deleted, never existed, or holds a malformed value is reported as
// ErrKeyUnavailable, which the token store turns into "sign-in needed".
package keyring

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/internal/seal"
)

// ErrKeyUnavailable reports a key version that cannot be used: disabled, removed, unknown, or
// malformed. Values sealed under it cannot be opened; the user must sign in again.
var ErrKeyUnavailable = errors.New("keyring: key version unavailable")

// ErrVaultUnavailable reports that Key Vault could not be reached (or its credential could not
// get a token) and no cached key could stand in. It is transient.
var ErrVaultUnavailable = errors.New("keyring: key vault unavailable")

// Static is a fixed single-version keyring, for local development and tests.
type Static struct {
	key seal.Key
}

// NewStatic makes a keyring holding exactly one key version.
func NewStatic(version string, secret []byte) (*Static, error) {
	k, err := seal.NewKey(version, secret)
	if err != nil {
		return nil, fmt.Errorf("keyring: static key: %w", err)
	}
	return &Static{key: k}, nil
}

// NewDev decodes TOKENSTORE_DEV_KEY (standard or URL-safe base64 of 32 bytes) and calls
// NewDevKey.
func NewDev(encoded string, runningInAzure bool) (*Static, error) {
	if runningInAzure {
		return nil, errDevInAzure
	}
	secret, err := DecodeKey(encoded)
	if err != nil {
		return nil, fmt.Errorf("keyring: TOKENSTORE_DEV_KEY: %w", err)
	}
	return NewDevKey(secret, false)
}

var errDevInAzure = errors.New("keyring: TOKENSTORE_DEV_KEY is for local development and is refused when running in Azure; set TOKENSTORE_KEYVAULT_URL")

// NewDevKey makes a single-version keyring from a local development key. It refuses when
// runningInAzure is true: a key kept in app settings is for local development only. The version
// label is "dev-" plus a short fingerprint of the key, so rows sealed under a different dev key
// read as "sign-in needed", not as tampering.
func NewDevKey(secret []byte, runningInAzure bool) (*Static, error) {
	if runningInAzure {
		return nil, errDevInAzure
	}
	if len(secret) != seal.KeySize {
		return nil, fmt.Errorf("keyring: TOKENSTORE_DEV_KEY: %d bytes, want %d", len(secret), seal.KeySize)
	}
	sum := sha256.Sum256(append([]byte("onbehalf dev key id\x00"), secret...))
	return NewStatic("dev-"+hex.EncodeToString(sum[:4]), secret)
}

// DecodeKey decodes a key value: base64 (standard or URL-safe, padded or not) of exactly
// 32 bytes, surrounding white space ignored.
func DecodeKey(encoded string) ([]byte, error) {
	s := strings.TrimSpace(encoded)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(b) != seal.KeySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(b), seal.KeySize)
	}
	return b, nil
}

// Current returns the only key.
func (s *Static) Current(context.Context) (seal.Key, error) { return s.key, nil }

// Version returns the key if v is its version, else ErrKeyUnavailable.
func (s *Static) Version(_ context.Context, v string) (seal.Key, error) {
	if v != s.key.Version() {
		return seal.Key{}, fmt.Errorf("%w: version %q is not the configured key", ErrKeyUnavailable, v)
	}
	return s.key, nil
}
