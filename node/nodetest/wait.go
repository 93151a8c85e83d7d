package nodetest

import (
	"context"
	"fmt"
	"time"
)

// TB is the part of testing.TB the helpers need: tests pass their
// *testing.T, and this package does not import testing, so that programs
// (demes bench) can use the cluster too.
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
	return wait(ctx, nil, every, what, cond)
}

// Eventually fails t if cond does not hold within d, checking it every
// [PollEvery]. Waits on a cluster should use [Cluster.Eventually], which
// also wakes on the nodes' events.
func Eventually(t TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := wait(ctx, nil, PollEvery, what, cond); err != nil {
		t.Fatalf("timed out after %v %v", d, err)
	}
}

// wait checks cond at once, then whenever wake delivers or every passes,
// until it holds or ctx ends.
func wait(ctx context.Context, wake <-chan struct{}, every time.Duration, what string, cond func() bool) error {
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
