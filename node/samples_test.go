package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestHeldHostKeepsRoundTrips: a follower stands still three times, 1.8 s
// each (its links held as a stopped process's or a pulled cable's are:
// nothing refused, everything delivered once it is back), then the host
// three times, and each time another member takes over. Each time, the
// pings in flight to and from it are answered together when it comes
// back, each as late as the hold. The
// round trips the members measure, which status shows and from which
// raft's ticks and the silence that makes a host cut off are derived
// (timing.go, cutoff.go), must stay those of the network (links of 1 ms):
// here, below half the hold at every moment. Without the rules below the
// holds measured 1,047 to 1,603 ms. A loaded machine measures more than
// the links' 1 ms all the same: node1 measured 471 ms to node0 while their
// group's goroutines stood still for more than an election timeout, with
// the package's tests and the browser tests running beside it on two
// cores, which a bound of a quarter of the hold (450 ms) did not leave room
// for. (A longer hold does not help: past peerRequestTimeout, 2 s, the
// pings in flight are abandoned, and a pong after a gap is never tried.)
//
// Watched to fail with every pong taken as a sample (measures always
// true): a member measured a round trip of 1,047 ms to the held host; and
// without the rule for pongs after a gap (notePongGap), a follower measured
// 1,088 ms to a held fellow follower, which it exchanges no raft messages
// with. And with only each member's last silence kept, the pongs of a hold
// that came over a few hundred milliseconds on a loaded machine were taken
// after the first gap among them: up to 1,920 ms, in 15 of 24 runs four at
// once with three busy loops beside them (samples.go, silences).
func TestHeldHostKeepsRoundTrips(t *testing.T) {
	nodetest.ParallelTimed(t)
	const hold = 1800 * time.Millisecond
	// Pings every 100 ms: 18 in flight to and from a held member.
	c := newClusterWith(t, 3, 361, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = fastPlacement
		}
	})
	c.form()
	c.waitVoters(3)
	c.Eventually(t, time.Minute, "every member to measure every other", func() bool {
		for i := range 3 {
			g, ok := c.Status(i)
			if !ok {
				return false
			}
			for _, m := range g.Members {
				if !m.Self && m.RTTMillis <= 0 {
					return false
				}
			}
		}
		return true
	})

	// Watch every member's measurements for the whole test.
	var (
		mu    sync.Mutex
		worst float64
		who   string
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for i := range 3 {
				g, _ := c.Status(i)
				for _, m := range g.Members {
					mu.Lock()
					if m.RTTMillis > worst {
						worst, who = m.RTTMillis, fmt.Sprintf("node%d to %s", i, m.Name)
					}
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	for round := range 6 {
		// Rounds 0 to 2 hold a follower, which nobody but the host talks
		// to (and which hears from no one meanwhile); rounds 3 to 5 the
		// host, which another member replaces.
		h := c.waitHost(-1)
		held := h
		if round < 3 {
			held = (h + 1 + round%2) % 3
		}
		url := c.URLs(held)[0]
		start := time.Now()
		c.Net().Hold(url)
		if held == h {
			c.waitHost(h)
		}
		// The hold is the fault itself: it lasts its time.
		<-time.After(time.Until(start.Add(hold)))
		c.Net().Release(url)
		c.Eventually(t, time.Minute, "every member to follow one host again", c.OneHost())
		t.Logf("round %d: node%d held %v (the host: node%d)", round, held, hold, h)
	}
	// The pongs of the last hold arrive with its release.
	c.send(0, "after the holds", 30*time.Second)
	stop()
	wg.Wait()
	if limit := float64(hold.Milliseconds()) / 2; worst >= limit {
		t.Fatalf("a member measured a round trip of %.0f ms (%s) over links of 1 ms; want under %.0f ms: the holds were taken for the network", worst, who, limit)
	}
	t.Logf("the longest round trip measured: %.1f ms (%s)", worst, who)
}

// TestRoundTripsFollowAFarMove: members 120 to 200 ms apart, farther than
// two heartbeats, so that their raft messages come one round trip apart;
// then one of them moves farther away. What each member measures, and
// status shows, follows the move: raft messages a round trip apart are no
// silence that leaves pongs out (samples.go, overdueAfter).
//
// Watched to fail with a silence counted from when the member was last
// heard rather than from when it was overdue: node0 left out 14 of the 38
// pongs until it measured the move (0 of 14 now).
func TestRoundTripsFollowAFarMove(t *testing.T) {
	nodetest.ParallelTimed(t)
	p := points{{0, 0}, {80, 0}, {0, 60}}
	// The default ping interval (1 s): a sample a second.
	c := newClusterWith(t, len(p), 362, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(p, 0)
	})
	c.form()
	c.waitVoters(3)
	rtt := func(i, j int) float64 {
		g, _ := c.Status(i)
		for _, m := range g.Members {
			if m.Name == c.Member(j).Name {
				return m.RTTMillis
			}
		}
		return 0
	}
	c.Eventually(t, time.Minute, "node0 to measure node2 (120 ms away)", func() bool { return rtt(0, 2) > 0 })
	// Node2 moves 240 ms from node0: a round trip of 480 ms.
	before := c.groupFigures(0)
	c.setPoints(points{{0, 0}, {80, 0}, {0, 240}}, 0)
	c.Eventually(t, time.Minute, "node0 to measure node2's move", func() bool {
		return rtt(0, 2) > 360
	})
	after := c.groupFigures(0)
	kept, left := after.RoundTrip.Count-before.RoundTrip.Count, after.RoundTripsLeftOut-before.RoundTripsLeftOut
	t.Logf("node0 measures node2 %.0f ms away after the move; %d pongs were samples, %d left out", rtt(0, 2), kept, left)
	if 3*left > kept+left {
		t.Fatalf("node0 left out %d of the %d pongs since the move; want most of them as samples: nobody was silent", left, kept+left)
	}
}
