package node_test

import (
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
)

// TestVoterLyingAboutItsLog: a malicious voter M that missed the last
// entry reports, once the host is cut off, a log 1,000 entries longer than
// it has (ping flag bit 4), so that the honest voter takes M for the only
// member not behind, the backup, and passes itself over; then M forces a
// campaign with its real log. Claim (docs/PROTOCOL.md, the cut-off
// campaign): the honest voter refuses M's campaign, its log being behind,
// and, knowing M's log from M's vote request rather than from its report,
// takes over at once; M's lie cannot make it wait for raft's election
// timeout (10 s here), and no vote goes to M's shorter log: the message M
// missed stays committed.
//
// Watched to succeed with the candidate's log taken from its report (the
// override in noteForcedVote removed): the honest voter took M's lie for
// the truth, did not take over, and the group had no host for raft's
// election timeout. Fails with the override restored.
func TestVoterLyingAboutItsLog(t *testing.T) {
	nodetest.ParallelTimed(t)
	c := settledLine(t, 47)
	sent := c.converged(0)
	// M (node2) misses the last message: the host's appends do not reach
	// it, and node0 and the host commit it.
	net := c.Net()
	u := func(i int) string { return c.Member(i).URL }
	net.Cut(u(1), u(2))
	missed := c.sendCommitted(0, "node2 misses this", 10*time.Second)
	// M lies about its log in every report of a silence, and the host is
	// cut off from both.
	c.Node(2).LieAboutLog(1000)
	net.Partition([]string{u(1)}, []string{u(0), u(2)})
	// node0 must count the host silent itself, with node2's lie among the
	// reports of this silence: only then does it pass itself over, and
	// only a voter that has not heard its host for two heartbeats takes
	// over after refusing a campaign. node2, silent since the cut, reports
	// to node0 before the partition too: waiting for any report of node2's
	// let the campaign come a heartbeat after the partition, when node0
	// had heard its host too recently to take over (1 run in 8 with the
	// web tests and two busy loops beside it; every run without the wait).
	liar := c.Member(2).ID.Public().Sign
	c.Eventually(t, 10*time.Second, "node0 to count the host silent, holding node2's lie of this silence", func() bool {
		index, ok, err := node.SilentLogOf(ctxT(t, 5*time.Second), c.Node(0), c.GroupID, liar)
		return err == nil && ok && index >= 1000
	})
	if h := c.Host(); h != 1 {
		t.Fatalf("node%d hosts before the liar's campaign: the test needs node0 to have passed itself over", h)
	}
	start := time.Now()
	if err := c.Node(2).ForceCampaign(ctxT(t, 5*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 5*time.Second, "node0 to host, before half of raft's election timeout", func() bool {
		return c.Host() == 0
	})
	t.Logf("node0 hosts %v after the liar's campaign", time.Since(start))
	c.Node(2).LieAboutLog(0)
	net.Heal()
	c.send(0, "after the lie", 10*time.Second)
	got := c.converged(len(sent) + 2)
	found := false
	for _, m := range got {
		found = found || m.ID == missed.ID
	}
	if !found {
		t.Fatalf("the message node2 missed is not in the group's order after the failover")
	}
}
