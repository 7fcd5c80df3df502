package recent_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/onbehalf/onbehalf/internal/recent"
)

// A key is added once; the oldest keys go when the set is full; a removed key can be added
// again and then lives as long as a new one.
func TestSetIsBoundedAndForgetsTheOldestFirst(t *testing.T) {
	s := &recent.Set{Max: 3}
	if !s.Add("a") || s.Add("a") || !s.Has("a") {
		t.Fatal("a key must be added once")
	}
	s.Add("b")
	s.Add("c")
	s.Add("d") // a goes
	if s.Has("a") || !s.Has("b") || !s.Has("d") {
		t.Fatal("the oldest key must go first")
	}
	s.Remove("b")
	if s.Has("b") || !s.Add("b") {
		t.Fatal("a removed key must be absent, then addable again")
	}
	s.Add("e") // c goes
	s.Add("f") // d goes; b, added again after it, stays
	if s.Has("c") || s.Has("d") || !s.Has("b") || !s.Has("e") || !s.Has("f") {
		t.Fatalf("after re-adding b: c %v d %v b %v", s.Has("c"), s.Has("d"), s.Has("b"))
	}
}

// Concurrent adders: each key is reported new exactly once.
func TestSetAddsEachKeyOnceUnderConcurrency(t *testing.T) {
	var s recent.Set
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := strconv.Itoa(i)
				if s.Add(k) {
					mu.Lock()
					added[k]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range 500 {
		if n := added[strconv.Itoa(i)]; n != 1 {
			t.Fatalf("key %d reported new %d times", i, n)
		}
	}
}
