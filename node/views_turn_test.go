package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestSendAnsweredCountsInView: a send answered as queued and on disk is
// counted in the group's view (status: queued) by then. Since 16748dc the
// sends of one turn publish the view once, after the turn's drain; but a
// send's two requests (its enqueue, then its write) can both be drained
// in one turn, and the write answers the send before that publish: status
// read right after the answer did not count the message (queued 0, want 1).
func TestSendAnsweredCountsInView(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 231, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.send(0, "warm-up", 10*time.Second)
	c.Eventually(t, 30*time.Second, "an empty outbox", func() bool { return c.Node(0).Status().Groups[0].Queued == 0 })
	ctx := ctxT(t, time.Minute)
	// The turn ends only once status was read after the answer.
	read := make(chan struct{})
	// Send's requests: its checks and enqueue, then its write (makeDurable).
	done, err := node.ServeInOneTurn(ctx, c.Node(0), c.GroupID, 2, func() {
		select {
		case <-read:
		case <-ctx.Done():
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Node(0).Send(ctx, c.GroupID, "counted", 0)
	queued := c.Node(0).Status().Groups[0].Queued
	close(read)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m.State == node.StateCommitted {
		t.Fatalf("answered committed while the group's goroutine was held: %+v", m)
	}
	if queued != 1 {
		t.Fatalf("right after the send was answered as queued, status counts %d queued messages; want 1", queued)
	}
	c.Eventually(t, 30*time.Second, "the message to commit", func() bool { return c.Node(0).Status().Groups[0].Queued == 0 })
}
