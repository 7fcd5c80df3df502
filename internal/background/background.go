// Package background runs work that continues after a request has been answered — answering
// parked requests after a sign-in, announcing a new account link — so that the handler can
// wait for it before it stops, and tests can wait for it before they look.
package background

import (
	"context"
	"sync"
	"time"
)

// Group tracks background work. The zero value is ready to use; a nil *Group runs work
// untracked.
type Group struct {
	wg sync.WaitGroup
}

// Go runs f in the background with a context detached from ctx's cancellation and bounded by
// timeout.
func (g *Group) Go(ctx context.Context, timeout time.Duration, f func(ctx context.Context)) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	if g != nil {
		g.wg.Add(1)
	}
	go func() {
		defer cancel()
		if g != nil {
			defer g.wg.Done()
		}
		f(bctx)
	}()
}

// Wait blocks until all work has finished or ctx ends; it reports whether all finished.
func (g *Group) Wait(ctx context.Context) bool {
	if g == nil {
		return true
	}
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
