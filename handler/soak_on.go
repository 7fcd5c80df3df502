//go:build soak

package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// soakClock offsets the handler's clock by SOAK_CLOCK_OFFSET (a Go duration, e.g. "3m"), to
// run one instance with a skewed clock. This file is compiled only with the soak build tag,
// which only the soak test uses; a deployed binary has no such setting.
func soakClock(getenv func(string) string) (func() time.Time, error) {
	v := getenv("SOAK_CLOCK_OFFSET")
	if v == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("SOAK_CLOCK_OFFSET: %w", err)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}

// soakStats logs the goroutine count and heap size every SOAK_STATS_INTERVAL (default 2 s),
// so the soak test can see growth over a run.
func soakStats(ctx context.Context, log *slog.Logger, getenv func(string) string) {
	every := 2 * time.Second
	if d, err := time.ParseDuration(getenv("SOAK_STATS_INTERVAL")); err == nil && d > 0 {
		every = d
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				log.Info("soak stats", slog.Int("goroutines", runtime.NumGoroutine()), slog.Uint64("heapAlloc", m.HeapAlloc))
			}
		}
	}()
}
