// Package recent remembers a bounded number of recently seen keys, forgetting the oldest
// first: enough to make an action at most once per key on one instance without growing
// without bound.
package recent

import "sync"

// DefaultMax is the capacity of a Set whose Max is zero.
const DefaultMax = 4096

// Set is a bounded set of keys, safe for concurrent use. The zero value is ready to use.
type Set struct {
	// Max is how many keys are kept; zero means DefaultMax. Set it before first use.
	Max int

	mu   sync.Mutex
	slot map[string]int // key → its place in ring
	ring []string
	next int
}

// Add adds k and reports whether it was absent. When the set is full the oldest key goes.
func (s *Set) Add(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.slot[k]; ok {
		return false
	}
	if s.slot == nil {
		n := s.Max
		if n <= 0 {
			n = DefaultMax
		}
		s.slot, s.ring = map[string]int{}, make([]string, n)
	}
	// The key in this place is forgotten unless it was removed and added again elsewhere.
	if old := s.ring[s.next]; old != "" && s.slot[old] == s.next {
		delete(s.slot, old)
	}
	s.ring[s.next] = k
	s.slot[k] = s.next
	s.next = (s.next + 1) % len(s.ring)
	return true
}

// Has reports whether k is in the set.
func (s *Set) Has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.slot[k]
	return ok
}

// Remove forgets k.
func (s *Set) Remove(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.slot, k)
}
