package background

import (
	"context"
	"testing"
	"time"
)

func TestWaitCoversWorkAndItsDeadline(t *testing.T) {
	var g Group
	release := make(chan struct{})
	var sawDeadline bool
	g.Go(context.Background(), time.Minute, func(ctx context.Context) {
		_, sawDeadline = ctx.Deadline()
		<-release
	})
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if g.Wait(short) {
		t.Fatal("Wait returned true while work was running")
	}
	close(release)
	if !g.Wait(context.Background()) || !sawDeadline {
		t.Fatalf("Wait after the work ended: deadline seen %v", sawDeadline)
	}

	// Work outlives the request that started it.
	req, cancelReq := context.WithCancel(context.Background())
	done := make(chan error, 1)
	g.Go(req, time.Minute, func(ctx context.Context) { time.Sleep(10 * time.Millisecond); done <- ctx.Err() })
	cancelReq()
	if err := <-done; err != nil {
		t.Fatalf("background work was cancelled with its request: %v", err)
	}
}
