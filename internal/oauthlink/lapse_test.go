package oauthlink_test

import (
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/oauthlink"
)

// Atlassian Cloud: 90 days after the last refresh, but never later than 365 days after the
// user connected.
func TestLapseIsTheEarlierOfIdleAndAbsolute(t *testing.T) {
	day := 24 * time.Hour
	linked := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name           string
		refreshed      time.Time
		idle, absolute time.Duration
		want           time.Time
	}{
		{"never refreshed", time.Time{}, 90 * day, 365 * day, linked.Add(90 * day)},
		{"refreshed last week", linked.Add(100 * day), 90 * day, 365 * day, linked.Add(190 * day)},
		{"refreshed lately: the absolute limit comes first", linked.Add(300 * day), 90 * day, 365 * day, linked.Add(365 * day)},
		{"idle limit only", linked.Add(10 * day), 90 * day, 0, linked.Add(100 * day)},
		{"unknown lifetimes", linked.Add(10 * day), 0, 0, time.Time{}},
	} {
		if got := oauthlink.Lapse(linked, c.refreshed, c.idle, c.absolute); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := oauthlink.Lapse(time.Time{}, linked, 90*day, 365*day); !got.IsZero() {
		t.Errorf("without a link date: %v", got)
	}
}
