//go:build !soak

package main

import (
	"testing"
	"time"
)

// A deployed binary has no clock knob: SOAK_CLOCK_OFFSET is ignored outside the soak build.
func TestClockOffsetIsIgnoredOutsideTheSoakBuild(t *testing.T) {
	now, err := soakClock(func(k string) string {
		if k == "SOAK_CLOCK_OFFSET" {
			return "1h"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := now().Sub(time.Now()); d > time.Minute || d < -time.Minute {
		t.Fatalf("the clock is off by %s", d)
	}
}
