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
// untracked. Go and Wait may be called concurrently from any number of goroutines (unlike
// sync.WaitGroup, whose Add must not race a Wait).
type Group struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero
}

// Go runs f in the background with a context detached from ctx's cancellation and bounded by
// timeout.
func (g *Group) Go(ctx context.Context, timeout time.Duration, f func(ctx context.Context)) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	if g != nil {
		g.mu.Lock()
		if g.n == 0 {
			g.idle = make(chan struct{})
		}
		g.n++
		g.mu.Unlock()
	}
	go func() {
		defer cancel()
		if g != nil {
			defer g.done()
		}
		f(bctx)
	}()
}

func (g *Group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		close(g.idle)
	}
}

// Wait blocks until no work is running or ctx ends; it reports whether the group is idle.
func (g *Group) Wait(ctx context.Context) bool {
	if g == nil {
		return true
	}
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return true
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}
