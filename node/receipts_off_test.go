package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node/simnet"
)

// TestReceiptsReadWhileOff: what a person reads while read receipts are off
// stays private when they turn receipts on again, as in Signal: the mark
// set while off is not sent, even after a restart; only reading after
// turning them on is.
func TestReceiptsReadWhileOff(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 311, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	ctx := ctxT(t, 60*time.Second)
	m := c.send(0, "read while receipts are off", 10*time.Second)
	c.waitHolds(1, 1, m.Index, "node1 holds the message")
	if err := c.Node(1).SetReadReceipts(false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).MarkRead(ctx, c.GroupID, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(1).SetReadReceipts(true); err != nil {
		t.Fatal(err)
	}
	// node1 pings on after turning receipts on: node0 sees node1 hold a
	// message sent afterwards, from those pings.
	later := c.send(0, "sent after receipts are on again", 10*time.Second)
	c.waitHolds(0, 1, later.Index, "node0 sees node1 hold the later message")
	if _, r := c.receiptOf(0, 1); r >= m.Index {
		t.Fatalf("node1's person read the message while read receipts were off, yet node0 shows node1 read through %d once they are on again", r)
	}
	// Nor after a restart; and what the person reads now is shared.
	c.restart(1)
	again := c.send(0, "after node1's restart", 10*time.Second)
	c.waitHolds(0, 1, again.Index, "node0 sees node1 hold a message sent after its restart")
	if _, r := c.receiptOf(0, 1); r >= m.Index {
		t.Fatalf("after node1's restart, node0 shows node1 read through %d, read while receipts were off", r)
	}
	if _, err := c.Node(1).MarkRead(ctx, c.GroupID, later.ID); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "node0 sees node1 read the message read after turning receipts on", func() bool {
		_, r := c.receiptOf(0, 1)
		return r >= later.Index
	})
}
