package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestTentativeOfALostAuthorCommits: while the group cannot commit, node0's
// message reaches node1 directly and shows there, tentative. Then node0
// loses it: its store is put back from a backup taken before it sent (a
// lost laptop, restored). Only the author's outbox proposed a message to
// the log, so node1 showed it tentative for good, a message the others
// were shown and the group never ordered. A host that holds another
// member's tentative message proposes it itself once the author has had
// time to: it commits once, as node0's, on every member.
func TestTentativeOfALostAuthorCommits(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 193, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	backup := c.backupStore(0)
	c.stopMajority(0, 1)
	m := c.send(0, "held by node1 alone", 20*time.Second)
	if m.State != node.StateTentative {
		t.Fatalf("node0's message is %s with a majority of the voters stopped", m.State)
	}
	c.Eventually(t, 30*time.Second, "node0 to count its message held by node1", func() bool {
		return c.listed(0)[m.ID].Delivered == 1
	})
	c.Crash(0)
	c.restoreStore(0, backup)
	for _, i := range []int{2, 3, 4} {
		c.start(i)
	}
	c.start(0)
	// node1, the one member that holds the message, hosts: whoever the
	// group elects hands over to it, as placement would to the best, and
	// it stays (placement prefers node4 on this seed's latencies).
	if err := node.KeepHosting(ctxT(t, 10*time.Second), c.Node(1), c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, time.Minute, "node1 to host", func() bool {
		h := c.Host()
		if h == 1 || h < 0 {
			return h == 1
		}
		ctx := ctxT(t, 10*time.Second)
		_ = node.HandOver(ctx, c.Node(h), c.GroupID, c.Member(1).ID.Public().Sign)
		return false
	})
	c.Eventually(t, time.Minute, "node0's message, held by node1 alone, to commit on every member", func() bool {
		for _, i := range c.Live() {
			if got, ok := c.listed(i)[m.ID]; !ok || got.State != node.StateCommitted {
				return false
			}
		}
		return true
	})
	ref := c.converged(2)
	n := 0
	for _, x := range ref {
		if x.ID == m.ID {
			n++
			if x.Text != m.Text || x.Author != c.Member(0).ID.Public().String() {
				t.Errorf("the message committed as %q by %s, want %q by node0", x.Text, x.Author, m.Text)
			}
		}
	}
	if n != 1 {
		t.Errorf("node0's message is committed %d times, want once: %s", n, tentTexts(ref))
	}
}
