package tokenstore

import (
	"container/list"
	"sync"
	"time"
)

// l1 is a small LRU of opened rows, bounded in entries and in age. Keys are table, partition
// and row, so an entry can never be served for another user. It holds plaintext in memory
// only; nothing here is logged.
type l1 struct {
	max    int
	maxAge time.Duration
	now    func() time.Time

	mu    sync.Mutex
	ll    *list.List
	items map[string]*list.Element
}

type l1Entry struct {
	key     string
	payload []byte
	exp     time.Time
	stored  time.Time
}

func newL1(max int, maxAge time.Duration, now func() time.Time) *l1 {
	if max <= 0 || maxAge <= 0 {
		return nil // disabled
	}
	return &l1{max: max, maxAge: maxAge, now: now, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *l1) get(key string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*l1Entry)
	now := c.now()
	if now.Sub(e.stored) >= c.maxAge || !now.Before(e.exp) {
		c.ll.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.payload, true
}

func (c *l1) put(key string, payload []byte, exp time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &l1Entry{key: key, payload: payload, exp: exp, stored: c.now()}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*l1Entry).key)
	}
}

func (c *l1) drop(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// dropPrefix removes every entry whose key starts with prefix (a whole user, on ForgetUser).
func (c *l1) dropPrefix(prefix string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.items {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			c.ll.Remove(el)
			delete(c.items, k)
		}
	}
}
