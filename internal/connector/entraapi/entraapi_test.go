package entraapi

import "testing"

func TestUnderBase(t *testing.T) {
	for _, tc := range []struct {
		p, base string
		want    bool
	}{
		{"/api/me", "/api", true},
		{"/api", "/api/", true},
		{"/api/leave/2026", "/api", true},
		{"/apix/me", "/api", false},
		{"/api/../admin", "/api", false},
		{"/api/./me", "/api", true},
		{"/admin", "/api", false},
		{"/anything", "", true},
		{"/anything", "/", true},
	} {
		if got := underBase(tc.p, tc.base); got != tc.want {
			t.Errorf("underBase(%q, %q) = %v, want %v", tc.p, tc.base, got, tc.want)
		}
	}
}
