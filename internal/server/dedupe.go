package server

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/botframework"
)

// Dedupe remembers recently processed activity ids so a channel's re-delivery of the same
// activity (it retries when an answer is slow or lost) is answered without running the turn
// again. It is bounded in size and age and lives in one process; sign-in invokes, which must
// be unique across instances, are de-duplicated again in the shared token store.
type Dedupe struct {
	// Size bounds the number of remembered ids (default 10,000).
	Size int
	// TTL is how long an id is remembered (default 10 minutes).
	TTL time.Duration
	// Now is the clock.
	Now func() time.Time

	mu    sync.Mutex
	order *list.List // front = newest
	items map[string]*list.Element
}

type dedupeEntry struct {
	key   string
	at    time.Time
	done  chan struct{}
	resp  *botframework.InvokeResponse
	ended bool
}

func (d *Dedupe) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Begin registers key. It returns the entry and true for the first delivery, or the existing
// entry and false for a re-delivery.
func (d *Dedupe) Begin(key string) (*dedupeEntry, bool) {
	size, ttl := d.Size, d.TTL
	if size == 0 {
		size = 10000
	}
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items == nil {
		d.items, d.order = map[string]*list.Element{}, list.New()
	}
	if el, ok := d.items[key]; ok {
		e := el.Value.(*dedupeEntry)
		if now.Sub(e.at) < ttl {
			return e, false
		}
		d.order.Remove(el)
		delete(d.items, key)
	}
	e := &dedupeEntry{key: key, at: now, done: make(chan struct{})}
	d.items[key] = d.order.PushFront(e)
	for d.order.Len() > size {
		old := d.order.Back()
		d.order.Remove(old)
		delete(d.items, old.Value.(*dedupeEntry).key)
	}
	return e, true
}

// Forget drops an entry whose turn failed, so a re-delivery runs it again.
func (d *Dedupe) Forget(e *dedupeEntry) {
	d.mu.Lock()
	if el, ok := d.items[e.key]; ok && el.Value == e {
		d.order.Remove(el)
		delete(d.items, e.key)
	}
	d.mu.Unlock()
	e.finish(nil)
}

func (e *dedupeEntry) finish(resp *botframework.InvokeResponse) {
	if e.ended {
		return
	}
	e.ended = true
	e.resp = resp
	close(e.done)
}

// wait returns the first delivery's response once it has finished.
func (e *dedupeEntry) wait(ctx context.Context) (*botframework.InvokeResponse, bool) {
	select {
	case <-e.done:
		return e.resp, true
	case <-ctx.Done():
		return nil, false
	}
}
