package node

import (
	"context"
	"errors"
	"testing"
)

// TestDoWaitsForItsFunction: when the group is stopped while the function
// handed to do runs, do still returns only after the function ended, so that
// its caller can read what the function wrote (a send read its answer while
// the function still wrote it, when a crash stopped the group: a data race).
// Each round closes the group's stop channel while the function is held,
// then lets it finish; on the old do, which returned at the stop, the
// caller saw the function's result missing (about one round in two).
func TestDoWaitsForItsFunction(t *testing.T) {
	for round := 0; round < 20; round++ {
		g := &group{reqc: make(chan func()), stopc: make(chan struct{}), donec: make(chan struct{})}
		go func() { // the group's goroutine: takes one request, runs it, ends at the stop
			defer close(g.donec)
			fn := <-g.reqc
			fn()
			<-g.stopc
		}()
		started, release := make(chan struct{}), make(chan struct{})
		var wrote bool
		res := make(chan error, 1)
		go func() {
			res <- g.do(context.Background(), func() {
				close(started)
				<-release
				wrote = true
			})
		}()
		<-started
		close(g.stopc)
		go close(release)
		err := <-res
		if !wrote {
			t.Fatalf("round %d: do returned (%v) before its function ended", round, err)
		}
		if err != nil && !errors.Is(err, ErrStopped) {
			t.Fatalf("round %d: do: %v", round, err)
		}
	}
}
