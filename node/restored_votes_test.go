package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestRestoredVoterCannotLoseMessages: three voters; the host and A hold
// five committed messages that the third, B, never got (it was cut off).
// A is lost and restored from a backup older than them, and the host dies.
// If A took part in elections, A and B, a majority, would elect one of
// them, whose log lacks the five, and commit over them: acknowledged
// messages lost. A restored voter holds its votes until it has caught up
// (node/restored.go), so the group waits for the host to come back, loses
// nothing, and A takes part in elections again once it caught up.
func TestRestoredVoterCannotLoseMessages(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 197, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	h := c.waitHost(-1)
	a, b := (h+1)%3, (h+2)%3
	c.sendCommitted(h, "before the backup", 10*time.Second)
	c.converged(1)

	backup := c.backupStore(a)

	// B cut off: the five commit with the host and A alone.
	c.net.Partition([]string{c.Member(b).URL}, []string{c.Member(h).URL, c.Member(a).URL})
	var five []string
	for k := range 5 {
		five = append(five, c.sendCommitted(h, fmt.Sprintf("acknowledged %d", k), 10*time.Second).ID)
	}

	// A lost and restored, the host gone, B back.
	c.Crash(a)
	c.restoreStore(a, backup)
	c.Crash(h)
	c.net.Heal()
	c.start(a)
	during, err := c.Node(b).Send(ctxT(t, 30*time.Second), c.GroupID, "while the host is away", 0)
	if err != nil {
		t.Fatal(err)
	}
	// B asks A for its vote (A refuses it), or, without the hold, the two
	// of them elect a host and commit B's message.
	c.Eventually(t, 30*time.Second, "B to ask the restored A for a vote, or to commit without the host", func() bool {
		if c.Node(a).Status().Rejected["election message of a restored group"] > 0 {
			return true
		}
		for _, m := range c.committed(b) {
			if m.ID == during.ID {
				return true
			}
		}
		return false
	})

	// Status says why A takes no part (asked while the host is away, so
	// A cannot have caught up yet).
	if st, ok := c.Status(a); !ok || st.Restored == "" {
		t.Errorf("the restored A's status does not say it was restored (ok %v): %+v", ok, st.Restored)
	}

	c.start(h)
	want := append([]string{during.ID}, five...)
	for i := range c.Size() {
		c.Eventually(t, time.Minute, fmt.Sprintf("node%d to list the five acknowledged messages and B's", i), func() bool {
			return c.listsAll(i, want)
		})
	}
	c.Eventually(t, 30*time.Second, "the restored A to take part in elections again, and its status to say so no more", func() bool {
		hold, err := node.RestoredHold(c.Node(a), c.GroupID)
		st, ok := c.Status(a)
		return err == nil && !hold && ok && st.Restored == ""
	})
}
