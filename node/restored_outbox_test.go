package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// A backup of a store whose outbox holds a message not committed yet, the
// message committed later by the original node, and the node restored from
// that backup with its key store gone, as demes restore leaves it (the
// restore tests of restored*.go keep the key store): the restored outbox
// must not make the group commit the message a second time (a replay from
// the stale store), under its old id or a new one, nor hold it for good.
func TestRestoredOutboxWithoutKeysSendsNoCopy(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 93, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.waitPrekeys(3)
	const f = 1
	c.Stop(0)
	c.Stop(2)
	m, err := c.Send(ctxT(t, time.Minute), f, "queued at the backup", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.State == node.StateCommitted {
		t.Fatal("the message committed with two of three voters down: the test would prove nothing")
	}
	backup := c.backupStore(f)
	c.start(0)
	c.start(2)
	c.Eventually(t, time.Minute, "the queued message to commit", func() bool {
		return c.shows(0, "queued at the backup") && c.shows(f, "queued at the backup")
	})

	c.Stop(f)
	c.restoreStore(f, backup)
	if err := os.Remove(filepath.Join(c.Member(f).Dir, "keys.db")); err != nil {
		t.Fatal(err)
	}
	c.start(f)
	c.Eventually(t, time.Minute, "the restored node to catch up", func() bool {
		hold, err := node.RestoredHold(c.Node(f), c.GroupID)
		return err == nil && !hold
	})
	c.Eventually(t, time.Minute, "the restored outbox to empty", func() bool {
		st, ok := c.Status(f)
		return ok && st.Queued == 0
	})
	// A copy proposed after all would commit with or before a later
	// message of node0.
	c.sendCommitted(0, "after the restore", 30*time.Second)
	c.Eventually(t, time.Minute, "node2 to hold the later message", func() bool {
		return c.shows(2, "after the restore")
	})
	for i := range 3 {
		n := 0
		for _, x := range c.committed(i) {
			if x.Text == "queued at the backup" {
				n++
				if x.ID != m.ID {
					t.Errorf("node%d lists the message under id %x, sent as %x", i, x.ID, m.ID)
				}
			}
		}
		if i != f && n != 1 {
			t.Errorf("node%d lists the message queued at the backup %d times", i, n)
		}
	}
}
