package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// ElectionOptions configures [Election].
type ElectionOptions struct {
	// Members is the group size (default 5).
	Members int
	// Trials is how many groups are started, each on its own latency
	// matrix, to time the host's move to the optimal member (default 5).
	Trials int
	// Kills is how many times the optimal host is killed to time the
	// failover to the best backup (default 20, enough for a p99 that is
	// not just the maximum of a handful).
	Kills int
	// Jitter is how long the group runs under +/-30% jitter on every link
	// while host changes are counted (default 60 s).
	Jitter time.Duration
	// Seed chooses the latency matrices (default 1).
	Seed int64
	// Log receives the nodes' warnings; nil discards them.
	Log io.Writer
	// Progress, when set, receives a line per step.
	Progress io.Writer
}

// ElectionResult is what [Election] measured.
type ElectionResult struct {
	Members int
	// ToOptimal: from the call that creates the group until the member
	// with the lowest mean RTT to the others hosts it. It includes the
	// joins (Formed) and the time to measure and publish latency maps.
	ToOptimal Samples
	// Formed: from the same start until the last member had joined.
	Formed Samples
	// ToBackup: from the crash of the optimal host until the best live
	// member (the lowest mean RTT among the survivors) hosts.
	ToBackup Samples
	// FirstHost: from the same crash until any survivor hosts.
	FirstHost Samples
	// Changes counts host changes during Span under jitter.
	Changes int
	Span    time.Duration
}

// ChangesPerMinute is the rate of host changes under jitter.
func (r ElectionResult) ChangesPerMinute() float64 {
	if r.Span <= 0 {
		return 0
	}
	return float64(r.Changes) / r.Span.Minutes()
}

// Figures returns the table lines of the result.
func (r ElectionResult) Figures() []Figure {
	a := durationFigure(fmt.Sprintf("placement: group start -> optimal host (%d members)", r.Members), "s", r.ToOptimal, 0, 0)
	a.Note = fmt.Sprintf("formation (create + joins) median %.2f s of it; ping 200 ms, maps 1 s", secs(r.Formed.Median()))
	b := durationFigure("placement: host crash -> best backup hosts", "s", r.ToBackup, time.Second, 1500*time.Millisecond)
	b.Note = fmt.Sprintf("some survivor hosts after median %.2f s", secs(r.FirstHost.Median()))
	c := Figure{
		Name: "placement: host changes under +/-30% jitter", Unit: "per min", N: r.Changes,
		Median: r.ChangesPerMinute(), P99: nan(), Target: "at most 1 per minute",
		Verdict: verdict(r.ChangesPerMinute() <= 1),
		Note:    fmt.Sprintf("%d changes in %.0f s; best two hosts within 20%%; node default intervals", r.Changes, r.Span.Seconds()),
	}
	return []Figure{a, b, c}
}

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

// matrix is a symmetric one-way latency matrix with a known best host and
// best backup.
type matrix struct {
	oneWay [][]time.Duration
	opt    int // lowest mean RTT to the others
	backup int // lowest mean RTT among the others once opt is gone
}

// newMatrix draws a latency matrix for n members: a hub close to everyone
// (4 to 8 ms one way), a second hub (10 to 14 ms) and the rest far apart
// (20 to 40 ms). The hub wins by far more than the placement hysteresis
// even though shortest paths through it shorten the others' distances;
// without the hub, the second hub wins clearly. Member 0, which creates the
// group and hosts it first, is never the hub.
//
// A close matrix makes the two hubs nearly equal instead (5 to 6 ms against
// 6 to 7 ms one way): the runner-up is within the hysteresis, so jitter
// must not move the host back and forth between them.
func newMatrix(n int, rng *rand.Rand, close bool) matrix {
	m := matrix{oneWay: make([][]time.Duration, n)}
	for i := range m.oneWay {
		m.oneWay[i] = make([]time.Duration, n)
	}
	m.opt = 1 + rng.Intn(n-1)
	for m.backup = rng.Intn(n); m.backup == m.opt; m.backup = rng.Intn(n) {
	}
	ms := func(lo, hi float64) time.Duration {
		return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Millisecond))
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			var d time.Duration
			switch {
			case close && (i == m.opt || j == m.opt):
				d = ms(5, 6)
			case close && (i == m.backup || j == m.backup):
				d = ms(6, 7)
			case i == m.opt || j == m.opt:
				d = ms(4, 8)
			case i == m.backup || j == m.backup:
				d = ms(10, 14)
			default:
				d = ms(20, 40)
			}
			m.oneWay[i][j], m.oneWay[j][i] = d, d
		}
	}
	return m
}

func (m matrix) apply(sim *simnet.Network, c *cluster, jitter float64) {
	for i, a := range c.Members() {
		for j, b := range c.Members() {
			if i != j {
				sim.SetLink(a.URL, b.URL, simnet.LinkConfig{Latency: m.oneWay[i][j], Jitter: jitter})
			}
		}
	}
}

// placementConfig shortens the node's placement intervals so that a trial
// takes seconds: pings every 200 ms (default 1 s), latency maps at most
// every second (5 s), a transfer at most every second (3 s).
func placementConfig(log io.Writer) node.Config {
	return node.Config{
		Logger: nodeLogger(log), PingInterval: 200 * time.Millisecond, LatencyInterval: time.Second,
		TransferCooldown: time.Second, RetryInterval: 200 * time.Millisecond,
	}
}

// Election measures latency-aware placement on the simulated network: how
// long a new group takes to move its host to the optimal member, how long
// the group takes to settle on the best backup when that host crashes, and
// how often the host changes under +/-30% jitter.
func Election(ctx context.Context, o ElectionOptions) (ElectionResult, error) {
	if o.Members < 3 {
		o.Members = 5
	}
	if o.Trials <= 0 {
		o.Trials = 5
	}
	if o.Kills <= 0 {
		o.Kills = 20
	}
	if o.Jitter <= 0 {
		o.Jitter = time.Minute
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	r := ElectionResult{Members: o.Members}
	rng := newRand(o.Seed)
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: election: "+format+"\n", args...)
		}
	}
	for t := 0; t < o.Trials; t++ {
		m := newMatrix(o.Members, rng, false)
		last := t == o.Trials-1
		err := func() error {
			sim := simnet.New(o.Seed+int64(t), simnet.LinkConfig{Latency: time.Millisecond})
			c, err := newCluster(o.Members, sim, HTTP, placementConfig(o.Log))
			if err != nil {
				return err
			}
			defer c.Close()
			m.apply(sim, c, 0)
			toOpt, formed, err := startToOptimal(ctx, c, m)
			if err != nil {
				return fmt.Errorf("trial %d: %w", t+1, err)
			}
			r.ToOptimal = append(r.ToOptimal, toOpt)
			r.Formed = append(r.Formed, formed)
			progress("trial %d: optimal host after %.2f s (formed after %.2f s)", t+1, toOpt.Seconds(), formed.Seconds())
			if !last {
				return nil
			}
			// The last trial's group goes on to the crashes.
			for k := 0; k < o.Kills; k++ {
				first, best, err := crashToBackup(ctx, c, m)
				if err != nil {
					return fmt.Errorf("crash %d: %w", k+1, err)
				}
				r.FirstHost = append(r.FirstHost, first)
				r.ToBackup = append(r.ToBackup, best)
				progress("crash %d: a host after %.2f s, the best backup after %.2f s", k+1, first.Seconds(), best.Seconds())
			}
			return nil
		}()
		if err != nil {
			return r, err
		}
	}
	changes, span, err := jitterChanges(ctx, o, newMatrix(o.Members, rng, true))
	r.Changes, r.Span = changes, span
	progress("%d host changes in %.0f s under jitter", changes, span.Seconds())
	return r, err
}

// startToOptimal creates the group on member 0 (never the optimal one),
// has the others join, and waits for the optimal member to host.
func startToOptimal(ctx context.Context, c *cluster, m matrix) (toOpt, formed time.Duration, err error) {
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.form(fctx, 4, nil); err != nil {
		return 0, 0, err
	}
	formed = time.Since(start)
	if err := testutil.Poll(fctx, 10*time.Millisecond, "the optimal member to host", func() bool { return c.Host() == m.opt }); err != nil {
		return 0, 0, err
	}
	return time.Since(start), formed, nil
}

// crashToBackup crashes the optimal host, times the move to the best
// backup, then restarts the crashed member and waits until it hosts again.
func crashToBackup(ctx context.Context, c *cluster, m matrix) (first, best time.Duration, err error) {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Wait until every member follows the optimal host, so that the crash
	// starts from a settled group.
	if err := testutil.Poll(wctx, 10*time.Millisecond, "the optimal host before the crash", func() bool {
		return c.Host() == m.opt && c.settled(min(c.Size(), 5), 5)
	}); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	c.Crash(m.opt)
	err = testutil.Poll(wctx, 5*time.Millisecond, "the best backup to host", func() bool {
		h := c.Host()
		if h >= 0 && first == 0 {
			first = time.Since(start)
		}
		return h == m.backup
	})
	if err != nil {
		return 0, 0, err
	}
	best = time.Since(start)
	if err := c.Start(m.opt); err != nil {
		return 0, 0, err
	}
	return first, best, nil
}

// jitterChanges runs a group with the node's default placement intervals
// under +/-30% jitter on every link, on a close matrix, and counts host
// changes once one of the two hubs hosts.
func jitterChanges(ctx context.Context, o ElectionOptions, m matrix) (int, time.Duration, error) {
	sim := simnet.New(o.Seed, simnet.LinkConfig{Latency: time.Millisecond})
	c, err := newCluster(o.Members, sim, HTTP, node.Config{Logger: nodeLogger(o.Log)})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	m.apply(sim, c, 0.3)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.form(fctx, 4, nil); err != nil {
		return 0, 0, fmt.Errorf("jitter: %w", err)
	}
	// Count from the moment a majority names one of the two hubs as host:
	// the first handover, away from the creator, is placement doing its
	// job. Which of the two nearly equal hubs wins it is up to the jitter.
	host := -1
	if err := testutil.Poll(fctx, 10*time.Millisecond, "a hub to host", func() bool {
		host = c.agreedHost()
		return host == m.opt || host == m.backup
	}); err != nil {
		return 0, 0, fmt.Errorf("jitter: %w", err)
	}
	changes := 0
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for time.Since(start) < o.Jitter {
		select {
		case <-ctx.Done():
			return changes, time.Since(start), ctx.Err()
		case <-t.C:
		}
		if h := c.agreedHost(); h >= 0 && h != host {
			changes++
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "bench: election: jitter: host %s -> %s after %.1f s (hubs %s and %s)\n",
					c.Member(host).Name, c.Member(h).Name, time.Since(start).Seconds(), c.Member(m.opt).Name, c.Member(m.backup).Name)
			}
			host = h
		}
	}
	return changes, time.Since(start), nil
}
