// Package seal encrypts small secrets for storage with AES-256-GCM, binding each ciphertext to
// the place it is stored and to the key version that sealed it.
//
// Format (version 1): one format byte (0x01), a 12-byte random nonce, then the GCM ciphertext
// with its 16-byte tag. The associated data is not stored; it is rebuilt on Open from the
// Binding and the key version, so a ciphertext copied to another table, partition or row, or
// relabelled with another key version, fails to open.
//
// Written by hand because it is a thin, fixed composition of crypto/aes and crypto/cipher.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// FormatV1 is the first byte of every sealed value this version writes.
const FormatV1 byte = 0x01

// KeySize is the size in bytes of an AES-256 key.
const KeySize = 32

const (
	nonceSize = 12
	tagSize   = 16
	overhead  = 1 + nonceSize + tagSize
	adLabel   = "onbehalf/seal"
)

// ErrOpen is returned for every sealed value that does not open: tampered, truncated, moved to
// another place, sealed under another key, or of an unknown format. No plaintext is returned
// with it.
var ErrOpen = errors.New("seal: value does not open")

// ErrKey reports a key that is not usable (wrong size or empty version).
var ErrKey = errors.New("seal: invalid key")

// Key is one version of the sealing key. The zero Key is unusable. Safe for concurrent use.
type Key struct {
	version string
	aead    cipher.AEAD
}

// NewKey makes a Key from 32 secret bytes and the version label recorded beside each value it
// seals. The bytes are copied into the cipher state; the caller may wipe its slice afterwards.
func NewKey(version string, secret []byte) (Key, error) {
	if version == "" {
		return Key{}, fmt.Errorf("%w: empty version", ErrKey)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("%w: %d bytes, want %d", ErrKey, len(secret), KeySize)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return Key{version: version, aead: aead}, nil
}

// Version is the label of this key version (for Key Vault keys, the secret version id).
func (k Key) Version() string { return k.version }

// Valid reports whether k was made by NewKey.
func (k Key) Valid() bool { return k.aead != nil }

// Binding names where a sealed value lives. All three fields take part in the associated data.
type Binding struct {
	Table     string
	Partition string
	Row       string
}

// Seal encrypts plaintext for the place b under key k with a fresh random nonce.
func Seal(k Key, b Binding, plaintext []byte) ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("seal: %w: zero key", ErrKey)
	}
	out := make([]byte, 1+nonceSize, overhead+len(plaintext))
	out[0] = FormatV1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, associatedData(FormatV1, k.version, b)), nil
}

// Open decrypts a value sealed by Seal for the same place b under the same key version.
// Any mismatch returns ErrOpen and no plaintext.
func Open(k Key, b Binding, sealed []byte) ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("seal: %w: zero key", ErrKey)
	}
	if len(sealed) < overhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(sealed))
	}
	if sealed[0] != FormatV1 {
		return nil, fmt.Errorf("%w: unknown format 0x%02x", ErrOpen, sealed[0])
	}
	nonce := sealed[1 : 1+nonceSize]
	pt, err := k.aead.Open(nil, nonce, sealed[1+nonceSize:], associatedData(sealed[0], k.version, b))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// associatedData encodes every field with a length prefix so that no two different
// (table, partition, row, version) tuples share an encoding.
func associatedData(format byte, version string, b Binding) []byte {
	ad := make([]byte, 0, len(adLabel)+1+4*binary.MaxVarintLen32+len(b.Table)+len(b.Partition)+len(b.Row)+len(version))
	ad = append(ad, adLabel...)
	ad = append(ad, format)
	for _, f := range []string{b.Table, b.Partition, b.Row, version} {
		ad = binary.AppendUvarint(ad, uint64(len(f)))
		ad = append(ad, f...)
	}
	return ad
}
