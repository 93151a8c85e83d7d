package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// notNewer counts the prekey entries node i rejected as not newer than
// their member's current prekey: copies of a prekey the log already had.
func (c *cluster) notNewer(i int) int64 {
	var k int64
	for reason, n := range c.Node(i).Status().Rejected {
		if strings.HasPrefix(reason, "log entry: prekey not newer") {
			k += n
		}
	}
	return k
}

// TestPrekeyProposedOnceWhileCatchingUp: a member back from an absence with
// a new prekey publishes it once, not again every few retry intervals
// while it catches up and while its copy is on the way: each copy is
// committed into every member's log, and all but the first are rejected
// as not newer (seen as a junk entry every 2 s while a member caught up on
// 1,000,000 messages). Its retry interval here is 5 ms and its links slow,
// so that the old code proposed the key again many times before its state
// named it.
func TestPrekeyProposedOnceWhileCatchingUp(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 244, simnet.LinkConfig{Latency: time.Millisecond}, nil)
	c.form()
	c.waitPrekeys(3)
	c.Crash(2)
	c.sendMany("away", 40)
	before := c.notNewer(0)
	c.Member(2).Tweak = func(cfg *node.Config) { cfg.RetryInterval = 5 * time.Millisecond }
	for _, j := range []int{0, 1} {
		c.net.SetLink(c.Member(j).URL, c.Member(2).URL, simnet.LinkConfig{Latency: 40 * time.Millisecond})
		c.net.SetLink(c.Member(2).URL, c.Member(j).URL, simnet.LinkConfig{Latency: 40 * time.Millisecond})
	}
	c.start(2)
	if err := node.RotatePrekey(c.Node(2)); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "node2's new prekey in every log", func() bool {
		for i := range 3 {
			if ok, err := node.NamesPrekey(c.Node(i), c.GroupID, c.Node(2)); err != nil || !ok {
				return false
			}
		}
		return true
	})
	// Copies proposed before the first was applied are committed after it:
	// a last message sent now is applied after all of them.
	c.send(0, "after", 10*time.Second)
	c.converged(41)
	if got := c.notNewer(0) - before; got != 0 {
		t.Errorf("%d copies of node2's prekey were committed and rejected as not newer, want none", got)
	}
}

// TestPrekeyNotProposedAgainAfterRestart: a member whose new prekey was
// committed while it could not hear the host (so its own state does not
// name it yet) and which then restarts does not propose the key again
// before it has caught up: after a restart it counts as behind until the
// host's first append. (helper-44: it proposed at once, as its last
// proposal's time was lost with the restart and a heartbeat names no
// commit index.)
func TestPrekeyNotProposedAgainAfterRestart(t *testing.T) {
	t.Parallel()
	// No member campaigns while it hears nothing: v keeps its host, to
	// which it can still send.
	quiet := func(cfg *node.Config) {
		cfg.Timing = node.Timing{Tick: 50 * time.Millisecond, ElectionTicks: 1200, HeartbeatTicks: 1}
	}
	c := newClusterWith(t, 3, 246, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, m := range c.Members() {
			m.Tweak = quiet
		}
	})
	c.form()
	c.waitVoters(3) // a quorum without v
	c.waitPrekeys(3)
	h := c.Host()
	v := (h + 1) % 3
	o := 3 - h - v
	before := c.notNewer(h)
	// v can send to the others but hears nothing.
	c.net.Cut(c.Member(h).URL, c.Member(v).URL)
	c.net.Cut(c.Member(o).URL, c.Member(v).URL)
	if err := node.RotatePrekey(c.Node(v)); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 20*time.Second, "v's new prekey on the host and the other", func() bool {
		for _, i := range []int{h, o} {
			if ok, err := node.NamesPrekey(c.Node(i), c.GroupID, c.Node(v)); err != nil || !ok {
				return false
			}
		}
		return true
	})
	if ok, _ := node.NamesPrekey(c.Node(v), c.GroupID, c.Node(v)); ok {
		t.Fatal("v applied its own new prekey although it heard nothing")
	}
	c.Crash(v)
	c.net.Heal()
	c.Member(v).Tweak = func(cfg *node.Config) { quiet(cfg); cfg.RetryInterval = 5 * time.Millisecond }
	for _, j := range []int{h, o} {
		c.net.SetLink(c.Member(j).URL, c.Member(v).URL, simnet.LinkConfig{Latency: 40 * time.Millisecond})
		c.net.SetLink(c.Member(v).URL, c.Member(j).URL, simnet.LinkConfig{Latency: 40 * time.Millisecond})
	}
	c.start(v)
	c.Eventually(t, 30*time.Second, "v's prekey in v's own log", func() bool {
		ok, err := node.NamesPrekey(c.Node(v), c.GroupID, c.Node(v))
		return err == nil && ok
	})
	// A copy v proposed meanwhile is committed before this message.
	c.send(h, "after", 10*time.Second)
	c.converged(1)
	if got := c.notNewer(h) - before; got != 0 {
		t.Errorf("%d copies of a prekey the log already had were committed after v's restart, want none", got)
	}
}
