package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestCutHostReplaced: the host's links are cut (every message to or from
// it is lost, as with a pulled cable: nothing refuses anything). raft's
// election timeout is set to a minute here, so raft alone would leave the
// group without a host that long; the followers tell each other in their
// pings that they no longer hear the host, and once a majority of the
// voters says so the best backup takes over at once. The group commits
// again, and the old host, back, follows.
//
// Watched to fail with Observations.CutOff never set: no new host within
// 30 s.
func TestCutHostReplaced(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := newClusterWith(t, 3, 51, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				cfg.Timing = node.Timing{Tick: 50 * time.Millisecond, ElectionTicks: 1200, HeartbeatTicks: 1}
			}
		}
	})
	c.form()
	c.waitVoters(3)
	h := c.Host()
	c.send(h, "before the cut", 10*time.Second)

	cut := time.Now()
	c.Isolate(h)
	c.Eventually(t, 30*time.Second, "another member to host after the cut", func() bool {
		x := c.Host()
		return x >= 0 && x != h
	})
	t.Logf("a new host %v after the cut", time.Since(cut).Round(time.Millisecond))
	other := (h + 1) % 3
	c.send(other, "after the cut", 10*time.Second)

	c.Net().Heal()
	c.Eventually(t, 30*time.Second, "the old host to read what was sent after the cut", func() bool {
		ms, err := c.Node(h).Messages(c.GroupID)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Text == "after the cut" && m.State == node.StateCommitted {
				return true
			}
		}
		return false
	})
}
