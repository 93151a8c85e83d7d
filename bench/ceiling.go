package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Machines of the same kind differ: on another two-core box of the same
// name, signatures took 1.7 times as long and `demes bench all` gave half
// the capacity for the same code (issue 20). So next to its own figures,
// `demes bench` measures in the same run what any group on this machine
// could reach at best, and gives DeMeS's capacity and latency as ratios to
// that: a ratio moves with the code, much less with the machine.
//
// The reference ceiling ([Ceiling]) is a group of five raft nodes in this
// process, each with a bbolt store written and fsynced as a node writes
// its own (node/store's SaveRaft, once per raft Ready that brings entries
// or a new vote), exchanging signed batches of signed entries the size of
// a chat envelope, every signature checked by its receiver. It leaves out
// what DeMeS adds: sealing and opening, the group's state machine, the
// transport (its nodes talk through Go channels, with one batch in flight
// per pair of nodes), the API. Beside it, the cost of one signature check
// ([crypto.VerifySignature], the one check of DeMeS), in which the CPU per
// message of a group is also given.

// CeilingOptions configures [Ceiling].
type CeilingOptions struct {
	// Nodes is the group size (default 5).
	Nodes int
	// Messages is how many messages are timed one at a time (default
	// 200), as in [Latency].
	Messages int
	// Senders lists the capacity runs: one per number of concurrent
	// senders (default 64 and 256), as `demes bench throughput` runs.
	Senders []int
	// Duration is how long each capacity run sends (default 10 s).
	Duration time.Duration
	// SkipLatency and SkipCapacity leave out the latency and the capacity
	// runs, for a measurement that needs only the other.
	SkipLatency, SkipCapacity bool
}

func (o CeilingOptions) withDefaults() CeilingOptions {
	if o.Nodes <= 0 {
		o.Nodes = 5
	}
	if o.Messages <= 0 {
		o.Messages = 200
	}
	if len(o.Senders) == 0 {
		o.Senders = []int{64, 256}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	return o
}

// CeilingResult is what [Ceiling] measured.
type CeilingResult struct {
	Nodes int
	// EntryBytes is the size of each entry: a signed chat envelope of
	// DeMeS carrying a message of the benchmarks' length, sealed under a
	// sender key the group knows (as all but a key's first message are).
	EntryBytes int
	// SignatureCheck holds the time of one [crypto.VerifySignature] of an
	// entry's length, one sample per round of checks.
	SignatureCheck Samples
	// Latency is each timed message's time from signing it on a node
	// (the nodes in turn) until the last node applied it.
	Latency Samples
	// Runs are the capacity runs, one per number of senders: each sender
	// waits until the node it sent through applied its message, as
	// [Node.Send] returns once committed on the sender.
	Runs []ThroughputResult
}

// Ceiling measures the reference ceiling and the cost of a signature check
// (see the comment at the top of this file): the latency of messages sent
// one at a time, then one capacity run per number of senders, each on a
// group of its own.
func Ceiling(ctx context.Context, o CeilingOptions) (CeilingResult, error) {
	o = o.withDefaults()
	r := CeilingResult{Nodes: o.Nodes}
	size, err := chatPayloadSize()
	if err != nil {
		return r, err
	}
	payload := make([]byte, size)
	rand.Read(payload)
	var counter atomic.Uint64
	envelope := &crypto.Envelope{Type: crypto.TypeChat, Payload: payload}
	if r.SignatureCheck, r.EntryBytes, err = signatureCheck(envelope); err != nil {
		return r, err
	}
	if !o.SkipLatency {
		if r.Latency, err = ceilingLatency(ctx, o, payload, &counter); err != nil {
			return r, err
		}
	}
	if o.SkipCapacity {
		return r, nil
	}
	for _, s := range o.Senders {
		run, err := ceilingLoad(ctx, o, s, payload, &counter)
		r.Runs = append(r.Runs, run)
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// ceilingLatency times o.Messages messages one at a time, after a few
// untimed ones, from each node in turn.
func ceilingLatency(ctx context.Context, o CeilingOptions, payload []byte, counter *atomic.Uint64) (Samples, error) {
	g, err := newCeilGroup(ctx, o.Nodes)
	if err != nil {
		return nil, err
	}
	defer g.close()
	const warmup = 10
	var lat Samples
	for k := 0; k < warmup+o.Messages; k++ {
		start := time.Now()
		w, err := g.send(ctx, k%o.Nodes, payload, counter.Add(1))
		if err != nil {
			return lat, err
		}
		select {
		case <-w.all:
		case <-time.After(10 * time.Second):
			if err := g.failed(); err != nil {
				return lat, err
			}
			return lat, fmt.Errorf("reference ceiling: message %d not applied on every node within 10 s", k)
		case <-ctx.Done():
			return lat, ctx.Err()
		}
		if k >= warmup {
			lat = append(lat, w.last.Sub(start))
		}
	}
	return lat, g.failed()
}

// ceilingLoad has senders goroutines send through the nodes in turn for
// o.Duration, as [Throughput] does, each waiting until its message is
// applied on the node it went through.
func ceilingLoad(ctx context.Context, o CeilingOptions, senders int, payload []byte, counter *atomic.Uint64) (ThroughputResult, error) {
	r := ThroughputResult{Nodes: o.Nodes, Senders: senders}
	g, err := newCeilGroup(ctx, o.Nodes)
	if err != nil {
		return r, err
	}
	defer g.close()
	cpu0 := processCPU()
	err = r.load(ctx, ThroughputOptions{Senders: senders, Duration: o.Duration}, func(s, _ int) (bool, error) {
		w, err := g.send(ctx, s%o.Nodes, payload, counter.Add(1))
		if err != nil {
			return false, err
		}
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-w.done:
			return true, nil
		case <-t.C:
			return false, g.failed()
		case <-ctx.Done():
			return false, ctx.Err()
		}
	})
	r.CPU = processCPU() - cpu0
	if err == nil {
		err = g.failed()
	}
	return r, err
}

// chatPayloadSize returns the size of a chat envelope's payload as a node
// builds it (node/outbox.go: seal) for a message of the benchmarks' length
// ("load 100/1000"), sealed under a sender key the group knows.
func chatPayloadSize() (int, error) {
	id, err := identity.Generate()
	if err != nil {
		return 0, err
	}
	var gid crypto.GroupID
	key := crypto.NewSenderKey(gid, id.Public().Sign, 1)
	m := &crypto.Message{Group: gid, ID: crypto.NewMessageID(), Time: time.Now().UnixNano(), Body: []byte("load 100/1000")}
	sealed, err := crypto.SealMessage(id, m, key, nil)
	if err != nil {
		return 0, err
	}
	body, err := state.Encode(&state.ChatBody{ID: m.ID[:], Sealed: sealed})
	return len(body), err
}

// signatureCheck signs e as an entry and times crypto.VerifySignature of
// its signature, in rounds of checks so that each sample is well above the
// clock's resolution; it also returns the size of the signed entry.
func signatureCheck(e *crypto.Envelope) (Samples, int, error) {
	id, err := identity.Generate()
	if err != nil {
		return nil, 0, err
	}
	e.Time = time.Now().UnixNano()
	frame, err := crypto.Sign(id, e)
	if err != nil {
		return nil, 0, err
	}
	// What the signature covers: the domain, the version and key, the
	// body (crypto/envelope.go: signedEnvelope), about the frame's size.
	pub, sig := frame[1:33], frame[33:97]
	msg := append([]byte("DeMeS envelope v1\x00"), frame[:33]...)
	msg = append(msg, frame[97:]...)
	if !crypto.VerifySignature(pub, msg, sig) {
		return nil, 0, fmt.Errorf("signature check: a fresh signature does not verify")
	}
	const rounds, perRound = 30, 100
	s := make(Samples, 0, rounds)
	for range rounds {
		start := time.Now()
		for range perRound {
			crypto.VerifySignature(pub, msg, sig)
		}
		s = append(s, time.Since(start)/perRound)
	}
	return s, len(frame), nil
}

// Capacity returns the best capacity run (the highest rate with p99 send
// latency under [CapacityLatency], as [Capacity] chooses), and false when
// none stayed under it.
func (r CeilingResult) Capacity() (ThroughputResult, bool) {
	if i := bestRun(r.Runs); i >= 0 {
		return r.Runs[i], true
	}
	return ThroughputResult{}, false
}

// checks returns d in signature checks of this run.
func (r CeilingResult) checks(d time.Duration) float64 {
	c := r.SignatureCheck.Median()
	if c <= 0 {
		return 0
	}
	return float64(d) / float64(c)
}

// Figures returns the table lines of the result: the signature check, the
// ceiling's latency, each capacity run and the capacity.
func (r CeilingResult) Figures() []Figure {
	sig := r.SignatureCheck
	figs := []Figure{{
		Name: "signature check (crypto.VerifySignature)", Unit: "us", N: len(sig),
		Median: float64(sig.Median()) / 1e3, P99: float64(sig.P99()) / 1e3, Verdict: Info,
		Note: fmt.Sprintf("a %d-byte entry; each sample the mean of a round of 100", r.EntryBytes),
	}}
	how := fmt.Sprintf("raft, bbolt fsync, signed batches of %d-byte signed entries, no sealing; in one process, channels between nodes", r.EntryBytes)
	if len(r.Latency) > 0 {
		f := durationFigure(fmt.Sprintf("reference ceiling: send -> committed on all %d nodes", r.Nodes), "ms", r.Latency, 0, 0)
		f.Note = how
		figs = append(figs, f)
	}
	for _, run := range r.Runs {
		figs = append(figs, Figure{
			Name: fmt.Sprintf("reference ceiling: throughput, %d nodes, %d senders", r.Nodes, run.Senders), Unit: "msg/s",
			N: run.Committed, Median: run.Rate(), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("send latency p50 %s ms, p99 %s ms; CPU %s ms a message (%s signature checks); %d left queued",
				num(ms(run.Latency.Median())), num(ms(run.Latency.P99())),
				num(ms(run.CPUPerMessage())), num(r.checks(run.CPUPerMessage())), run.Queued),
		})
	}
	if len(r.Runs) > 0 {
		f := Figure{Name: fmt.Sprintf("reference ceiling: capacity, %d nodes", r.Nodes), Unit: "msg/s", P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("the best run with p99 latency under %s; %s", CapacityLatency, how)}
		if best, ok := r.Capacity(); ok {
			f.Median, f.N = best.Rate(), best.Committed
			f.Note = fmt.Sprintf("%d senders: ", best.Senders) + f.Note
		}
		figs = append(figs, f)
	}
	return figs
}

// LatencyRatio returns the line that gives l's send -> committed on all
// nodes as a multiple of the ceiling's (median over median, p99 over
// p99), with both figures in its note. l should have the ceiling's number
// of nodes.
func (r CeilingResult) LatencyRatio(l LatencyResult) Figure {
	f := Figure{
		Name: fmt.Sprintf("send -> committed on all %d nodes / reference ceiling", l.Nodes), Unit: "x", N: len(l.Everywhere),
		Median: ratio(ms(l.Everywhere.Median()), ms(r.Latency.Median())), P99: ratio(ms(l.Everywhere.P99()), ms(r.Latency.P99())), Verdict: Info,
		Note: fmt.Sprintf("p50 %s ms against the ceiling's %s ms (%d nodes)", num(ms(l.Everywhere.Median())), num(ms(r.Latency.Median())), r.Nodes),
	}
	return l.Transport.noted([]Figure{f})[0]
}

// CapacityRatio returns the line that gives the capacity of the runs rs
// (as [Capacity] computes it) as a multiple of the ceiling's, with both
// figures, and the CPU a committed message took in the best run of rs in
// signature checks, as many as the CPU of that run's message would do.
func (r CeilingResult) CapacityRatio(rs []ThroughputResult) []Figure {
	if len(rs) == 0 {
		return nil
	}
	c := Capacity(rs)
	f := Figure{Name: c.Name + " / reference ceiling", Unit: "x", N: c.N, P99: nan(), Verdict: Info}
	ceil, ok := r.Capacity()
	f.Note = fmt.Sprintf("%s msg/s against the ceiling's %s msg/s", num(c.Median), num(ceil.Rate()))
	if ok {
		f.Median = ratio(c.Median, ceil.Rate())
		f.Note += fmt.Sprintf(" (%d senders)", ceil.Senders)
	}
	figs := []Figure{f}
	if i := bestRun(rs); i >= 0 {
		best := rs[i]
		figs = append(figs, Figure{
			Name: fmt.Sprintf("CPU per committed message in signature checks (%d nodes, %s, %d senders)", best.Nodes, best.how(), best.Senders),
			Unit: "checks", N: best.Committed, Median: r.checks(best.CPUPerMessage()), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("%s ms a message, a check %s us; the ceiling's best run: %s checks", num(ms(best.CPUPerMessage())),
				num(float64(r.SignatureCheck.Median())/1e3), num(r.checks(ceil.CPUPerMessage()))),
		})
	}
	return rs[0].Transport.noted(figs)
}

// ratio returns a/b, or 0 (no figure: a median is never NaN, which JSON
// cannot hold) when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
