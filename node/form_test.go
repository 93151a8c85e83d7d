package node_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestFormAsksAgainForAQueuedInvite: while a group forms, a voter may fall
// silent (here node1, crashed once it votes; on a loaded machine, a new
// voter slow to apply its join), the group cannot commit, and the next
// invite is queued (node.ErrQueued). Form asks for it again, as the answer
// tells a person to, and the group forms once node1 is back: before, Form
// failed at once, and with it whichever test was forming its group.
func TestFormAsksAgainForAQueuedInvite(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 185, simnet.LinkConfig{Latency: time.Millisecond})
	newcomer := c.Member(2).ID.Public().String()
	var wg sync.WaitGroup
	defer wg.Wait()
	progress := func(joined int) {
		if joined != 1 {
			return
		}
		c.Eventually(t, 30*time.Second, "node1 to vote", func() bool { return c.Voters(0) == 2 && c.Voters(1) == 2 })
		c.Crash(1)
		// An invite made while node0 still hosts waits for its commit;
		// one made with no host, the group stuck, is queued.
		c.Eventually(t, 30*time.Second, "node0 to step down", func() bool { return c.Host() < 0 })
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// node1 comes back only once the invite is queued.
			if err := c.Until(ctx, "node2's invite queued", func() bool {
				list, err := c.Node(0).Invites(c.GroupID)
				return err == nil && len(list) == 1 && list[0].Invitee == newcomer && list[0].State == node.InviteQueued
			}); err != nil {
				t.Error(err)
			}
			if err := c.Restart(1); err != nil {
				t.Error(err)
			}
		}()
	}
	if err := c.Form(ctxT(t, 2*time.Minute), nodetest.FormOptions{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(3)
}
