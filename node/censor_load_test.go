package node_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestNoCensorshipSuspicionUnderSteadyLoad: every member always has a
// message on its way (several senders each, each sending again as soon as
// its last message committed), and every message commits quickly. No member
// may suspect the honest host: its messages do not wait. The watch once
// timed how long a node's outbox had not been empty, not how long its
// oldest message had waited, so under a benchmark's steady load every
// member suspected the host after CensorAfter, the voters deposed it, and
// each member proposed its whole outbox again (2,651 duplicates in 18,586
// entries, and the group's turns took seconds).
func TestNoCensorshipSuspicionUnderSteadyLoad(t *testing.T) {
	t.Parallel()
	const censorAfter = 1500 * time.Millisecond
	c := newClusterWith(t, 3, 351, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) { cfg.CensorAfter = censorAfter }
		}
	})
	c.form()
	c.waitVoters(3)
	c.setSettings(0, node.GroupSettings{MsgsPerMinute: 100_000})
	host := c.waitHost(-1)
	st, _ := c.Status(host)
	term := st.Term

	// The sends on their way, by start time, and the longest a finished
	// one took: a suspicion is false when no send, finished or not, has
	// taken CensorAfter (a node's message waits at most as long as the
	// send that queued it).
	var (
		mu       sync.Mutex
		inFlight = map[int]time.Time{}
		slowest  time.Duration
		sent     int
	)
	oldest := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		d := slowest
		for _, at := range inFlight {
			d = max(d, time.Since(at))
		}
		return d
	}
	ctx, cancel := context.WithTimeout(ctxT(t, time.Minute), 4*censorAfter)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 3 {
		for s := range 6 {
			wg.Go(func() {
				slot := i*6 + s
				for ctx.Err() == nil {
					start := time.Now()
					mu.Lock()
					inFlight[slot] = start
					mu.Unlock()
					_, err := c.Send(ctx, i, "steady", time.Minute)
					mu.Lock()
					delete(inFlight, slot)
					if err == nil {
						slowest = max(slowest, time.Since(start))
						sent++
					}
					mu.Unlock()
				}
			})
		}
	}
	for ctx.Err() == nil {
		for i := range 3 {
			g, ok := c.Status(i)
			if !ok {
				continue
			}
			waited := oldest()
			if g.Censorship != nil && waited < censorAfter {
				t.Fatalf("node%d suspects the host of censorship (%s) though no message has waited %v (the longest send so far: %v)", i, g.Censorship.Message, censorAfter, waited)
			}
			if d := c.depositions(i); d > 0 && waited < censorAfter {
				t.Fatalf("node%d deposed the host (term %d, was %d) though no message has waited %v (the longest send so far: %v)", i, g.Term, term, censorAfter, waited)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	wg.Wait()
	t.Logf("%d messages sent in %v; the longest send took %v", sent, 4*censorAfter, slowest)
	if sent < 20 {
		t.Skipf("only %d messages committed in %v: the machine is too slow for the load this test needs", sent, 4*censorAfter)
	}
}
