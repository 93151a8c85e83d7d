package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestPlacementAvoidsRelayedHost: in a star where member 2, at the
// centre, is the best host, every member reaches member 2 only through a
// relay, as its transport tells it (Config.Path, which the libp2p host
// answers in `demes serve`). Each member marks that in its latency map,
// every member ranks member 2 as relayed, and the group settles on member
// 1, the best member reached directly, which is near as good; member 2
// still ranks among the backups by its relayed RTT.
//
// Watched to fail with the relayed marks left out of the latency maps: the
// group settled on member 2. In the star of TestPlacementOptimalHostAndFailover,
// with member 1 twice as far from the centre, relayed member 2 ranked only
// 14% behind member 1; under CI's load the measured round trips once
// reversed that (a run of f0de331). Here member 1 is 28% ahead.
// relayStar is star with member 1 nearer the centre: member 2's mean
// distance is 9.25, member 1's 10.2, the others' 14.2 and more; relayed,
// member 2 ranks as 9.25 * election.RelayedFactor + RelayedMillis = 13.1.
var relayStar = points{{0, -13}, {3, 0}, {0, 0}, {-11, 0}, {0, 10}}

func TestPlacementAvoidsRelayedHost(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := newClusterWith(t, len(relayStar), 24, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(relayStar, 0)
		behind := c.Member(2).ID.Public().Sign
		for _, tn := range c.Members() {
			self := tn.ID.Public().Sign
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				cfg.Path = func(peer [32]byte) string {
					if self == behind || peer == behind {
						return "relayed"
					}
					return "direct"
				}
			}
		}
	})
	c.form()
	c.waitVoters(5)
	c.waitSettledOn(1, "member 2 relayed")

	relayed := c.Member(2).ID.Public().String()
	c.Eventually(t, 30*time.Second, "every member to rank member 2 as relayed, behind member 1", func() bool {
		for _, tn := range c.Members() {
			g := c.Node(tn.Index).Status().Groups[0]
			if len(g.Preference) != 5 || g.Preference[0] != c.Member(1).ID.Public().String() || g.Preference[1] != relayed {
				return false
			}
		}
		return true
	})
}
