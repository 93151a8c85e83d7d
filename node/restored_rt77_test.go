package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestRestoredHostOfAGroupOfTwo: in a group of two, the host is lost and
// restored from a backup. The other member, which holds every committed
// entry (each needed both voters), never hosted since the restore, so the
// restored member grants it no vote, and asks for none itself: nobody
// hosts, and the group must still commit again.
//
// Watched to fail (the group never commits again) without the exception
// for the other voter of a group of two (onlyOtherVoter), which is a trade
// (docs/PROTOCOL.md, "A member restored from a backup").
func TestRestoredHostOfAGroupOfTwo(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 278, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(2)
	h := c.waitHost(-1)
	f := 1 - h
	c.sendCommitted(h, "before the backup", 10*time.Second)
	c.converged(1)

	backup := c.backupStore(h)
	c.sendCommitted(h, "after the backup", 10*time.Second)
	c.converged(2)
	if c.Host() != h {
		t.Fatalf("node%d no longer hosts", h)
	}

	// The host lost and restored from its backup.
	c.Crash(h)
	c.restoreStore(h, backup)
	c.start(h)
	c.sendCommitted(f, "after the restore", 60*time.Second)
	c.Eventually(t, 30*time.Second, "the restored member to take part in elections again", func() bool {
		hold, err := node.RestoredHold(c.Node(h), c.GroupID)
		return err == nil && !hold
	})
}

// TestRestoredSoleVoterEndsItsHold: the only voter of a group, restored from
// a backup, elects itself (raft needs no message for that) and hosts: no
// other host ever sends it the append its hold waits for. Once the group
// has a second voter, the hold must still end, or a restart of this member
// leaves the two refusing each other's votes for good.
func TestRestoredSoleVoterEndsItsHold(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 279, simnet.LinkConfig{Latency: time.Millisecond})
	g, err := c.Node(0).CreateGroup(ctxT(t, 30*time.Second), "alone")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	c.sendCommitted(0, "before the backup", 10*time.Second)
	backup := c.backupStore(0)
	c.sendCommitted(0, "after the backup", 10*time.Second)
	c.Crash(0)
	c.restoreStore(0, backup)
	c.start(0)
	// It waits for members who may have joined since the backup
	// (restoredHoldsTick), and says so.
	if gs, ok := c.Status(0); !ok || !strings.Contains(gs.Restored, "only voter") {
		t.Errorf("status of the restored lone voter says %q, want that it waits as the only voter", gs.Restored)
	}
	c.sendCommitted(0, "after the restore", 30*time.Second)

	// A second member joins and becomes a voter.
	code, err := c.Node(0).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctxT(t, 30*time.Second), code); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(2)
	c.sendCommitted(0, "with two voters", 30*time.Second)
	c.Eventually(t, 30*time.Second, "the restored member to take part in elections again", func() bool {
		hold, err := node.RestoredHold(c.Node(0), c.GroupID)
		return err == nil && !hold
	})
	c.restart(0)
	c.sendCommitted(1, "after a restart", 60*time.Second)
}
