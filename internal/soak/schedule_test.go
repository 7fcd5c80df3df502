package soak

import (
	"slices"
	"testing"
	"time"
)

// The fault schedule is a function of the seed: the same seed replays the same faults, and
// every kind appears in every cycle, inside the run, on an instance other than the measured one.
func TestScheduleIsDeterministicAndCoversEveryFault(t *testing.T) {
	for _, d := range []time.Duration{30 * time.Second, 10 * time.Minute} {
		a, b := schedule(42, d, 3), schedule(42, d, 3)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: the same seed gave two schedules", d)
		}
		if c := schedule(43, d, 3); slices.Equal(a, c) {
			t.Fatalf("%s: seeds 42 and 43 gave the same schedule", d)
		}
		cycles := max(1, int(d/(5*time.Minute)))
		count := map[string]int{}
		for _, s := range a {
			count[s.Kind]++
			if s.At < d/10 || s.At+s.Window > d*8/10 {
				t.Errorf("%s: %s at %s for %s is outside the faulted part of the run", d, s.Kind, s.At, s.Window)
			}
			if s.Inst < 1 || s.Inst > 2 {
				t.Errorf("%s: %s hits instance %d", d, s.Kind, s.Inst)
			}
		}
		for _, k := range faultKinds {
			if count[k] != cycles {
				t.Errorf("%s: %s appears %d times, want %d", d, k, count[k], cycles)
			}
		}
	}
}

// Growth compares the medians of the first and the last third of a process's samples.
func TestGrowthComparesThirds(t *testing.T) {
	var s []sample
	for i := range 9 {
		s = append(s, sample{rssKB: 1000 + 100*i, goroutines: 10 + i})
	}
	r0, r1, g0, g1, ok := growth(s)
	if !ok || r0 != 1100 || r1 != 1700 || g0 != 11 || g1 != 17 {
		t.Fatalf("growth = %d %d %d %d %v", r0, r1, g0, g1, ok)
	}
	if _, _, _, _, ok := growth(s[:5]); ok {
		t.Fatal("five samples are too few to compare")
	}
}
