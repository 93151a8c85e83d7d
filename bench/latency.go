package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
)

// LatencyOptions configures [Latency].
type LatencyOptions struct {
	// Nodes is the group size (default 3).
	Nodes int
	// Messages is how many messages are timed (default 200), after a few
	// untimed ones that warm the connections up.
	Messages int
	// Transport is how the nodes talk (default HTTP).
	Transport Transport
	// Log receives the nodes' warnings; nil discards them.
	Log io.Writer
}

// LatencyResult is what [Latency] measured.
type LatencyResult struct {
	Nodes int
	// Everywhere: from the call to Send until the last node delivered the
	// message as committed (its event stream says so).
	Everywhere Samples
	// Ack: from the call to Send until it returned the message committed
	// on the sender.
	Ack Samples
	// Transport is how the nodes talked, Paths (on libp2p) how their
	// hosts reached each other at the end (see [nodetest.Cluster.Paths]).
	Transport Transport
	Paths     map[string]int
}

// Figures returns the table lines of the result.
func (r LatencyResult) Figures() []Figure {
	f := durationFigure(fmt.Sprintf("send -> committed on all %d nodes", r.Nodes), "ms", r.Everywhere, 4*time.Millisecond, 0)
	f.Target = "p50 < 4 ms"
	f.Note = "bbolt fsync, sealed to every member; senders rotate"
	if r.Transport.p2p() {
		f.Note += "; " + pathsNote(r.Paths)
	}
	a := durationFigure(fmt.Sprintf("send -> acknowledged (%d nodes)", r.Nodes), "ms", r.Ack, 0, 0)
	a.Note = "Send returns once committed on the sender"
	return r.Transport.noted([]Figure{f, a})
}

// Latency starts a group of in-process nodes that talk over o.Transport on
// loopback and fsync their bbolt stores, and times messages one at a time
// from send until every node has delivered them. Senders rotate over the
// members, so that most messages go through a follower, as in a real group.
func Latency(ctx context.Context, o LatencyOptions) (LatencyResult, error) {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Messages <= 0 {
		o.Messages = 200
	}
	r := LatencyResult{Nodes: o.Nodes, Transport: o.Transport}
	c, err := newCluster(o.Nodes, nil, o.Transport, node.Config{Logger: nodeLogger(o.Log)})
	if err != nil {
		return r, err
	}
	defer c.Close()
	if err := formSettled(ctx, c, 4, nil); err != nil {
		return r, err
	}
	d := c.watch(o.Nodes)
	defer d.stop()
	const warmup = 10
	for k := 0; k < warmup+o.Messages; k++ {
		sender := c.Node(k % o.Nodes)
		start := time.Now()
		m, err := sender.Send(ctx, c.GroupID, fmt.Sprintf("latency %d", k), 10*time.Second)
		if err != nil {
			return r, err
		}
		acked := time.Now()
		if m.State != node.StateCommitted {
			return r, fmt.Errorf("message %d not committed within 10 s", k)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		last, err := d.wait(wctx, m.ID)
		cancel()
		if err != nil {
			return r, fmt.Errorf("message %d: %w", k, err)
		}
		if k >= warmup {
			r.Everywhere = append(r.Everywhere, last.Sub(start))
			r.Ack = append(r.Ack, acked.Sub(start))
		}
	}
	r.Paths = c.Paths()
	return r, nil
}

// unlimited are group settings under which no member's quota ever binds:
// the benchmarks measure how much the group carries, and one member sends
// far more than a person would (the default quota is 120 messages a
// minute; see state.DefaultMsgsPerMinute).
var unlimited = node.GroupSettings{MsgsPerMinute: math.MaxUint32, BytesPerDay: math.MaxUint64}

// formSettled forms the group, lifts the quotas, and waits until every node agrees on the
// host, the voters and the commit index.
func formSettled(ctx context.Context, c *cluster, batch int, progress func(joined int)) error {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := c.form(fctx, batch, progress); err != nil {
		return err
	}
	if err := c.Node(0).SetSettings(fctx, c.GroupID, unlimited); err != nil {
		return fmt.Errorf("lift the quotas: %w", err)
	}
	voters := min(c.Size(), 5)
	if err := testutil.Poll(fctx, 20*time.Millisecond, "the group to settle", func() bool { return c.settled(voters, 10) }); err != nil {
		return err
	}
	// Until every member's prekey is committed, key headers are sealed to
	// identity keys (docs/PROTOCOL.md, "Forward secrecy"): the figures are
	// of a group past that, as a group is a few seconds after its joins.
	return testutil.Poll(fctx, 20*time.Millisecond, "every member's prekey in the log", func() bool {
		for i := 0; i < c.Size(); i++ {
			if g, ok := c.Status(i); !ok || !g.ForwardSecrecy {
				return false
			}
		}
		return true
	})
}

// ThroughputOptions configures [Throughput].
type ThroughputOptions struct {
	// Nodes is the group size (default 5).
	Nodes int
	// Senders is how many goroutines send at once, spread over the
	// members (default 64).
	Senders int
	// Duration is how long they send (default 10 s).
	Duration time.Duration
	// Log receives the nodes' warnings; nil discards them.
	Log io.Writer
	// Binary is the demes binary [ThroughputProcesses] runs.
	Binary string
	// Transport is how the nodes talk (default HTTP).
	Transport Transport
}

func (o ThroughputOptions) withDefaults() ThroughputOptions {
	if o.Nodes <= 0 {
		o.Nodes = 5
	}
	if o.Senders <= 0 {
		o.Senders = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	return o
}

// ThroughputResult is what [Throughput] or [ThroughputProcesses] measured.
type ThroughputResult struct {
	Nodes, Senders int
	// Processes is set when each node was its own `demes serve` process.
	Processes bool
	// Transport is how the nodes talked, Paths (on libp2p) how their
	// hosts reached each other at the end.
	Transport Transport
	Paths     map[string]int
	// Committed is how many sends returned committed.
	Committed int
	// Queued is how many sends returned before their message committed.
	Queued  int
	Elapsed time.Duration
	// CPU is the CPU time the process used meanwhile (all nodes together).
	CPU time.Duration
	// Latency is each committed send's time from call to return.
	Latency Samples
}

// Rate is committed messages per second.
func (r ThroughputResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Committed) / r.Elapsed.Seconds()
}

// CPUPerMessage is the CPU time of all nodes together per committed message.
func (r ThroughputResult) CPUPerMessage() time.Duration {
	if r.Committed == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Committed)
}

// Figures returns the table lines of the result.
func (r ThroughputResult) Figures() []Figure {
	where := "Send with wait"
	if r.Processes {
		where = "local API with a timeout"
	}
	how := fmt.Sprintf("%s, %d senders", r.how(), r.Senders)
	rate := Figure{
		Name: fmt.Sprintf("throughput, %d nodes, %s", r.Nodes, how), Unit: "msg/s", N: r.Committed,
		Median: r.Rate(), P99: nan(), Verdict: Info,
		Note: fmt.Sprintf("%s, sealing included; %d left queued", where, r.Queued),
	}
	if r.Transport.p2p() {
		rate.Note += "; " + pathsNote(r.Paths)
	}
	cpu := Figure{
		Name: fmt.Sprintf("CPU per committed message (all nodes, %s)", how), Unit: "ms", N: r.Committed,
		Median: ms(r.CPUPerMessage()), P99: nan(), Verdict: Info,
		Note: fmt.Sprintf("%.0f%% of the machine's cores busy", 100*r.CPU.Seconds()/r.Elapsed.Seconds()/float64(numCPU())),
	}
	lat := durationFigure(fmt.Sprintf("send latency under that load (%s)", how), "ms", r.Latency, 0, 0)
	return r.Transport.noted([]Figure{rate, cpu, lat})
}

// how says how the nodes ran, for the figures' names.
func (r ThroughputResult) how() string {
	if r.Processes {
		return "demes serve processes"
	}
	return "in one process"
}

// CapacityLatency bounds the latency of the runs that count for a group's
// capacity: a rate bought with sends waiting longer than this is not one a
// group would be used at.
const CapacityLatency = time.Second

// Capacity returns the figure with the throughput target: the highest rate
// of the runs rs (the same group under different numbers of senders) whose
// p99 send latency stayed under [CapacityLatency]. A group's throughput is
// what it commits when offered enough load: 64 senders do not keep five
// nodes on two cores busy with batches as large as they would commit, and
// more senders give more (see docs/BENCHMARKS.md, "Throughput").
//
// The target is for a group as users run it: one process per node. In one
// process, five nodes share one Go scheduler sized for two cores, where each
// would have its own; such runs are given without a target.
func Capacity(rs []ThroughputResult) Figure {
	f := Figure{Unit: "msg/s", P99: nan(), Verdict: Info}
	if len(rs) == 0 {
		return f
	}
	f.Name = fmt.Sprintf("throughput capacity, %d nodes, %s", rs[0].Nodes, rs[0].how())
	var senders []string
	for _, r := range rs {
		senders = append(senders, strconv.Itoa(r.Senders))
	}
	best := bestRun(rs)
	f.Note = fmt.Sprintf("the best run of %s senders with p99 latency under %s", strings.Join(senders, ", "), CapacityLatency)
	if best >= 0 {
		f.Median, f.N = rs[best].Rate(), rs[best].Committed
		f.Note += fmt.Sprintf(": %d senders", rs[best].Senders)
	}
	if rs[0].Processes {
		f.Target, f.Verdict = ">= 2000 msg/s", verdict(f.Median >= 2000)
	}
	return rs[0].Transport.noted([]Figure{f})[0]
}

// bestRun returns the index of the run of rs with the highest rate among
// those whose p99 send latency stayed under [CapacityLatency], or -1.
func bestRun(rs []ThroughputResult) int {
	best := -1
	for i, r := range rs {
		if len(r.Latency) > 0 && r.Latency.P99() <= CapacityLatency && (best < 0 || r.Rate() > rs[best].Rate()) {
			best = i
		}
	}
	return best
}

// Throughput starts a group of in-process nodes over o.Transport on
// loopback with fsync, and has many goroutines send at once (each Send waits for its
// commit, sealing included) for a while. Every node runs in this one
// process, so the machine's cores are shared by all of them: the CPU per
// message says what one node per machine would manage.
func Throughput(ctx context.Context, o ThroughputOptions) (ThroughputResult, error) {
	o = o.withDefaults()
	r := ThroughputResult{Nodes: o.Nodes, Senders: o.Senders, Transport: o.Transport}
	c, err := newCluster(o.Nodes, nil, o.Transport, node.Config{Logger: nodeLogger(o.Log)})
	if err != nil {
		return r, err
	}
	defer c.Close()
	if err := formSettled(ctx, c, 4, nil); err != nil {
		return r, err
	}
	cpu0 := processCPU()
	err = r.load(ctx, o, func(s, k int) (bool, error) {
		m, err := c.Node(s%o.Nodes).Send(ctx, c.GroupID, fmt.Sprintf("load %d/%d", s, k), 30*time.Second)
		return err == nil && m.State == node.StateCommitted, err
	})
	r.CPU = processCPU() - cpu0
	r.Paths = c.Paths()
	return r, err
}

// load has o.Senders goroutines call send(sender, k) for k = 0, 1, ... until
// o.Duration has passed, and records in r how many sends committed, how
// many were left queued, their latencies and the elapsed time. It returns
// the first error of a send, or the context's.
func (r *ThroughputResult) load(ctx context.Context, o ThroughputOptions, send func(s, k int) (committed bool, err error)) error {
	var (
		committed, queued atomic.Int64
		mu                sync.Mutex
		wg                sync.WaitGroup
		firstErr          error
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	for s := 0; s < o.Senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat Samples
			defer func() {
				mu.Lock()
				r.Latency = append(r.Latency, lat...)
				mu.Unlock()
			}()
			for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				t := time.Now()
				ok, err := send(s, k)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if ok {
					committed.Add(1)
					lat = append(lat, time.Since(t))
				} else {
					queued.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.Committed, r.Queued = int(committed.Load()), int(queued.Load())
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
