// Package testutil holds the helpers of tests that wait on concurrent code:
// [Eventually] and [Poll] for conditions with a bounded deadline, and
// [LockedBuffer] for logs read while goroutines write them. It uses the
// standard library only, so that any package's tests can use it (web/ must
// not import node/, not even in tests); node/nodetest builds its cluster
// waits on it.
package testutil

import (
	"context"
	"fmt"
	"time"
)

// TB is the part of testing.TB the helpers need: tests pass their
// *testing.T, and this package does not import testing, so that programs
// (demes bench) can use it too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// PollEvery is how often a condition is checked when nothing wakes the
// wait earlier.
const PollEvery = 10 * time.Millisecond

// Poll checks cond every interval until it holds, and returns an error
// naming what it waited for once ctx ends first.
func Poll(ctx context.Context, every time.Duration, what string, cond func() bool) error {
	return Wait(ctx, nil, every, what, cond)
}

// Eventually fails t if cond does not hold within d, checking it every
// [PollEvery]. Waits on a node/nodetest cluster should use its
// Eventually, which also wakes on the nodes' events.
func Eventually(t TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := Wait(ctx, nil, PollEvery, what, cond); err != nil {
		t.Fatalf("timed out after %v %v", d, err)
	}
}

// Wait checks cond at once, then whenever wake delivers or every passes,
// until it holds, and returns an error naming what it waited for once ctx
// ends first.
func Wait(ctx context.Context, wake <-chan struct{}, every time.Duration, what string, cond func() bool) error {
	if every <= 0 {
		every = PollEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-wake:
		case <-t.C:
		}
	}
	return nil
}
