package logcheck

import (
	"encoding/base64"
	"fmt"
	"sort"
	"testing"
)

// Row is one Table Storage entity as the service returns it: every property, system ones
// (PartitionKey, RowKey, Timestamp, odata.etag) included.
type Row struct {
	Table      string
	Properties map[string]any
}

// RowFinding is a property that must not be in a table.
type RowFinding struct {
	Table, PartitionKey, RowKey, Property string
	Secret                                Secret
}

func (f RowFinding) String() string {
	return fmt.Sprintf("table %s row %s/%s property %s: %s", f.Table, f.PartitionKey, f.RowKey, f.Property, Describe(f.Secret))
}

// sealedFormat is the first byte of a value package seal writes (seal.FormatV1); 1 + 12-byte
// nonce + 16-byte tag is the shortest sealed value.
const (
	sealedFormat = 0x01
	sealedMin    = 1 + 12 + 16
)

// FindInRows returns the properties of rows that hold a secret: an issued value, a secret
// shape (Shapes), or an opaque value that is not sealed. Opaque means at least 24 characters
// of the base64 alphabet mixing upper case, lower case and digits — how tokens, keys and
// ciphertexts look; ids, hex hashes, key versions, timestamps and ETags do not. Such a value
// must decode (standard base64) to a sealed value: format byte 0x01 and at least nonce and tag.
func FindInRows(rows []Row) []RowFinding {
	idx := newIndex(Issued())
	var out []RowFinding
	for _, r := range rows {
		pk, _ := r.Properties["PartitionKey"].(string)
		rk, _ := r.Properties["RowKey"].(string)
		names := make([]string, 0, len(r.Properties))
		for n := range r.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v, ok := r.Properties[n].(string)
			if !ok {
				continue
			}
			found := findWith(idx, v)
			for _, s := range found {
				out = append(out, RowFinding{r.Table, pk, rk, n, s})
			}
			if len(found) == 0 && opaque(v) && !sealed(v) {
				out = append(out, RowFinding{r.Table, pk, rk, n, Secret{Kind: "unsealed opaque value", Value: v}})
			}
		}
	}
	return out
}

// WatchTables makes t fail at its end when the rows the function then returns hold a secret
// (FindInRows). Register it after the storage server's own cleanup (so it runs before the
// server stops) and before the handler's (so the handler has stopped writing).
func WatchTables(t testing.TB, rows func() ([]Row, error)) {
	t.Helper()
	t.Cleanup(func() {
		rs, err := rows()
		if err != nil {
			t.Errorf("logcheck: list the tables: %v", err)
			return
		}
		for _, f := range FindInRows(rs) {
			t.Errorf("logcheck: found in Table Storage: %s", f)
		}
	})
}

func opaque(v string) bool {
	if len(v) < 24 {
		return false
	}
	var upper, lower, digit bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '+' || c == '/' || c == '-' || c == '_' || c == '=':
		default:
			return false
		}
	}
	return upper && lower && digit
}

func sealed(v string) bool {
	b, err := base64.StdEncoding.DecodeString(v)
	return err == nil && len(b) >= sealedMin && b[0] == sealedFormat
}
