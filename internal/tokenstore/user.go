package tokenstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// UserKey identifies a user by Entra tenant id (tid) and object id (oid). Take both only from
// validated tokens or authenticated activities, never from free text.
type UserKey struct {
	TenantID string
	ObjectID string
}

// Validate checks that both ids are GUIDs (8-4-4-4-12 hex digits).
func (u UserKey) Validate() error {
	if !isGUID(u.TenantID) {
		return fmt.Errorf("%w: tenant id is not a GUID", ErrInvalid)
	}
	if !isGUID(u.ObjectID) {
		return fmt.Errorf("%w: object id is not a GUID", ErrInvalid)
	}
	return nil
}

// Partition is the user's partition key: hex SHA-256 of a labelled "tid|oid" in lower case. It
// is stable, reveals neither id, and contains no character Table Storage forbids in keys.
func (u UserKey) Partition() string {
	sum := sha256.Sum256([]byte("onbehalf/user\x00" + strings.ToLower(u.TenantID) + "|" + strings.ToLower(u.ObjectID)))
	return hex.EncodeToString(sum[:])
}

// String is a log-safe, shortened partition: enough to correlate lines, never the ids.
func (u UserKey) String() string { return "user:" + u.Partition()[:12] }

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// hashKey hashes free-form parts (connector names, resources, states, ids) into a row-key
// component: fixed length, no forbidden characters, and nothing readable in the table.
func hashKey(label string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(label))
	// Length prefixes keep ("ab","c") and ("a","bc") apart.
	for _, p := range parts {
		h.Write(binary.AppendUvarint(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
