package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestMemoryLogBounded: the log a group holds in memory is bounded in
// bytes, not only in entries: 48 messages of 64 KiB (3 MiB, as 25 new
// sender keys' headers at 100 members would be) leave at most 2 MiB of
// them in each member's memory, well before the next snapshot (every
// 10,000 entries). Raft reads older entries from the store: a member that
// was down through all of them still catches up.
func TestMemoryLogBounded(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 241, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.Crash(2)
	const sent = 48
	for k := range sent {
		c.send(k%2, maxMessage(k), 20*time.Second)
	}
	c.start(2)
	c.converged(sent)
	for i := range 3 {
		s, err := node.GroupLogStats(c.Node(i), c.GroupID)
		if err != nil {
			t.Fatal(err)
		}
		if s.MemBytes > 2<<20 {
			t.Errorf("node%d holds %d KiB of the log in memory (from index %d), want at most 2 MiB", i, s.MemBytes>>10, s.MemFirst)
		}
	}
}

// TestRestartLoadsABoundedTail: a restart holds the log after the latest
// snapshot in memory until it has applied it, so a group snapshots after
// SnapshotBytes of entry data as well as after SnapshotEntries entries.
// With SnapshotBytes at 1 MiB, 48 messages of 64 KiB are behind a snapshot
// but the last MiB, and a restarted member holds at most that (helper-43:
// without it, 3.1 MiB from index 1 right after a restart).
func TestRestartLoadsABoundedTail(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 242, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i := range 3 {
			c.Member(i).Tweak = func(cfg *node.Config) { cfg.SnapshotBytes = 1 << 20 }
		}
	})
	c.form()
	const sent = 48
	for k := range sent {
		c.send(k%2, maxMessage(k), 20*time.Second)
	}
	c.converged(sent)
	c.Crash(2)
	c.start(2)
	s, err := node.GroupLogStats(c.Node(2), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Snapshot == 0 || s.MemBytes > 1<<20 {
		t.Fatalf("node2 restarted from the snapshot at %d with %d KiB of the log in memory, want a snapshot and at most 1 MiB", s.Snapshot, s.MemBytes>>10)
	}
	c.converged(sent)
}
