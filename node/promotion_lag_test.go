package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// voterSet returns node i's view of who votes in the group, as a set of
// node indexes, and the index of the host it sees (-1: none).
func (c *cluster) voterSet(i int) (voters map[int]bool, host int) {
	g := c.Node(i).Status().Groups[0]
	voters, host = map[int]bool{}, -1
	for j, tn := range c.Members() {
		id := tn.ID.Public().String()
		for _, m := range g.Members {
			if m.PublicID == id && m.Voter {
				voters[j] = true
			}
		}
		if g.Host == id {
			host = j
		}
	}
	return voters, host
}

func sameSet(a map[int]bool, b ...int) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !a[x] {
			return false
		}
	}
	return true
}

// TestPromotionLag: a member that was away while a learner was promoted and
// became host, and the old host then died, still follows the new host when
// it comes back, although its own applied configuration says the new host is
// a learner, and catches up. It gets through on the word of a voter it knows
// (attest.go): the voters it knows are itself, the dead old host and one
// survivor, so a majority of them could never vouch for the new host.
//
// The placement rules move the voters and the host, following the latency
// geometry: nodes 3 and 4 start far from everyone (learners, with a wide
// margin, so that RTT noise on a loaded machine changes nothing); node 2 goes
// away (dead to the host, so demoted) and node 3 moves to the middle
// (promoted, then handed the host role, with a wide margin again); then the
// old host dies.
//
// Away means cut off by a partition; or crashed, and restarted with periodic
// pings off (as bench.Scale runs), while the pings of node 1, the one voter
// it knows that can vouch, do not reach it: then only its own request for the
// voters' views, made when it refuses the new host, lets it through.
func TestPromotionLag(t *testing.T) {
	nodetest.ParallelTimed(t)
	t.Run("cut off", func(t *testing.T) { nodetest.ParallelTimed(t); testPromotionLag(t, 31, false) })
	t.Run("restarted without pings", func(t *testing.T) { nodetest.ParallelTimed(t); testPromotionLag(t, 32, true) })
}

func testPromotionLag(t *testing.T, seed int64, restart bool) {
	// Mean one-way distances: node 0 40, nodes 1 and 2 about 46, nodes 3
	// and 4 about 77. Voters 0, 1, 2; host 0.
	far := points{{0, 0}, {20, 0}, {-20, 0}, {0, 60}, {0, -60}}
	// Without node 2: node 3 about 23, node 4 28, node 0 32, node 1 37:
	// node 3 is 30% better than node 0 (a transfer takes 20%). Without
	// nodes 2 and 0 as well, node 3 is still the best.
	middle := points{{-20, 0}, {28, 0}, {-100, 0}, {0, 0}, {0, 20}}
	c := newClusterWith(t, len(far), seed, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(far, 0)
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				fastPlacement(cfg)
				cfg.MaxVoters = 3
			}
		}
	})
	c.form()
	const oldHost, vouching, lagging, promoted = 0, 1, 2, 3
	// settled waits until the given nodes agree on the voters, see host
	// as the host, and the voters are as want says (nil: any), and
	// returns the voters. It waits for the voters the step leads to, not
	// the first set the nodes agree on: placement swaps a voter by
	// promoting first and demoting next (election.NextVoterChange), and
	// on a loaded machine, where pings run late, a swap may come and go
	// (a fourth voter for a moment) before the set settles.
	settled := func(what string, on []int, host int, want func(voters map[int]bool) bool) map[int]bool {
		t.Helper()
		var voters map[int]bool
		seen := ""
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := c.Until(ctx, what, func() bool {
			ok := true
			seen, voters = "", nil
			for _, i := range on {
				v, h := c.voterSet(i)
				seen += fmt.Sprintf(" node%d: voters %v host node%d;", i, v, h)
				if voters == nil {
					voters = v
				}
				if h != host || fmt.Sprint(v) != fmt.Sprint(voters) || len(c.Node(i).Status().Groups[0].Members) != c.Size() {
					ok = false
				}
			}
			return ok && (want == nil || want(voters))
		})
		if err != nil {
			t.Fatalf("%v; last seen:%s", err, seen)
		}
		return voters
	}
	settled("host node0 and voters nodes 0, 1 and 2 on every node", []int{0, 1, 2, 3, 4}, oldHost, func(v map[int]bool) bool { return sameSet(v, 0, 1, 2) })
	c.send(0, "before node2 goes", 10*time.Second)
	c.converged(1)

	if restart {
		c.Crash(lagging)
	} else {
		c.Isolate(lagging)
	}
	c.setPoints(middle, 0)
	settled("host node3, and node2 no voter", []int{0, 1, 3, 4}, promoted, func(v map[int]bool) bool { return !v[lagging] })
	c.send(promoted, "while node2 is away", 10*time.Second)
	c.Crash(oldHost)
	final := settled("host node3 after node0 died", []int{1, 3, 4}, promoted, nil)
	c.send(vouching, "after the old host died", 10*time.Second)

	if restart {
		// Requests from node 1 to node 2 are lost (its pings, and nothing
		// else: as a follower it sends node 2 no raft messages); node 2's
		// requests to node 1 are answered.
		c.net.SetLink(c.Member(vouching).URL, c.Member(lagging).URL, simnet.LinkConfig{Drop: 1})
		c.Member(lagging).Tweak = func(cfg *node.Config) {
			fastPlacement(cfg)
			cfg.PingInterval = time.Hour
		}
		// Until node2 has refused node3 once, its requests to node1 are
		// lost too: on a loaded machine node3's first message to the
		// restarted node2 (which it had backed off from) came after
		// node1 had answered node2's first pings, and node2, vouched
		// for already, refused nothing: the test tested nothing.
		toVouching := c.Member(vouching).URL
		c.net.SetLink(c.Member(lagging).URL, toVouching, simnet.LinkConfig{Drop: 1})
		c.start(lagging)
		// The precondition, as for the cut-off case below: on a loaded
		// machine placement may have promoted node 3 for a moment before
		// node 2 crashed (seen in a full -race run: a fourth voter at one
		// index, node 2 crashed 0.1 s later), so that node 2's own log
		// makes node 3 a voter, and node 2 follows it without refusing
		// anything. Nothing else tells node 2 that node 3 votes: its
		// leader messages are refused, node 1's lost.
		var already map[int]bool
		c.Eventually(t, time.Minute, "node2 to refuse node3's leader messages", func() bool {
			if c.Node(lagging).Status().Rejected["leader message from a non-voter"] > 0 {
				return true
			}
			if v, _ := c.voterSet(lagging); v[promoted] {
				already = v
				return true
			}
			return false
		})
		if already != nil {
			t.Skipf("node2's own log made node3 a voter (voters %v): placement promoted it for a moment before node2 crashed, as on a loaded machine", already)
		}
		c.net.SetLink(c.Member(lagging).URL, toVouching, simnet.LinkConfig{Latency: middle.latency(lagging, vouching)})
	} else {
		// The precondition of the test: node 2 missed all of it, and
		// takes node 3 for a learner. (After a restart, node 2's refusals
		// counted below show it.)
		// On a loaded machine placement may still be swapping voters
		// (pings run late) when node 2 is cut off: then node 2 took a
		// swap with it (seen under a full test run beside two chaos
		// runs: voters 0, 1, 2 and 4), and there is nothing to test.
		if v, h := c.voterSet(lagging); !sameSet(v, 0, 1, 2) || h == promoted {
			t.Skipf("node2 saw a voter change while away (voters %v, host node%d): placement was still moving voters when it was cut off, as on a loaded machine", v, h)
		}
		c.net.Heal()
	}
	settled(fmt.Sprintf("node2 to follow node3 and apply the changes it missed: node3 a voter, node2 not (before node2 came back: %v)", final),
		[]int{lagging, promoted}, promoted, func(v map[int]bool) bool { return v[promoted] && !v[lagging] })
	want := []string{"before node2 goes", "while node2 is away", "after the old host died"}
	checkExactlyOnce(t, c.converged(len(want)), want)
	// And it takes part again: its message commits everywhere.
	if m := c.send(lagging, "node2 is back", 10*time.Second); m.State != node.StateCommitted {
		t.Fatalf("node2's message was not committed: %+v", m)
	}
	want = append(want, "node2 is back")
	checkExactlyOnce(t, c.converged(len(want)), want)
	refused := c.Node(lagging).Status().Rejected["leader message from a non-voter"]
	t.Logf("node2 refused %d leader messages from node3 before a voter vouched for it", refused)
}
