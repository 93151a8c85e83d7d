package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// receiptOf returns member j's receipts as node i shows them.
func (c *cluster) receiptOf(i, j int) (holds, read uint64) {
	gs, ok := c.Status(i)
	if !ok {
		return 0, 0
	}
	want := c.Member(j).ID.Public().String()
	for _, m := range gs.Members {
		if m.PublicID == want {
			return m.HoldsThrough, m.ReadThrough
		}
	}
	return 0, 0
}

// waitHolds waits until node i's status shows member j's device holding
// the history through index: pings of j's sent after the moment index
// was committed have reached i.
func (c *cluster) waitHolds(i, j int, index uint64, what string) {
	c.t.Helper()
	c.Eventually(c.t, 30*time.Second, what, func() bool {
		h, _ := c.receiptOf(i, j)
		return h >= index
	})
}

// TestReceipts: the author of a message sees which members' devices hold it
// and which people read it; a person who turns read receipts off sends
// none and sees none; a mark never goes back and survives a restart, as
// does the choice.
func TestReceipts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 307, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	ctx := ctxT(t, 60*time.Second)
	first := c.send(0, "did you get this?", 10*time.Second)
	m := c.send(0, "and this?", 10*time.Second)

	// Delivered: both members' devices hold it, by their signed heads.
	c.Eventually(t, 30*time.Second, "node0 sees both members hold its message", func() bool {
		h1, _ := c.receiptOf(0, 1)
		h2, _ := c.receiptOf(0, 2)
		return h1 >= m.Index && h2 >= m.Index
	})

	// Read: node1's person reads it; node0 learns it from node1's pings.
	c.waitHolds(1, 1, m.Index, "node1 holds the message")
	got, err := c.Node(1).MarkRead(ctx, c.GroupID, m.ID)
	if err != nil || got != m.Index {
		t.Fatalf("MarkRead = %d, %v; want %d", got, err, m.Index)
	}
	c.Eventually(t, 30*time.Second, "node0 sees node1 read its message", func() bool { _, r := c.receiptOf(0, 1); return r >= m.Index })
	if _, r := c.receiptOf(0, 2); r != 0 {
		t.Fatalf("node0 shows node2 read through %d; node2's person read nothing", r)
	}
	// A mark never goes back.
	if got, err := c.Node(1).MarkRead(ctx, c.GroupID, first.ID); err != nil || got != m.Index {
		t.Fatalf("marking an older message: %d, %v; want the mark to stay %d", got, err, m.Index)
	}
	if _, err := c.Node(1).MarkRead(ctx, c.GroupID, "00112233445566778899aabbccddeeff"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("marking an unknown message: %v, want ErrNotFound", err)
	}

	// node2's person turns read receipts off, then reads: node2's pings,
	// which go on telling node0 how far its device holds the group, say
	// nothing of its reading.
	if err := c.Node(2).SetReadReceipts(false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(2).MarkRead(ctx, c.GroupID, m.ID); err != nil {
		t.Fatal(err)
	}
	later := c.send(1, "later", 10*time.Second)
	c.waitHolds(0, 2, later.Index, "node0 sees node2 hold a message sent after node2 read")
	if _, r := c.receiptOf(0, 2); r != 0 {
		t.Fatalf("node2 turned read receipts off, yet node0 shows it read through %d", r)
	}
	if _, r := c.receiptOf(2, 1); r != 0 {
		t.Fatalf("node2 turned read receipts off, yet it shows node1's (%d)", r)
	}
	if _, r := c.receiptOf(2, 2); r != m.Index {
		t.Fatalf("node2 shows its own mark as %d, want %d", r, m.Index)
	}

	// The mark and the choice survive a restart.
	c.restart(1)
	c.restart(2)
	c.Eventually(t, 30*time.Second, "node1 up again with its mark", func() bool { _, r := c.receiptOf(1, 1); return r == m.Index })
	if c.Node(2).ReadReceipts() {
		t.Fatal("node2 shares read receipts again after a restart")
	}
	if !c.Node(1).ReadReceipts() {
		t.Fatal("node1 does not share read receipts, the default")
	}
	t.Logf("delivered and read through index %d", m.Index)
}
