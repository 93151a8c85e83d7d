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

// TestHeldHostKeepsRoundTrips: the host stands still four times, 1.8 s
// each (its links held as a stopped process's or a pulled cable's are:
// nothing refused, everything delivered once it is back), and each time
// another member takes over. Each time, the pings in flight to and from it
// are answered together when it comes back, each as late as the hold. The
// round trips the members measure, which status shows and from which
// raft's ticks and the silence that makes a host cut off are derived
// (timing.go, cutoff.go), must stay those of the network (links of 1 ms):
// here, below a quarter of the hold at every moment.
//
// Watched to fail with every pong taken as a sample (measures always
// true): a member measured a round trip of 1,047 ms to the held host.
func TestHeldHostKeepsRoundTrips(t *testing.T) {
	nodetest.ParallelTimed(t)
	const hold = 1800 * time.Millisecond
	c := newCluster(t, 3, 361, simnet.LinkConfig{Latency: time.Millisecond})
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

	for round := range 4 {
		h := c.waitHost(-1)
		url := c.URLs(h)[0]
		start := time.Now()
		c.Net().Hold(url)
		c.waitHost(h)
		// The hold is the fault itself: it lasts its time.
		<-time.After(time.Until(start.Add(hold)))
		c.Net().Release(url)
		c.Eventually(t, time.Minute, "every member to follow one host again", func() bool {
			host := ""
			for i := range 3 {
				g, ok := c.Status(i)
				if !ok || g.Host == "" || host != "" && g.Host != host {
					return false
				}
				host = g.Host
			}
			return true
		})
		t.Logf("round %d: host %d held %v", round, h, hold)
	}
	// The pongs of the last hold arrive with its release.
	c.send(0, "after the holds", 30*time.Second)
	stop()
	wg.Wait()
	if limit := float64(hold.Milliseconds()) / 4; worst >= limit {
		t.Fatalf("a member measured a round trip of %.0f ms (%s) over links of 1 ms; want under %.0f ms: the holds were taken for the network", worst, who, limit)
	}
	t.Logf("the longest round trip measured: %.1f ms (%s)", worst, who)
}

// TestRoundTripsFollowAFarMove: members 120 to 200 ms apart, farther than
// two heartbeats, so that their raft messages come one round trip apart;
// then one of them moves farther away. What each member measures, and
// status shows, follows the move: raft messages a round trip apart are no
// silence that leaves pongs out (samples.go, overdueAfter).
func TestRoundTripsFollowAFarMove(t *testing.T) {
	nodetest.ParallelTimed(t)
	p := points{{0, 0}, {80, 0}, {0, 60}}
	c := newClusterWith(t, len(p), 362, simnet.LinkConfig{}, func(c *cluster) {
		c.setPoints(p, 0)
		for _, tn := range c.Members() {
			tn.Tweak = fastPlacement
		}
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
	c.setPoints(points{{0, 0}, {80, 0}, {0, 240}}, 0)
	c.Eventually(t, time.Minute, "node0 to measure node2's move", func() bool {
		return rtt(0, 2) > 360
	})
	t.Logf("node0 measures node2 %.0f ms away (after the move)", rtt(0, 2))
}
