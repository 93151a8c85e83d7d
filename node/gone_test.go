package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// slowElections sets raft's election timeout to 10 s: what the host's best
// backup does before then, raft alone would not have done.
func slowElections(cfg *node.Config) {
	fastPlacement(cfg)
	cfg.Timing = node.LAN
	cfg.Timing.ElectionTicks = 200
}

// line puts three members on a line, member 1 in the middle: the host once
// placement settles; without it, member 0 and member 2 tie and the ranking
// breaks the tie.
var line = points{{-10, 0}, {0, 0}, {12, 0}}

// settledLine forms a group of the three members of line, with raft's
// election timeout at 10 s (slowElections), and waits until node1 hosts and
// every member follows it and has published its latency map (so that the
// best backup is the top of the ranking without the host).
func settledLine(t *testing.T, seed int64) *cluster {
	t.Helper()
	c := newClusterWith(t, len(line), seed, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(line, 0)
		for _, tn := range c.Members() {
			tn.Tweak = slowElections
		}
	})
	c.form()
	c.waitVoters(3)
	c.waitSettledOn(1, "group start")
	host := c.Member(1).ID.Public().String()
	c.Eventually(t, 30*time.Second, "node0 and node2 to follow node1, with every latency edge published", func() bool {
		for _, i := range []int{0, 2} {
			if g := c.Node(i).Status().Groups[0]; len(g.Edges) != 3 || g.Host != host || g.Role != "follower" {
				return false
			}
		}
		return true
	})
	return c
}

// fastCampaigns sums the elections node i started because its host's
// process was gone.
func fastCampaigns(c *cluster, i int) uint64 {
	var n uint64
	for _, g := range c.Node(i).Figures().Groups {
		n += g.FastCampaigns
	}
	return n
}

// When the host's process dies, its machine refuses connections (here: the
// simulated network refuses posts to a crashed node). The best backup then
// takes over at once, with a campaign the other voters join although they
// heard from the host within their election timeout, instead of waiting out
// that timeout (10 s here).
func TestHostGoneBackupTakesOverAtOnce(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := settledLine(t, 41)
	crashed := time.Now()
	c.Crash(1)
	h := -1
	c.Eventually(t, 5*time.Second, "a new host before half of raft's election timeout", func() bool {
		h = c.Host()
		return h >= 0 && h != 1
	})
	t.Logf("node%d hosts %v after the crash", h, time.Since(crashed))
	if n := fastCampaigns(c, h); n != 1 {
		t.Fatalf("node%d started %d elections for a gone host, want 1", h, n)
	}
	if n := fastCampaigns(c, 2-h); n != 0 {
		t.Fatalf("node%d, not the best backup, started %d elections for a gone host, want 0", 2-h, n)
	}
	// Nobody handed over: the backup ranked itself first from maps
	// measured with the lost host (or, with the ranking incomplete, was
	// the first voter to join). Counted as placed by a handover, it
	// started settled, and hysteresis kept the group on it when another
	// member was better by less than a fifth.
	if placed, err := node.PlacedByHandover(ctxT(t, 10*time.Second), c.Node(h), c.GroupID); err != nil || placed {
		t.Fatalf("node%d, taking over from a gone host, counts itself placed by a handover (%v)", h, err)
	}
	c.send(h, "after the host died", 10*time.Second)
}

// A host behind a cut link is not gone: nothing refuses a connection, so
// nobody campaigns as for a gone host. The majority side elects a new host
// all the same (by the cut-off campaign, cutoff.go, or raft's timeout), and
// the host cut off, which hears nobody, campaigns at no one's expense: it
// forces no campaign.
func TestHostCutOffIsNotGone(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := newClusterWith(t, len(line), 43, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(line, 0)
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				cfg.Timing = node.LAN // an election timeout of 0.5 s
			}
		}
	})
	c.form()
	c.waitVoters(3)
	c.waitSettledOn(1, "group start")
	host := c.Member(1).URL
	c.net.Partition([]string{host}, []string{c.Member(0).URL, c.Member(2).URL})
	h := -1
	c.Eventually(t, 30*time.Second, "a new host on the majority side", func() bool {
		h = c.Host()
		return h == 0 || h == 2
	})
	if n := fastCampaigns(c, 1); n != 0 {
		t.Fatalf("node1, the host cut off, forced %d campaigns", n)
	}
	c.send(h, fmt.Sprintf("on node%d's side", h), 10*time.Second)
}

// TestCrashedMemberOfflineAtOnce: a member whose process is gone shows as
// offline as soon as its machine refuses this node (here the host's next
// heartbeat to it), not once three ping intervals have passed without a
// pong (30 s here): status and the UI marked a killed member online for
// seconds after the host knew it gone.
func TestCrashedMemberOfflineAtOnce(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 44, simnet.LinkConfig{}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) { cfg.PingInterval = 10 * time.Second }
		}
	})
	c.form()
	c.waitVoters(3)
	h := c.waitHost(-1)
	f := (h + 1) % 3
	online := func() (bool, bool) {
		for _, m := range c.Node(h).Status().Groups[0].Members {
			if m.PublicID == c.Member(f).ID.Public().String() {
				return m.Online, true
			}
		}
		return false, false
	}
	c.Eventually(t, 30*time.Second, fmt.Sprintf("the host, node%d, to show node%d online", h, f), func() bool {
		on, ok := online()
		return ok && on
	})
	c.Crash(f)
	c.Eventually(t, 15*time.Second, fmt.Sprintf("the host to show node%d offline once its heartbeats are refused", f), func() bool {
		on, ok := online()
		return ok && !on
	})
}
