package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node/simnet"
)

// TestFigures: the running counts behind the metrics move with the work:
// a group with a host, messages sent and committed, raft writes and peer
// traffic.
func TestFigures(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 91, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	m := c.send(1, "counted", 10*time.Second)
	f := c.Node(1).Figures()
	if len(f.Groups) != 1 {
		t.Fatalf("figures of %d groups, want 1", len(f.Groups))
	}
	g := f.Groups[0]
	switch {
	case g.LeaderChanges == 0:
		t.Error("no leader change seen, though the group has a host")
	case g.Applied == 0:
		t.Error("no entry applied")
	case g.CommitLatency.Count != 1 || g.CommitLatency.Sum <= 0:
		t.Errorf("commit latency %+v, want the one message sent", g.CommitLatency)
	case f.FsyncSeconds.Count == 0:
		t.Error("no write to disk timed")
	case f.PeerSentBytes == 0 || f.PeerReceivedBytes == 0:
		t.Errorf("peer traffic %d sent, %d received", f.PeerSentBytes, f.PeerReceivedBytes)
	}
	if g.CommitLatency.Counts[len(g.CommitLatency.Counts)-1] > g.CommitLatency.Count {
		t.Errorf("cumulative bucket above the count: %+v", g.CommitLatency)
	}
	if g.Committed < m.Index {
		t.Errorf("%d entries seen committed, but the message committed at index %d", g.Committed, m.Index)
	}

	// A message on its way is pending until its node sees it commit: a
	// follower hears nothing from the host while its proposal goes
	// through.
	host := c.waitHost(-1)
	fo := (host + 1) % c.Size()
	pending := func() uint64 { return c.Node(fo).Figures().Groups[0].Pending }
	c.net.Cut(c.Member(host).URL, c.Member(fo).URL)
	if _, err := c.Node(fo).Send(ctxT(t, 10*time.Second), c.GroupID, "on its way", 0); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "the follower's message pending", func() bool { return pending() == 1 })
	c.net.Heal()
	c.Eventually(t, 30*time.Second, "nothing pending once the follower sees it commit", func() bool { return pending() == 0 })
}

// TestJoinedAt: a member's status says where it joined, so that its UI can
// say why it reads nothing from before: the creator at the genesis, the
// others after it.
func TestJoinedAt(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 92, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	creator, ok0 := c.Status(0)
	joiner, ok1 := c.Status(1)
	if !ok0 || !ok1 || creator.JoinedAt != 1 || joiner.JoinedAt <= 1 {
		t.Fatalf("joined at %d (creator) and %d (joiner), want 1 and later", creator.JoinedAt, joiner.JoinedAt)
	}
}
