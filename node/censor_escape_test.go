package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// deafen has member i refuse the pings of member from while deaf holds:
// neither hears what the other's pings and pongs say (their suspicions);
// everything else, raft included, flows as before.
func (c *cluster) deafen(i, from int, deaf *atomic.Bool) {
	n, key := c.Node(i), c.Member(from).ID.Public().Sign
	c.net.Register(c.Member(i).URL, func(ctx context.Context, frame []byte) ([]byte, error) {
		if deaf.Load() {
			if env, err := crypto.Verify(frame); err == nil && env.Type == crypto.TypePing && env.Sender == key {
				return nil, errors.New("deaf to this member's pings")
			}
		}
		return n.HandleFrame(ctx, frame)
	})
}

// TestCensorCannotEscapeByHandover: the best-placed host holds back both
// other voters' messages, and hands leadership to one of them (node1) once
// both suspect it, before they have heard each other say so (here they do
// not hear each other's pings until then): no voter counted a majority in
// the censor's term, so none deposed it. Each still says, as a past
// suspicion, what it suspected in that term; once they hear each other,
// they count the majority and shun the censor: node1, hosting, does not
// hand leadership back to it, however well placed. Before past suspicions
// were told, placement handed it straight back (as it did, by chance, in a
// loaded run of TestDeposedHostNotHandedBack, when the censor's own
// placement handed over just before the voters counted).
func TestCensorCannotEscapeByHandover(t *testing.T) {
	t.Parallel()
	p := points{{0, 0}, {40, 0}, {-40, 0}}
	c := newClusterWith(t, len(p), 333, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(p, 0)
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				cfg.CensorAfter = 3 * time.Second
			}
		}
	})
	c.form()
	c.waitVoters(3)
	c.waitSettledOn(0, "node0 is best placed")
	var deaf atomic.Bool
	deaf.Store(true)
	c.deafen(1, 2, &deaf)
	c.deafen(2, 1, &deaf)

	c.censor(0, 1, 2)
	c.chatter(0, func() bool { return c.Host() == 0 })
	ctx := ctxT(t, 90*time.Second)
	for _, i := range []int{1, 2} {
		if _, err := c.Node(i).Send(ctx, c.GroupID, fmt.Sprintf("held back %d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	c.Eventually(t, 45*time.Second, "node1 and node2 to suspect node0", func() bool {
		for _, i := range []int{1, 2} {
			if s, ok := c.Status(i); !ok || s.Censorship == nil || s.Censorship.Since.IsZero() {
				return false
			}
		}
		return true
	})
	for _, i := range []int{1, 2} {
		if s, _ := c.Status(i); s.Censorship.Deposed {
			t.Fatalf("node%d deposed node0 without hearing the other voter: %+v", i, s.Censorship)
		}
	}
	// The censor hands over (and, no longer hosting, has nothing to hold
	// back).
	c.net.Register(c.Member(0).URL, c.Node(0).HandleFrame)
	if err := node.HandOver(ctx, c.Node(0), c.GroupID, c.Member(1).ID.Public().Sign); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "node1 to host", func() bool { return c.Host() == 1 })
	deaf.Store(false)
	// node1's placement ranks node0 first and asks to hand leadership
	// back; it must withhold that.
	c.Eventually(t, 60*time.Second, "node1 to withhold three handovers to node0", func() bool {
		if c.Host() == 0 {
			t.Fatalf("the censor got leadership back: it handed over before the voters counted their majority")
		}
		return c.withheld(1) >= 3
	})
}
