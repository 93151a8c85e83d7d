package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/demes/demes/bench"
)

// benchFigures is one measurement of `demes bench`: it returns the lines
// of the table.
type benchFigures func(ctx context.Context, o benchOptions) ([]bench.Figure, error)

type benchOptions struct {
	kills, messages, schedules, parallel int
	sizes, senders                       []int
	duration, jitter                     time.Duration
	progress                             io.Writer
	checkpoints, churn, storedBoard      bool
	restore                              bool // chaos: backups and restores
	nodes, history                       int
	seed                                 int64
	transport                            bench.Transport
	// ceiling is the reference ceiling of this run, which the latency and
	// capacity figures are also given as ratios to.
	ceiling *ceilingRun
}

// benchmarks lists the measurements in the order `all` runs them. `all`
// leaves out chaos and history, which take long, and ceiling: latency and
// throughput measure its parts next to their own runs, so that both sides
// of a ratio see the same minute of this shared machine.
var benchmarks = []struct {
	name string
	run  benchFigures
}{
	{"failover", benchFailover},
	{"restart", benchRestart},
	{"history", benchHistory},
	{"ceiling", benchCeiling},
	{"latency", benchLatency},
	{"throughput", benchThroughput},
	{"scale", benchScale},
	{"election", benchElection},
	{"chaos", benchChaos},
}

// runBench measures failover, latency, throughput, scaling and placement
// on this machine and prints one table line per figure.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	names := make([]string, 0, len(benchmarks))
	for _, b := range benchmarks {
		names = append(names, b.name)
	}
	f := newFlags("bench ["+strings.Join(names, "|")+"|all] [--kills N] [--json]", stdout)
	jsonOut := f.Bool("json", false, "print the machine and the figures as one JSON document")
	var o benchOptions
	f.IntVar(&o.kills, "kills", 20, "failover: how many times the host is killed, and how many times its links are cut")
	f.IntVar(&o.messages, "messages", 200, "latency, ceiling: how many messages are timed per group size")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "throughput, ceiling: how long the senders send")
	sizes := f.String("sizes", "3,10,50,100", "scale: the group `SIZES`, comma-separated")
	senders := f.String("senders", "64,256", "throughput, ceiling: the numbers of `SENDERS` sending at once, comma-separated, one run each")
	f.DurationVar(&o.jitter, "jitter", time.Minute, "election: how long host changes are counted under jitter")
	f.IntVar(&o.schedules, "schedules", 100, "chaos: how many random fault schedules to run")
	f.IntVar(&o.parallel, "parallel", 1, "chaos: how many schedules run at once")
	f.Int64Var(&o.seed, "seed", 1, "chaos: the first seed; schedules run seeds SEED to SEED+N-1")
	f.IntVar(&o.nodes, "nodes", 3, "chaos: the group's size")
	f.IntVar(&o.history, "history", 100_000, "history: how many messages the group gets")
	f.BoolVar(&o.churn, "churn", false, "chaos: membership changes during the faults (members join, leave, one is away for most of the schedule)")
	f.BoolVar(&o.restore, "restore", false, "chaos: backups and restores during the faults (a crashed member's store put back to an earlier backup, as demes restore does)")
	f.BoolVar(&o.storedBoard, "stored-board", false, "chaos: a snapshot every 8 entries and 4 messages in memory, so that restarts take the reactions from the stored board")
	f.BoolVar(&o.checkpoints, "checkpoints", false, "scale: keep the members' transcript checkpoints on (off by default so that the figures measure messages; see docs/BENCHMARKS.md)")
	transport := f.String("transport", string(bench.HTTP), "latency, failover, throughput: how the nodes talk: `http`, p2p (libp2p on loopback) or p2p-relay (libp2p through a circuit relay; latency only)")
	quiet := f.Bool("quiet", false, "print no progress on stderr")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return f.usagef("unexpected argument %q", pos[1])
	}
	which := "all"
	if len(pos) == 1 {
		which = pos[0]
	}
	if o.kills < 1 || o.messages < 1 || o.schedules < 1 || o.parallel < 1 || o.duration <= 0 || o.jitter <= 0 {
		return f.usagef("--kills, --messages, --schedules, --parallel, --duration and --jitter must be positive")
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 200 {
			return f.usagef("--sizes %q: want group sizes from 2 to 200, like 3,10,50,100", *sizes)
		}
		o.sizes = append(o.sizes, n)
	}
	for _, s := range strings.Split(*senders, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return f.usagef("--senders %q: want numbers of senders from 1 to 4096, like 64,256", *senders)
		}
		o.senders = append(o.senders, n)
	}
	o.transport = bench.Transport(*transport)
	if !slices.Contains(bench.Transports, o.transport) {
		return f.usagef("--transport %q: want http, p2p or p2p-relay", *transport)
	}
	switch {
	case o.transport == bench.P2PRelay && which != "latency":
		return f.usagef("--transport p2p-relay: only latency runs through a relay")
	case o.transport != bench.HTTP && !slices.Contains([]string{"latency", "failover", "throughput", "all"}, which):
		return f.usagef("--transport %s: only latency, failover and throughput run over another transport than HTTP", o.transport)
	}
	o.ceiling = &ceilingRun{}
	o.progress = stderr
	if *quiet {
		o.progress = nil
	}
	var run []int
	for i, b := range benchmarks {
		if which == b.name || (which == "all" && b.name != "chaos" && b.name != "history" && b.name != "ceiling") {
			run = append(run, i)
		}
	}
	if len(run) == 0 {
		return f.usagef("unknown measurement %q: want one of %s or all", which, strings.Join(names, ", "))
	}
	machine := bench.ThisMachine()
	if o.progress != nil {
		fmt.Fprintf(o.progress, "demes: bench on %s, %d cores, %s, load %s\n", machine.CPU, machine.Cores, machine.Go, machine.Load)
	}
	var (
		figs   []bench.Figure
		runErr error
	)
	for _, i := range run {
		b := benchmarks[i]
		if o.progress != nil {
			fmt.Fprintf(o.progress, "demes: bench %s\n", b.name)
		}
		got, err := b.run(ctx, o)
		figs = append(figs, got...)
		if err != nil {
			// Print what was measured before the failure, then fail.
			runErr = fmt.Errorf("bench %s: %w", b.name, err)
			break
		}
	}
	if which == "all" && runErr == nil && o.progress != nil {
		fmt.Fprintln(o.progress, "demes: chaos is not part of all; run 'demes bench chaos --schedules N'")
	}
	var err2 error
	if *jsonOut {
		err2 = writeJSON(stdout, struct {
			Machine bench.Machine  `json:"machine"`
			Figures []bench.Figure `json:"figures"`
		}{machine, figs})
	} else if len(figs) > 0 {
		err2 = bench.PrintTable(stdout, figs)
	}
	if runErr != nil {
		return runErr
	}
	return err2
}

// demesBinary is this executable, which the process-based measurements start
// as their nodes.
func demesBinary() (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", withHint(fmt.Errorf("cannot find the demes binary to start: %w", err), "run demes by its path")
	}
	return bin, nil
}

func benchFailover(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	bin, err := demesBinary()
	if err != nil {
		return nil, err
	}
	r, err := bench.Failover(ctx, bench.FailoverOptions{Binary: bin, Kills: o.kills, Progress: o.progress, Transport: o.transport})
	return r.Figures(), err
}

func benchRestart(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	bin, err := demesBinary()
	if err != nil {
		return nil, err
	}
	r, err := bench.Restart(ctx, bench.RestartOptions{Binary: bin, Rounds: min(o.kills, 10), Progress: o.progress})
	return r.Figures(), err
}

func benchHistory(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	bin, err := demesBinary()
	if err != nil {
		return nil, err
	}
	r, err := bench.History(ctx, bench.HistoryOptions{Binary: bin, Messages: o.history, Progress: o.progress})
	return r.Figures(), err
}

// benchLatency times send -> committed on 3 and 5 nodes, and gives the
// 5-node figure as a ratio to the reference ceiling's (measured first if
// this run has not yet).
func benchLatency(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	var figs []bench.Figure
	for _, n := range []int{3, 5} {
		r, err := bench.Latency(ctx, bench.LatencyOptions{Nodes: n, Messages: o.messages, Transport: o.transport})
		figs = append(figs, r.Figures()...)
		if err != nil {
			return figs, err
		}
		if n != 5 {
			continue
		}
		c, cfigs, err := o.ceiling.get(ctx, o, true, false)
		figs = append(figs, cfigs...)
		if err != nil {
			return figs, err
		}
		figs = append(figs, c.LatencyRatio(r))
	}
	return figs, nil
}

// benchCeiling measures the reference ceiling and the cost of a signature
// check (bench.Ceiling): latency, and capacity with the senders and
// duration of throughput.
func benchCeiling(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	o.progress = nil // runBench has said "bench ceiling"
	_, figs, err := o.ceiling.get(ctx, o, true, true)
	return figs, err
}

// ceilingRun is the reference ceiling of one `demes bench`: measured once,
// in the parts the figures given as ratios to it need.
type ceilingRun struct {
	r                 bench.CeilingResult
	latency, capacity bool // the parts measured
}

// get returns the ceiling with its latency and capacity parts as asked,
// measuring those not measured yet, and the table lines of what it
// measured now.
func (c *ceilingRun) get(ctx context.Context, o benchOptions, latency, capacity bool) (bench.CeilingResult, []bench.Figure, error) {
	skipL, skipC := !latency || c.latency, !capacity || c.capacity
	if skipL && skipC {
		return c.r, nil, nil
	}
	if o.progress != nil {
		fmt.Fprintln(o.progress, "demes: bench ceiling (the reference the ratios are to)")
	}
	r, err := bench.Ceiling(ctx, bench.CeilingOptions{
		Nodes: 5, Messages: o.messages, Senders: o.senders, Duration: o.duration, SkipLatency: skipL, SkipCapacity: skipC,
	})
	// Each part times a signature check again: the ratios that follow use
	// the one of their own minute.
	c.r.Nodes, c.r.EntryBytes, c.r.SignatureCheck = r.Nodes, r.EntryBytes, r.SignatureCheck
	if !skipL {
		c.r.Latency, c.latency = r.Latency, err == nil
	}
	if !skipC {
		c.r.Runs, c.capacity = r.Runs, err == nil
	}
	return c.r, r.Figures(), err
}

// benchThroughput measures a five-node group as users run it (five demes
// serve processes, sends through the local API), whose capacity is the
// figure with the target, and with the nodes in this one process, which
// isolates the nodes' own CPU per message from the API's; each once per
// number of senders. Each capacity is also given as a ratio to the
// reference ceiling's, and its CPU per message in signature checks.
func benchThroughput(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	bin, err := demesBinary()
	if err != nil {
		return nil, err
	}
	var figs []bench.Figure
	for _, processes := range []bool{true, false} {
		var rs []bench.ThroughputResult
		for _, n := range o.senders {
			to := bench.ThroughputOptions{Nodes: 5, Senders: n, Duration: o.duration, Binary: bin, Transport: o.transport}
			var r bench.ThroughputResult
			if processes {
				r, err = bench.ThroughputProcesses(ctx, to)
			} else {
				r, err = bench.Throughput(ctx, to)
			}
			figs = append(figs, r.Figures()...)
			if err != nil {
				return figs, err
			}
			rs = append(rs, r)
		}
		figs = append(figs, bench.Capacity(rs))
		c, cfigs, err := o.ceiling.get(ctx, o, false, true)
		figs = append(figs, cfigs...)
		if err != nil {
			return figs, err
		}
		figs = append(figs, c.CapacityRatio(rs)...)
	}
	return figs, nil
}

func benchScale(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	r, err := bench.Scale(ctx, bench.ScaleOptions{Sizes: o.sizes, Checkpoints: o.checkpoints, Progress: o.progress})
	return r.Figures(), err
}

func benchElection(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	r, err := bench.Election(ctx, bench.ElectionOptions{Jitter: o.jitter, Progress: o.progress})
	return r.Figures(), err
}

// benchChaos runs node/chaos's random fault schedules and checks the
// delivery guarantees after each.
func benchChaos(ctx context.Context, o benchOptions) ([]bench.Figure, error) {
	r, err := bench.Chaos(ctx, bench.ChaosOptions{Schedules: o.schedules, FirstSeed: o.seed, Parallel: o.parallel, Nodes: o.nodes, Churn: o.churn, StoredBoard: o.storedBoard, Restore: o.restore, Progress: o.progress})
	for _, v := range append(r.Violations, r.Errors...) {
		if o.progress != nil {
			fmt.Fprintf(o.progress, "demes: %v\n", v)
		}
	}
	return r.Figures(), err
}
