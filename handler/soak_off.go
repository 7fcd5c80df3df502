//go:build !soak

package main

import (
	"context"
	"log/slog"
	"time"
)

// soakClock is the handler's clock: the system's. Only a build with the soak tag (the soak
// test's own binary, never a deployment) can offset it.
func soakClock(func(string) string) (func() time.Time, error) { return time.Now, nil }

// soakStats does nothing outside the soak build.
func soakStats(context.Context, *slog.Logger, func(string) string) {}
