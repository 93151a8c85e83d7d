package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestInviteQueuedWhenTheGroupStopsMeanwhile: an invite made while the
// group still commits, whose majority goes offline before it commits, is
// queued once the node sees the group stuck, as one made after would be,
// rather than failing after the 30 s an entry is given to commit.
func TestInviteQueuedWhenTheGroupStopsMeanwhile(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4, 397, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 2*time.Minute)
	c.formOf("g", 3)
	h := -1
	c.Eventually(t, 30*time.Second, "a host", func() bool { h = c.Host(); return h >= 0 })
	// The host invites right after the two others stopped: it still hosts
	// when the invite starts, so the invite is proposed, and cannot commit.
	for i := 0; i <= 2; i++ {
		if i != h {
			c.Stop(i)
		}
	}
	start := time.Now()
	_, err := c.Node(h).Invite(ctxT(t, 25*time.Second), c.GroupID, c.Member(3).ID.Public().String())
	if !errors.Is(err, node.ErrQueued) {
		t.Fatalf("invite as the majority went offline: %v after %v, want it queued", err, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("queued after %v", time.Since(start).Round(time.Millisecond))

	// Back: the same invite answers its code, and the newcomer joins with
	// it (whichever of the invite's frames committed).
	for i := 0; i <= 2; i++ {
		if i != h {
			c.start(i)
		}
	}
	var code string
	c.Eventually(t, 60*time.Second, "the queued invite's code", func() bool {
		code, err = c.Node(h).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(3).ID.Public().String())
		if err != nil && !errors.Is(err, node.ErrQueued) {
			t.Fatalf("invite once the group is back: %v", err)
		}
		return err == nil
	})
	if _, err := c.Node(3).Join(ctx, code); err != nil {
		t.Fatalf("join with the code: %v", err)
	}
}
