package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestRestoredHostOfAGroupShrunkToTwo: the host of a group of three voters
// is backed up; a third member leaves, so the group is a pair of voters, the
// host and the other; the two commit a message. The host is lost and
// restored from its backup, whose copy still counts three voters. The other
// holds every committed entry (each since the leave needed both), and says
// so (pingPair); it never hosted since the restore. The restored member must
// grant it its vote, or the group elects no host again: one restore, as the
// README allows, with the member that kept its log online.
//
// Watched to fail (node1's message never commits) while onlyOtherVoter also
// asked the restored copy to count the pair itself: the churn and restore
// fault schedules found it (demes bench chaos --churn --restore --nodes 5,
// seeds 353002 and 353036, in which members left or were demoted after the
// backup).
func TestRestoredHostOfAGroupShrunkToTwo(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 296, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	h := c.waitHost(-1)
	var others []int
	for i := range 3 {
		if i != h {
			others = append(others, i)
		}
	}
	gone, kept := others[0], others[1]
	c.sendCommitted(h, "before the backup", 10*time.Second)
	c.converged(1)
	backup := c.backupStore(h)

	if err := c.Node(gone).Leave(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.Stop(gone)
	c.Eventually(t, 30*time.Second, "2 voters on the two members", func() bool {
		return c.Voters(h) == 2 && c.Voters(kept) == 2
	})
	m := c.sendCommitted(h, "acknowledged by both", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the other member to list the pair's message", func() bool { return c.listsAll(kept, []string{m.ID}) })
	if c.Host() != h {
		t.Skipf("node%d no longer hosts: the scenario needs the member lost to be the host", h)
	}

	// The host lost and restored from its backup, which counts three
	// voters.
	c.Crash(h)
	c.restoreStore(h, backup)
	c.start(h)
	c.sendCommitted(kept, "after the restore", 60*time.Second)
	c.Eventually(t, time.Minute, "the restored member to list the pair's message", func() bool { return c.listsAll(h, []string{m.ID}) })
	c.Eventually(t, 30*time.Second, "the restored member to take part in elections again", func() bool {
		hold, err := node.RestoredHold(c.Node(h), c.GroupID)
		return err == nil && !hold
	})
}
