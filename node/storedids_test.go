package node_test

import (
	"testing"
)

// TestRetryAfterSnapshotsIsADuplicate: the message ids a node accepted
// before its latest snapshots are kept in its store, not in memory (issue
// 16); a message retried long after it committed, through many snapshots
// and after every node restarted (one killed, the others stopped
// cleanly), is still refused as a duplicate by every member, and listed
// once.
func TestRetryAfterSnapshotsIsADuplicate(t *testing.T) {
	t.Parallel()
	c := newSnapshotCluster(t, 3, 23)
	c.form()
	c.waitVoters(3)
	r := newRogueMember(t, c, 1)
	id, sealed := r.seal(t, "said once", true)
	r.propose(t, id, sealed, "the message to commit", func() bool { return c.shows(0, "said once") })
	sent := append([]string{"said once"}, c.sendMany("after it", 3*testSnapshotEntries)...)
	c.converged(len(sent))
	h := c.Host()
	for i := range 3 {
		if stats := c.logStats(i); stats.Snapshot <= stats.Applied-2*testSnapshotEntries || stats.MessageIDs != len(sent) {
			t.Fatalf("node%d: snapshot at %d of %d applied, %d ids held: want a recent snapshot and every id", i, stats.Snapshot, stats.Applied, stats.MessageIDs)
		}
	}
	c.Crash(h)
	for i := range 3 {
		if i != h {
			c.Stop(i)
		}
	}
	for i := range 3 {
		c.start(i)
	}
	c.waitHost(-1)
	// The host drops a proposal of an id already committed; one it let
	// through, the members' state machines would refuse.
	listed := func(i int) (n int) {
		for _, m := range c.committed(i) {
			if m.Text == "said once" {
				n++
			}
		}
		return n
	}
	r.propose(t, id, sealed, "the retry to be refused", func() bool {
		for i := range 3 {
			if c.rejectedFor(i, "already committed") || c.rejectedFor(i, "duplicate message id") || listed(i) > 1 {
				return true
			}
		}
		return false
	})
	c.converged(len(sent))
	for i := range 3 {
		if n := listed(i); n != 1 {
			t.Fatalf("node%d lists the retried message %d times", i, n)
		}
		if stats := c.logStats(i); stats.MessageIDs != len(sent) {
			t.Fatalf("node%d holds %d ids after the restart, want %d", i, stats.MessageIDs, len(sent))
		}
	}
}
