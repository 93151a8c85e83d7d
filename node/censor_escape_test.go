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
)

// refuse has member i refuse, as unreachable, the frames drop picks;
// everything else reaches its node.
func (c *cluster) refuse(i int, drop func(env *crypto.Envelope) bool) {
	n := c.Node(i)
	c.net.Register(c.Member(i).URL, func(ctx context.Context, frame []byte) ([]byte, error) {
		if env, err := crypto.Verify(frame); err == nil && drop(env) {
			return nil, errors.New("refused by the test")
		}
		return n.HandleFrame(ctx, frame)
	})
}

// deafen has member i refuse the pings of member from while deaf holds:
// neither hears what the other's pings and pongs say (their suspicions);
// everything else, raft included, flows as before.
func (c *cluster) deafen(i, from int, deaf *atomic.Bool) {
	key := c.Member(from).ID.Public().Sign
	c.refuse(i, func(env *crypto.Envelope) bool {
		return deaf.Load() && env.Type == crypto.TypePing && env.Sender == key
	})
}

// heldBackByNode0 has node0, hosting, hold back the messages of node1 and
// node2 while it commits its own, until both suspect it.
//
// Where the two voters hear each other, they depose node0 once both
// suspect it and elect one of themselves, and the new term ends both
// suspicions within an election timeout or so: a poll on a loaded machine
// missed that moment (CI, TestCensorCannotHideBySilencingNowAndThen). So a
// suspicion once seen counts, and so does a deposition, which with three
// voters takes both node1's and node2's suspicion. And on a loaded machine
// node0 can lose its seat before anyone suspects it (a lease that lapsed
// while it was silent to one voter): the scenario then did not happen, and
// it runs again once node0 hosts again, up to three times.
func (c *cluster) heldBackByNode0(ctx context.Context) {
	c.t.Helper()
	c.censor(0, 1, 2)
	for try := 1; ; try++ {
		c.chatter(0, func() bool { return c.Host() == 0 })
		for _, i := range []int{1, 2} {
			if _, err := c.Node(i).Send(ctx, c.GroupID, fmt.Sprintf("held back %d, try %d", i, try), 0); err != nil {
				c.t.Fatal(err)
			}
		}
		var seen [3]bool
		lostTo := -1
		c.Eventually(c.t, 45*time.Second, "node1 and node2 to suspect node0", func() bool {
			if c.depositions(1)+c.depositions(2) > 0 {
				return true
			}
			for _, i := range []int{1, 2} {
				if s, ok := c.Status(i); ok && s.Censorship != nil && !s.Censorship.Since.IsZero() {
					seen[i] = true
				}
			}
			if seen[1] && seen[2] {
				return true
			}
			if h := c.Host(); h == 1 || h == 2 {
				lostTo = h
				return true
			}
			return false
		})
		if lostTo < 0 {
			return
		}
		if try == 3 {
			c.t.Fatalf("node0 lost its seat to node%d before node1 and node2 suspected it, %d times", lostTo, try)
		}
		c.t.Logf("node%d hosts before node1 and node2 suspected node0 (seen %v); again once node0 hosts again", lostTo, seen[1:])
		c.handBackToNode0(ctx)
	}
}

// handBackToNode0 has node1 or node2, hosting, hand leadership back to
// node0 until it hosts, for a scenario run again after node0 lost its seat
// too early. Handed back, rather than waited for: a voter's suspicion of
// node0 that came and went between two polls stays a past suspicion, and
// the new host's placement then rightly never hands node0 leadership again
// (a loaded run waited a minute).
func (c *cluster) handBackToNode0(ctx context.Context) {
	c.t.Helper()
	c.Eventually(c.t, 60*time.Second, "node0 to host again", func() bool {
		h := c.Host()
		if h == 1 || h == 2 {
			if err := node.HandOver(ctx, c.Node(h), c.GroupID, c.Member(0).ID.Public().Sign); err != nil {
				c.t.Fatal(err)
			}
		}
		return h == 0
	})
}

// TestCensorCannotEscapeByHandover: the best-placed host holds back both
// other voters' messages, and hands leadership to one of them (node1) once
// both suspect it, before they have heard each other say so (here they do
// not hear each other's pings until then): no voter counted a majority in
// the censor's term, so none deposed it. Each still says, as a past
// suspicion, what it suspected in that term; once they hear each other,
// they count the majority and shun the censor: node1 (or node2), hosting,
// does not hand leadership back to it, however well placed. Before past suspicions
// were told, placement handed it straight back (as it did, by chance, in a
// loaded run of TestDeposedHostNotHandedBack, when the censor's own
// placement handed over just before the voters counted).
func TestCensorCannotEscapeByHandover(t *testing.T) {
	t.Parallel()
	c := newCensorCluster(t, 333)
	var deaf atomic.Bool
	deaf.Store(true)
	c.deafen(1, 2, &deaf)
	c.deafen(2, 1, &deaf)

	ctx := ctxT(t, 90*time.Second)
	c.heldBackByNode0(ctx)
	for _, i := range []int{1, 2} {
		if c.depositions(i) > 0 {
			s, _ := c.Status(i)
			t.Fatalf("node%d deposed node0 without hearing the other voter: %+v", i, s.Censorship)
		}
	}
	// The censor hands over to node1, holding back their messages all
	// along; once node1 hosts, their proposals go to node1. (The test used
	// to stop the censor first: on a loaded machine the handover then took
	// long enough for it to commit their messages, the voters stopped
	// suspecting it, and placement rightly handed it leadership back.)
	// node2 may win instead: on a loaded machine node1's campaign stalled,
	// and node2, the best backup, campaigned. Both are victims, placed
	// alike: either does.
	newHost := -1
	c.Eventually(t, 30*time.Second, "node1 or node2 to host", func() bool {
		if h := c.Host(); h == 1 || h == 2 {
			newHost = h
			return true
		}
		// Again until it is done: raft abandons a transfer that did
		// not complete within an election timeout (node1 catching up
		// on a loaded machine).
		if err := node.HandOver(ctx, c.Node(0), c.GroupID, c.Member(1).ID.Public().Sign); err != nil {
			t.Fatal(err)
		}
		return false
	})
	deaf.Store(false)
	// The new host's placement ranks node0 first and asks to hand
	// leadership back; it must withhold that. (One withheld request is
	// what the test waits for, as in TestDeposedHostNotHandedBack: how
	// often placement asks again depends on latencies measured under
	// load. Either victim may host meanwhile: count both.)
	c.Eventually(t, 60*time.Second, "the new host to withhold a handover to node0", func() bool {
		if c.Host() == 0 {
			t.Fatalf("the censor got leadership back: it handed over (to node%d) before the voters counted their majority", newHost)
		}
		return c.withheld(1)+c.withheld(2) >= 1
	})
}

// TestCensorCannotEscapeBySilence: as TestCensorCannotEscapeByHandover, but
// the censor falls silent (nothing it sends arrives) instead of handing
// over, once both other voters suspect it and before they have heard each
// other. They elect one of themselves; neither counted a majority in the
// censor's term. Each voter's raft had no leader for a moment before the
// new term, and that moment reset its watch of the host and dropped its
// suspicion, so neither told it as a past one, and the new host handed
// leadership straight back to the censor once it spoke again (found by
// helper-46's review; 3 failures of 3 before the watch outlived the moment).
func TestCensorCannotEscapeBySilence(t *testing.T) {
	t.Parallel()
	c := newCensorCluster(t, 334)
	var deaf, silent atomic.Bool
	deaf.Store(true)
	censor := c.Member(0).ID.Public().Sign
	for _, pr := range [][2]int{{1, 2}, {2, 1}} {
		key := c.Member(pr[1]).ID.Public().Sign
		c.refuse(pr[0], func(env *crypto.Envelope) bool {
			return deaf.Load() && env.Type == crypto.TypePing && env.Sender == key ||
				silent.Load() && env.Sender == censor
		})
	}

	ctx := ctxT(t, 90*time.Second)
	c.heldBackByNode0(ctx)
	silent.Store(true)
	newHost := -1
	c.Eventually(t, 30*time.Second, "node1 or node2 to host", func() bool {
		newHost = c.Host()
		return newHost == 1 || newHost == 2
	})
	c.net.Register(c.Member(0).URL, c.Node(0).HandleFrame)
	silent.Store(false)
	deaf.Store(false)
	// Node1 and node2 are placed alike, so either may host meanwhile:
	// count both.
	c.Eventually(t, 60*time.Second, "the new host to withhold a handover to node0", func() bool {
		if c.Host() == 0 {
			t.Fatalf("the censor got leadership back after falling silent (node%d hosted after it)", newHost)
		}
		return c.withheld(1)+c.withheld(2) >= 1
	})
}

// TestCensorCannotHideBySilencingNowAndThen: the host holds back both other
// voters' messages and falls silent to each in turn, for longer than an
// election timeout, so that each one's raft loses it for a moment (a
// pre-vote, which the other voter refuses: it still hears the host) in the
// same term, less than CensorAfter apart. Such a moment once reset a voter's
// watch of its host, and the host was never suspected; the watch outlives
// it now, and both voters come to suspect the host.
func TestCensorCannotHideBySilencingNowAndThen(t *testing.T) {
	t.Parallel()
	c := newCensorCluster(t, 335)
	var silentTo atomic.Int32 // the voter the host is silent to now, 0 for none
	censor := c.Member(0).ID.Public().Sign
	for _, i := range []int{1, 2} {
		c.refuse(i, func(env *crypto.Envelope) bool {
			return silentTo.Load() == int32(i) && env.Sender == censor
		})
	}
	// Each voter in turn, 1.2 s each (the election timeout is 0.5 to 1 s):
	// a voter hears the host for 1.2 s of every 2.4, and CensorAfter is 3 s.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for k := 0; ctx.Err() == nil; k++ {
			silentTo.Store(int32(1 + k%2))
			select {
			case <-ctx.Done():
			case <-time.After(1200 * time.Millisecond):
			}
		}
		silentTo.Store(0)
	}()
	c.heldBackByNode0(ctxT(t, 90*time.Second))
}
