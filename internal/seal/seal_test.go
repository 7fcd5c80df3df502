package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/onbehalf/onbehalf/internal/seal"
)

func mustKey(t testing.TB, version string, fill byte) seal.Key {
	t.Helper()
	k, err := seal.NewKey(version, bytes.Repeat([]byte{fill}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripUsesFreshNonce(t *testing.T) {
	k := mustKey(t, "v1", 7)
	b := seal.Binding{Table: "users", Partition: "p", Row: "r"}
	msg := []byte("refresh-token-value")
	a, err := seal.Seal(k, b, msg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := seal.Seal(k, b, msg)
	if bytes.Equal(a, c) {
		t.Fatal("two seals of the same plaintext are identical: nonce reused")
	}
	if a[0] != seal.FormatV1 {
		t.Fatalf("format byte = %#x", a[0])
	}
	if bytes.Contains(a, msg) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := seal.Open(k, b, a)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestTamperedValuesDoNotOpen(t *testing.T) {
	k1 := mustKey(t, "v1", 7)
	b := seal.Binding{Table: "users", Partition: "p", Row: "r"}
	sealed, err := seal.Seal(k1, b, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	cases := []struct {
		name  string
		key   seal.Key
		where seal.Binding
		value []byte
	}{
		{"flipped bit in ciphertext", k1, b, flip(len(sealed) - 20)},
		{"flipped bit in nonce", k1, b, flip(3)},
		{"flipped bit in tag", k1, b, flip(len(sealed) - 1)},
		{"unknown format", k1, b, flip(0)},
		{"truncated", k1, b, sealed[:len(sealed)-1]},
		{"too short", k1, b, sealed[:5]},
		{"empty", k1, b, nil},
		{"other row", k1, seal.Binding{Table: "users", Partition: "p", Row: "r2"}, sealed},
		{"other partition", k1, seal.Binding{Table: "users", Partition: "q", Row: "r"}, sealed},
		{"other table", k1, seal.Binding{Table: "signin", Partition: "p", Row: "r"}, sealed},
		{"field boundary shift", k1, seal.Binding{Table: "user", Partition: "sp", Row: "r"}, sealed},
		{"same bytes, other version label", mustKey(t, "v2", 7), b, sealed},
		{"other key, same label", mustKey(t, "v1", 8), b, sealed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seal.Open(tc.key, tc.where, tc.value)
			if !errors.Is(err, seal.ErrOpen) {
				t.Fatalf("err = %v, want ErrOpen", err)
			}
			if got != nil {
				t.Fatalf("returned plaintext %q on failure", got)
			}
		})
	}
}

func TestNewKeyRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		secret  []byte
	}{
		{"short", "v", make([]byte, 16)},
		{"long", "v", make([]byte, 33)},
		{"no version", "", make([]byte, 32)},
	} {
		if _, err := seal.NewKey(tc.version, tc.secret); !errors.Is(err, seal.ErrKey) {
			t.Errorf("%s: err = %v, want ErrKey", tc.name, err)
		}
	}
	if _, err := seal.Seal(seal.Key{}, seal.Binding{}, []byte("x")); !errors.Is(err, seal.ErrKey) {
		t.Errorf("zero key Seal err = %v", err)
	}
}

func BenchmarkSeal(b *testing.B) {
	k := mustKey(b, "v1", 7)
	where := seal.Binding{Table: "users", Partition: "0123456789abcdef", Row: "tok|abc"}
	msg := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := seal.Seal(k, where, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustKey(b, "v1", 7)
	where := seal.Binding{Table: "users", Partition: "0123456789abcdef", Row: "tok|abc"}
	msg := bytes.Repeat([]byte("x"), 1024)
	sealed, _ := seal.Seal(k, where, msg)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := seal.Open(k, where, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
