package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// ScaleOptions configures [Scale].
type ScaleOptions struct {
	// Sizes are the group sizes to measure (default 3, 10, 50, 100).
	Sizes []int
	// Messages is how many messages are timed at each size (default 30).
	Messages int
	// Latency is the one-way delay of every simulated link (default 1 ms).
	Latency time.Duration
	// PingInterval is the members' latency ping period (default 1 hour,
	// so that no member pings during the run). Every member pings every
	// other one, so a group of 100 in one process sends 9,900 signed pings
	// per interval: at the node's default of 1 s that alone would take both
	// cores of a small machine, which says nothing about a real group,
	// where each member has its own machine. Without pings there are no
	// latency maps, so the voters stay the first five members to join
	// (placement is what [Election] measures).
	PingInterval time.Duration
	// Checkpoints keeps the members' signed transcript checkpoints on
	// (node.Config defaults). They are off by default here, so that the
	// figures measure the messages alone (see docs/BENCHMARKS.md).
	Checkpoints bool
	// JoinBatch is how many members join at once (default 8).
	JoinBatch int
	// Log receives the nodes' warnings; nil discards them.
	Log io.Writer
	// Progress, when set, receives a line per step (groups of 100 take a
	// while to form).
	Progress io.Writer
}

// ScalePoint is what [Scale] measured for one group size.
type ScalePoint struct {
	Members, Voters int
	// Form is the time to create the group and have everyone join.
	Form time.Duration
	// Delivered: from Send until every member delivered the message.
	Delivered Samples
	// Deliveries counts (message, member) deliveries while timing.
	Deliveries int
	// Busy is the process CPU time while the messages were timed, Idle the
	// CPU time of an equally long quiet window (heartbeats, pings).
	Busy, Idle time.Duration
	// BusyWall is how long the timed messages took.
	BusyWall time.Duration
	// First is the same for the untimed warm-up messages before them: the
	// first message of each member that then sends a timed one, which
	// carries its sender key in a header of full X-Wing stanzas, one per
	// member (and for the first few, connection set-up after the joins).
	First ScalePhase
	// Rotated is the same for one more message from each of those
	// members, after the timed ones: the first under its next sender key
	// (the bench sets RotateMessages so), whose header goes over key links
	// to every other member (docs/PROTOCOL.md, "Key links").
	Rotated ScalePhase
	// HeapPerNode is the live heap per member: HeapInuse after a GC with
	// the group running, minus the same once it stopped, divided by the
	// members.
	HeapPerNode uint64
	// IdleEntries is how many log entries were committed during the quiet
	// window: nothing was sent, so anything here is the group's own
	// chatter (latency maps, checkpoints, membership changes).
	IdleEntries uint64
	// Goroutines per member, while running.
	Goroutines int
	// Leaked is how many goroutines were left after the group stopped.
	Leaked int
}

// CPUPerDelivery is the CPU cost of one received message: the CPU time
// above the quiet baseline, divided by the deliveries.
func (p ScalePoint) CPUPerDelivery() time.Duration {
	if p.Deliveries == 0 {
		return 0
	}
	d := p.Busy - p.Idle
	if d < 0 {
		d = 0
	}
	return d / time.Duration(p.Deliveries)
}

// ScalePhase is what [Scale] measured of a few untimed messages: their
// latencies, the process CPU and wall time they took, and the deliveries.
type ScalePhase struct {
	Samples    Samples
	Busy, Wall time.Duration
	Deliveries int
}

// CPUPerDelivery is [ScalePoint.CPUPerDelivery] for the phase's messages,
// with p's quiet baseline scaled to the phase's length.
func (ph ScalePhase) CPUPerDelivery(p ScalePoint) time.Duration {
	if ph.Deliveries == 0 || p.BusyWall <= 0 {
		return 0
	}
	d := ph.Busy - time.Duration(float64(p.Idle)*ph.Wall.Seconds()/p.BusyWall.Seconds())
	if d < 0 {
		d = 0
	}
	return d / time.Duration(ph.Deliveries)
}

// ScaleResult is what [Scale] measured.
type ScaleResult struct {
	Points []ScalePoint
}

// Figures returns the table lines of the result.
func (r ScaleResult) Figures() []Figure {
	var out []Figure
	var base time.Duration
	for _, p := range r.Points {
		if base == 0 {
			base = p.CPUPerDelivery()
		}
		f := durationFigure(fmt.Sprintf("scale %d: send -> delivered to all", p.Members), "ms", p.Delivered, 0, 0)
		f.Note = fmt.Sprintf("%d voters; formed in %.1f s", p.Voters, p.Form.Seconds())
		out = append(out, f)
		c := Figure{
			Name: fmt.Sprintf("scale %d: CPU per received message", p.Members), Unit: "us", N: p.Deliveries,
			Median: float64(p.CPUPerDelivery()) / float64(time.Microsecond), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("busy %.2f s - quiet %.2f s CPU; %d entries committed while quiet", p.Busy.Seconds(), p.Idle.Seconds(), p.IdleEntries),
		}
		if base > 0 && p.Members >= 100 {
			ratio := float64(p.CPUPerDelivery()) / float64(base)
			c.Target = fmt.Sprintf("<= 2x the smallest group's (%.2fx)", ratio)
			c.Verdict = verdict(ratio <= 2)
		}
		out = append(out, c)
		out = append(out, Figure{
			Name: fmt.Sprintf("scale %d: CPU per received first message", p.Members), Unit: "us", N: p.First.Deliveries,
			Median: float64(p.First.CPUPerDelivery(p)) / float64(time.Microsecond), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("%d members' first messages, untimed before the others: each carries its sender key to every member in a full X-Wing stanza; delivered to all in %s median", len(p.First.Samples), p.First.Samples.Median().Round(100*time.Microsecond)),
		})
		out = append(out, Figure{
			Name: fmt.Sprintf("scale %d: CPU per received first message after a rotation", p.Members), Unit: "us", N: p.Rotated.Deliveries,
			Median: float64(p.Rotated.CPUPerDelivery(p)) / float64(time.Microsecond), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("the same %d members' first messages under their next sender key, after the timed ones: the key goes over key links; delivered to all in %s median", len(p.Rotated.Samples), p.Rotated.Samples.Median().Round(100*time.Microsecond)),
		})
		out = append(out, Figure{
			Name: fmt.Sprintf("scale %d: heap per member", p.Members), Unit: "KiB", N: p.Members,
			Median: float64(p.HeapPerNode) / 1024, P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("%d goroutines per member; %d left after stop", p.Goroutines, p.Leaked),
		})
	}
	return out
}

// Scale forms groups of each size on the simulated network (voters capped
// at 5, the rest learners), times messages from send until every member has
// delivered them, and measures the CPU per received message and the memory
// per member. All members run in this process.
func Scale(ctx context.Context, o ScaleOptions) (ScaleResult, error) {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{3, 10, 50, 100}
	}
	if o.Messages <= 0 {
		o.Messages = 30
	}
	if o.Latency <= 0 {
		o.Latency = time.Millisecond
	}
	if o.PingInterval <= 0 {
		o.PingInterval = time.Hour
	}
	if o.JoinBatch <= 0 {
		o.JoinBatch = 8
	}
	var r ScaleResult
	for _, size := range o.Sizes {
		p, err := scaleOne(ctx, size, o)
		if err != nil {
			return r, fmt.Errorf("group of %d: %w", size, err)
		}
		r.Points = append(r.Points, p)
	}
	return r, nil
}

func scaleOne(ctx context.Context, size int, o ScaleOptions) (ScalePoint, error) {
	p := ScalePoint{Members: size, Voters: min(size, 5)}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: scale %d: "+format+"\n", append([]any{size}, args...)...)
		}
	}
	runtime.GC()
	goroutines0 := runtime.NumGoroutine()

	sim := simnet.New(int64(size), simnet.LinkConfig{Latency: o.Latency})
	// Untimed messages first, one from each member that sends a timed one
	// (and at least 3): the first ones after a join pay for connection
	// set-up and catch-up, and a member's first message carries its sender
	// key sealed to every member (O(members) for that one message; see
	// crypto.SealMessage). Timed messages are then the same kind of message
	// at every size: with fewer members than timed messages, every sender's
	// first message used to fall in the warm-up, and with more, every
	// timed message was a first one. Each sender rotates its key right
	// after its warm-up and timed messages, so that one more message from
	// each is the first under a new key (the Rotated phase).
	warmup := max(min(size, o.Messages), 3)
	cfg := node.Config{Logger: nodeLogger(o.Log), PingInterval: o.PingInterval, RetryInterval: 200 * time.Millisecond,
		RotateMessages: 1 + (o.Messages+warmup-1)/warmup}
	if !o.Checkpoints {
		cfg.CheckpointEntries, cfg.CheckpointInterval = 1<<62, 1<<62
	}
	c, err := newCluster(size, sim, HTTP, cfg)
	if err != nil {
		return p, err
	}
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	start := time.Now()
	joinStart := time.Now()
	if err := formSettled(ctx, c, o.JoinBatch, func(j int) {
		if j%10 == 0 {
			progress("%d joined after %.1f s", j, time.Since(joinStart).Seconds())
		}
	}); err != nil {
		return p, err
	}
	p.Form = time.Since(start)
	progress("formed in %.1f s", p.Form.Seconds())

	// The heap with the group running; the heap after it stopped is
	// subtracted at the end, so that garbage of earlier measurements in
	// this process does not count.
	heapRunning := heapInuse()
	p.Goroutines = (runtime.NumGoroutine() - goroutines0) / size

	d := c.watch(size)
	defer d.stop()
	send := func(from, k int) (time.Duration, error) {
		sender := c.Node(from)
		t := time.Now()
		m, err := sender.Send(ctx, c.GroupID, fmt.Sprintf("scale %d", k), 30*time.Second)
		if err != nil {
			return 0, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		last, err := d.wait(wctx, m.ID)
		if err != nil {
			return 0, fmt.Errorf("message %d: %w", k, err)
		}
		return last.Sub(t), nil
	}
	phase := func(ph *ScalePhase, from int) error {
		n0, cpu, t := d.count(), processCPU(), time.Now()
		for k := 0; k < warmup; k++ {
			lat, err := send(k%size, from+k)
			if err != nil {
				return err
			}
			ph.Samples = append(ph.Samples, lat)
		}
		ph.Wall, ph.Busy, ph.Deliveries = time.Since(t), processCPU()-cpu, d.count()-n0
		return nil
	}
	if err := phase(&p.First, 0); err != nil {
		return p, err
	}
	before := d.count()
	cpu0 := processCPU()
	t0 := time.Now()
	for k := warmup; k < warmup+o.Messages; k++ {
		lat, err := send(k%warmup%size, k)
		if err != nil {
			return p, err
		}
		p.Delivered = append(p.Delivered, lat)
	}
	busyWall := time.Since(t0)
	p.BusyWall = busyWall
	p.Busy = processCPU() - cpu0
	p.Deliveries = d.count() - before
	progress("timed %d messages", o.Messages)
	// The senders that had one timed message fewer than the others (when
	// warmup does not divide o.Messages) send one more, untimed, so that
	// each has sealed RotateMessages messages and the Rotated phase is
	// each one's first under a new key.
	k := warmup + o.Messages
	for i := o.Messages % warmup; i > 0 && i < warmup; i++ {
		if _, err := send(i%size, k); err != nil {
			return p, err
		}
		k++
	}
	if err := phase(&p.Rotated, k); err != nil {
		return p, err
	}

	// The quiet baseline: the same wall time with no messages.
	g0, _ := c.Status(0)
	cpu1 := processCPU()
	select {
	case <-time.After(busyWall):
	case <-ctx.Done():
		return p, ctx.Err()
	}
	p.Idle = processCPU() - cpu1
	if g1, ok := c.Status(0); ok && g1.Committed > g0.Committed {
		p.IdleEntries = g1.Committed - g0.Committed
	}

	d.stop()
	c.Close()
	closed = true
	// Goroutines that outlive the group are leaks; give the stragglers
	// (HTTP keep-alives, timers) a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	p.Leaked = max(runtime.NumGoroutine()-goroutines0, 0)
	if h := heapInuse(); heapRunning > h {
		p.HeapPerNode = (heapRunning - h) / uint64(size)
	}
	return p, nil
}

// heapInuse returns HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
