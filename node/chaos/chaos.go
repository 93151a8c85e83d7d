// Package chaos runs seeded fault schedules against real nodes on the
// simulated network and checks DeMeS's delivery guarantees afterwards.
//
// # A run
//
// [Run] starts [Options.Nodes] real [node.Node]s, each with its own store
// directory, on a [simnet.Network]; forms one group; and plays the schedule
// of [Options.Seed] (see [Schedule]): host kills, follower crashes and
// restarts from the store, restarts of every node at once, partitions
// (one-way ones too), link delay, loss and duplication, while members send
// messages. Then it heals the network, restarts every crashed node, waits
// for the group to settle, restarts every node once more from its store,
// and checks:
//
//   - one order: every node's committed messages are a prefix of one common
//     sequence (checked after every step, too, not only at the end);
//   - nothing acknowledged is lost: every send that returned committed is
//     delivered exactly once;
//   - nothing is lost silently: every send that returned queued is
//     delivered exactly once after healing, and no message is delivered twice;
//   - only ciphertext on disk: no store holds the bytes of any sent text.
//
// A broken guarantee is returned as a [*Violation], whose message names the
// seed; the same seed replays the same schedule. Timing is real, so who
// happens to lead when a step runs may differ between replays; the schedule
// itself never does.
//
// # Use
//
// Tests run a fixed set of seeds; `demes bench chaos --schedules N` runs
// many:
//
//	for seed := int64(1); seed <= n; seed++ {
//		rep, err := chaos.Run(ctx, chaos.Options{Seed: seed})
//		if err != nil {
//			return err // names the seed
//		}
//		fmt.Println(rep)
//	}
package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/node/store"
)

// Fast is the timing profile of chaos runs: elections in 200 to 400 ms, so a
// schedule of a few seconds sees several.
var Fast = node.Timing{Tick: 20 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 2}

// Options configures a run. Only Seed matters for the schedule, with Nodes,
// Steps and MaxDown; the rest changes how the run is carried out.
type Options struct {
	Seed int64
	// Nodes is the group's size (default 3).
	Nodes int
	// Steps is the schedule's length (default 30).
	Steps int
	// MaxDown is the most nodes crashed at once (default a minority:
	// (Nodes-1)/2, so that acknowledged sends stay possible).
	MaxDown int
	// Timing is the nodes' raft timing (default [Fast]).
	Timing node.Timing
	// Dir holds the nodes' stores, one directory each. Default: a
	// temporary directory, removed after the run.
	Dir string
	// Logger receives the nodes' logs (default: none).
	Logger *zerolog.Logger
	// Logf, when set, receives a line per step as it runs.
	Logf func(format string, args ...any)
	// Settle bounds each wait for the group to converge (default 60 s).
	Settle time.Duration
	// SnapshotEntries and SnapshotKeep are the nodes' snapshot settings
	// (see node.Config; default: the node's). Small ones make a short
	// schedule take snapshots, restart from them, and catch members up from
	// the log in the store rather than in memory.
	SnapshotEntries, SnapshotKeep uint64
}

func (o Options) withDefaults() Options {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Nodes < 2 {
		o.Nodes = 2
	}
	if o.Steps <= 0 {
		o.Steps = 30
	}
	if o.MaxDown <= 0 {
		o.MaxDown = (o.Nodes - 1) / 2
		if o.MaxDown == 0 {
			o.MaxDown = 1
		}
	}
	if o.Timing.Tick == 0 {
		o.Timing = Fast
	}
	if o.Settle <= 0 {
		o.Settle = 60 * time.Second
	}
	return o
}

// replay is how to run the same schedule again.
func (o Options) replay() string {
	return fmt.Sprintf("chaos.Run(ctx, chaos.Options{Seed: %d, Nodes: %d, Steps: %d, MaxDown: %d}), or go test ./node/chaos -run TestReplay -v -chaos.seed=%d -chaos.nodes=%d -chaos.steps=%d -chaos.maxdown=%d",
		o.Seed, o.Nodes, o.Steps, o.MaxDown, o.Seed, o.Nodes, o.Steps, o.MaxDown)
}

// Report is what a run did.
type Report struct {
	Seed     int64
	Nodes    int
	Schedule []Step
	// Sends by outcome: committed when Send returned, queued in the
	// outbox, or failed (an error: for example the node crashed during the
	// call; such a message may or may not have reached the outbox, and is
	// checked to be delivered at most once).
	Sent, Acked, Queued, Failed int
	// Delivered is the number of messages in the final common sequence.
	Delivered int
	// Crashes counts the nodes crashed, HostKills those that were hosts.
	Crashes, HostKills, Restarts int
	Elapsed                      time.Duration
	// Trace is what each step did when it ran (the resolved targets).
	Trace []string
}

func (r Report) String() string {
	return fmt.Sprintf("seed %d: %d nodes, %d steps, %d sends (%d acknowledged, %d queued, %d failed), %d delivered, %d crashes (%d hosts), %d restarts, %v",
		r.Seed, r.Nodes, len(r.Schedule), r.Sent, r.Acked, r.Queued, r.Failed, r.Delivered, r.Crashes, r.HostKills, r.Restarts, r.Elapsed.Round(time.Millisecond))
}

// Violation is a broken guarantee.
type Violation struct {
	Seed      int64
	Invariant string // "one order", "acknowledged exactly once", ...
	Detail    string
	Replay    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("chaos: seed %d: %s violated: %s (replay: %s)", v.Seed, v.Invariant, v.Detail, v.Replay)
}

// Invariant names.
const (
	InvOneOrder     = "one order"
	InvAcked        = "acknowledged exactly once"
	InvQueued       = "queued exactly once"
	InvNoDuplicates = "at most once"
	InvNoStrangers  = "only sent messages"
	InvCiphertext   = "no plaintext on disk"
	InvSettles      = "settles after healing"
)

// calm is the network between faults.
var calm = simnet.LinkConfig{Latency: time.Millisecond, Jitter: 0.5}

// Run plays the schedule of o.Seed against real nodes and checks the
// guarantees. It returns the report and, if a guarantee broke, a
// [*Violation]; other errors (the group could not even form) name the seed
// too. Run is safe to call from several goroutines.
func Run(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	start := time.Now()
	rep := Report{Seed: o.Seed, Nodes: o.Nodes, Schedule: Schedule(o)}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", fmt.Sprintf("demes-chaos-%d-", o.Seed))
		if err != nil {
			return rep, fmt.Errorf("chaos: seed %d: %w", o.Seed, err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	c, err := newCluster(o, dir)
	if err != nil {
		return rep, fmt.Errorf("chaos: seed %d: %w", o.Seed, err)
	}
	defer c.shutdown()
	err = c.run(ctx, &rep)
	rep.Elapsed = time.Since(start)
	c.mu.Lock()
	rep.Trace = append(rep.Trace, c.trace...)
	c.mu.Unlock()
	var v *Violation
	if errors.As(err, &v) {
		v.Seed, v.Replay = o.Seed, o.replay()
		return rep, v
	}
	if err != nil {
		return rep, fmt.Errorf("chaos: seed %d: %w (replay: %s)", o.Seed, err, o.replay())
	}
	return rep, nil
}

func violation(inv, format string, args ...any) error {
	return &Violation{Invariant: inv, Detail: fmt.Sprintf(format, args...)}
}

// member is one node of the cluster; n is nil while it is crashed.
type member struct {
	i    int
	id   *identity.Identity
	dir  string
	url  string
	name string
	n    *node.Node
}

type outcome int

const (
	acked outcome = iota + 1
	queued
	failed
)

type sendResult struct {
	text string
	from int
	out  outcome
	err  error
}

// entry is one committed message as a node lists it.
type entry struct {
	index uint64
	id    string
	text  string
}

type cluster struct {
	o     Options
	net   *simnet.Network
	log   zerolog.Logger
	gid   string
	nodes []*member

	mu      sync.Mutex // guards the members' n, results, ref and trace
	results []sendResult
	ref     []entry // the longest committed sequence seen so far
	refFrom string
	trace   []string
	sends   sync.WaitGroup
}

func newCluster(o Options, dir string) (*cluster, error) {
	c := &cluster{o: o, net: simnet.New(o.Seed, calm), log: zerolog.Nop()}
	if o.Logger != nil {
		c.log = *o.Logger
	}
	for i := 0; i < o.Nodes; i++ {
		seed := sha256.Sum256([]byte(fmt.Sprintf("demes chaos node %d", i)))
		id, err := identity.FromSeed(seed[:])
		if err != nil {
			return nil, err
		}
		d := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, &member{i: i, id: id, dir: d, url: fmt.Sprintf("sim://node%d", i), name: fmt.Sprintf("node%d", i)})
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.shutdown()
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.trace = append(c.trace, line)
	c.mu.Unlock()
	if c.o.Logf != nil {
		c.o.Logf("seed %d: %s", c.o.Seed, line)
	}
}

func (c *cluster) start(i int) error {
	m := c.nodes[i]
	n, err := node.Open(node.Config{
		Dir: m.dir, Identity: m.id, Name: m.name, URL: m.url,
		Link:   c.net.Endpoint(m.url),
		Logger: c.log.With().Str("node", m.name).Logger(),
		Timing: c.o.Timing,
		// Everything periodic runs a few times faster than by default, so
		// that retries, pings and placement happen during a short schedule.
		RetryInterval:    100 * time.Millisecond,
		PingInterval:     200 * time.Millisecond,
		LatencyInterval:  time.Second,
		TransferCooldown: time.Second,
		SnapshotEntries:  c.o.SnapshotEntries,
		SnapshotKeep:     c.o.SnapshotKeep,
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	c.mu.Lock()
	m.n = n
	c.mu.Unlock()
	c.net.Register(m.url, n.HandleFrame)
	return nil
}

// crash stops a node as a crash looks to the others: it vanishes from the
// network first, then closes; its store keeps what it had written.
func (c *cluster) crash(i int) {
	m := c.nodes[i]
	c.mu.Lock()
	n := m.n
	m.n = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	c.net.Crash(m.url)
	n.Crash()
}

func (c *cluster) node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].n
}

func (c *cluster) live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.nodes {
		if m.n != nil {
			out = append(out, i)
		}
	}
	return out
}

func (c *cluster) down() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.nodes {
		if m.n == nil {
			out = append(out, i)
		}
	}
	return out
}

func (c *cluster) shutdown() {
	c.sends.Wait()
	for i := range c.nodes {
		c.crash(i)
	}
	c.net.Wait()
}

// host is the live node that leads the group in the highest term, or -1.
func (c *cluster) host() int {
	best, term := -1, uint64(0)
	for _, i := range c.live() {
		n := c.node(i)
		if n == nil {
			continue
		}
		for _, g := range n.Status().Groups {
			if g.GroupID == c.gid && g.Role == "leader" && (best < 0 || g.Term > term) {
				best, term = i, g.Term
			}
		}
	}
	return best
}

func (c *cluster) urls(idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = c.nodes[i].url
	}
	return out
}

func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// form creates the group on node 0, has the others join, and waits until
// every node knows every voter, on a calm network.
func (c *cluster) form(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Settle)
	defer cancel()
	n0 := c.node(0)
	gi, err := n0.CreateGroup(ctx, "chaos")
	if err != nil {
		return err
	}
	c.gid = gi.GroupID
	for _, m := range c.nodes[1:] {
		code, err := n0.Invite(ctx, c.gid, m.id.Public().String())
		if err != nil {
			return fmt.Errorf("invite %s: %w", m.name, err)
		}
		if _, err := c.node(m.i).Join(ctx, code); err != nil {
			return fmt.Errorf("join %s: %w", m.name, err)
		}
	}
	want := min(c.o.Nodes, 5)
	ok := waitUntil(ctx, c.o.Settle, func() bool {
		for _, m := range c.nodes {
			voters := 0
			for _, g := range c.node(m.i).Status().Groups {
				for _, mm := range g.Members {
					if mm.Voter {
						voters++
					}
				}
			}
			if voters != want {
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("the group did not reach %d voters on every node", want)
	}
	return nil
}

func (c *cluster) run(ctx context.Context, rep *Report) error {
	if err := c.form(ctx); err != nil {
		return fmt.Errorf("forming the group: %w", err)
	}
	c.logf("group %s formed", c.gid)
	for k, s := range rep.Schedule {
		if err := c.step(ctx, k, s, rep); err != nil {
			return err
		}
		if err := c.observe(); err != nil {
			return err
		}
		if err := pause(ctx, s.Pause); err != nil {
			return err
		}
	}
	c.sends.Wait()
	c.mu.Lock()
	results := append([]sendResult(nil), c.results...)
	c.mu.Unlock()
	for _, r := range results {
		rep.Sent++
		switch r.out {
		case acked:
			rep.Acked++
		case queued:
			rep.Queued++
		default:
			rep.Failed++
		}
	}

	// Heal everything and bring every node back.
	c.net.Heal()
	c.net.SetDefault(calm)
	for i := range c.nodes {
		for j := range c.nodes {
			if i != j {
				c.net.SetLink(c.nodes[i].url, c.nodes[j].url, calm)
			}
		}
	}
	for _, i := range c.down() {
		if err := c.start(i); err != nil {
			return err
		}
		rep.Restarts++
	}
	c.logf("healed; every node up")
	if err := c.settle(ctx, results); err != nil {
		return err
	}
	// Every node restarts once more from its store alone.
	for i := range c.nodes {
		c.crash(i)
	}
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			return err
		}
	}
	c.logf("restarted every node")
	if err := c.settle(ctx, results); err != nil {
		return err
	}
	final, err := c.check(results)
	if err != nil {
		return err
	}
	rep.Delivered = len(final)
	for i := range c.nodes {
		c.crash(i)
	}
	return c.checkStores(results)
}

// step runs one step of the schedule.
func (c *cluster) step(ctx context.Context, k int, s Step, rep *Report) error {
	pick := func(from []int) int {
		if len(from) == 0 {
			return -1
		}
		return from[s.Pick%len(from)]
	}
	switch s.Kind {
	case Send:
		from := pick(c.live())
		if from < 0 {
			c.logf("%d %s: no live node", k, s.Kind)
			return nil
		}
		c.logf("%d %s: %d from node%d, waiting %v", k, s.Kind, s.Count, from, s.Wait)
		for j := 0; j < s.Count; j++ {
			text := fmt.Sprintf("chaos-plaintext-seed%d-step%03d-%d", c.o.Seed, k, j)
			c.sends.Add(1)
			go func() {
				defer c.sends.Done()
				c.send(ctx, from, text, s.Wait)
			}()
		}
	case KillHost, CrashFollower:
		live := c.live()
		h := c.host()
		target := h
		if s.Kind == CrashFollower || h < 0 {
			var others []int
			for _, i := range live {
				if i != h || h < 0 {
					others = append(others, i)
				}
			}
			target = pick(others)
		}
		if target < 0 {
			c.logf("%d %s: nothing to crash", k, s.Kind)
			return nil
		}
		c.crash(target)
		rep.Crashes++
		if target == h {
			rep.HostKills++
		}
		if h < 0 {
			c.logf("%d %s: crashed node%d (no host known)", k, s.Kind, target)
		} else {
			c.logf("%d %s: crashed node%d (host: node%d)", k, s.Kind, target, h)
		}
	case Restart:
		target := pick(c.down())
		if target < 0 {
			c.logf("%d %s: nothing to restart", k, s.Kind)
			return nil
		}
		if err := c.start(target); err != nil {
			return err
		}
		rep.Restarts++
		c.logf("%d %s: restarted node%d", k, s.Kind, target)
	case Partition:
		side := map[int]bool{}
		for _, i := range s.Side {
			side[i] = true
		}
		var a, b []int
		for i := range c.nodes {
			if side[i] {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		c.net.Heal()
		c.net.Partition(c.urls(a), c.urls(b))
		c.logf("%d %s: %v | %v", k, s.Kind, a, b)
	case IsolateHost, CutHost:
		h := c.host()
		if h < 0 {
			c.logf("%d %s: no host", k, s.Kind)
			return nil
		}
		if s.Kind == IsolateHost {
			c.net.Heal()
		}
		for i := range c.nodes {
			if i == h {
				continue
			}
			hu, ou := c.nodes[h].url, c.nodes[i].url
			switch {
			case s.Kind == IsolateHost:
				c.net.Partition([]string{hu}, []string{ou})
			case s.Pick%2 == 0:
				c.net.Cut(ou, hu)
			default:
				c.net.Cut(hu, ou)
			}
		}
		c.logf("%d %s: host node%d", k, s, h)
	case CutOneWay:
		c.net.Cut(c.nodes[s.From].url, c.nodes[s.To].url)
		c.logf("%d %s", k, s)
	case Degrade:
		c.net.SetLink(c.nodes[s.From].url, c.nodes[s.To].url, s.Link)
		c.logf("%d %s", k, s)
	case DegradeAll:
		c.net.SetDefault(s.Link)
		c.logf("%d %s", k, s)
	case RestartAll:
		live := c.live()
		for _, i := range live {
			c.crash(i)
		}
		for _, i := range live {
			if err := c.start(i); err != nil {
				return err
			}
		}
		rep.Crashes += len(live)
		rep.Restarts += len(live)
		c.logf("%d %s: %v", k, s.Kind, live)
	case Heal:
		c.net.Heal()
		c.net.SetDefault(calm)
		for i := range c.nodes {
			for j := range c.nodes {
				if i != j {
					c.net.SetLink(c.nodes[i].url, c.nodes[j].url, calm)
				}
			}
		}
		c.logf("%d %s", k, s.Kind)
	default:
		return fmt.Errorf("step %d: unknown kind %v", k, s.Kind)
	}
	return nil
}

func (c *cluster) send(ctx context.Context, from int, text string, wait time.Duration) {
	r := sendResult{text: text, from: from, out: failed}
	if n := c.node(from); n != nil {
		sctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
		m, err := n.Send(sctx, c.gid, text, wait)
		cancel()
		r.err = err
		switch {
		case err != nil:
		case m.State == node.StateCommitted:
			r.out = acked
		default:
			r.out = queued
		}
	} else {
		r.err = errors.New("node crashed before the send")
	}
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

// committed lists a node's committed messages.
func committed(n *node.Node, gid string) ([]entry, error) {
	ms, err := n.Messages(gid)
	if err != nil {
		return nil, err
	}
	var out []entry
	for _, m := range ms {
		if m.State == node.StateCommitted {
			out = append(out, entry{index: m.Index, id: m.ID, text: m.Text})
		}
	}
	return out, nil
}

// compatible reports whether one of a and b is a prefix of the other, and
// where they first differ if not.
func compatible(a, b []entry) (int, bool) {
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return k, false
		}
	}
	return 0, true
}

// observe checks every live node's committed messages against the longest
// sequence seen so far (on any node, at any time): one order means each is
// a prefix of the other.
func (c *cluster) observe() error {
	for _, i := range c.live() {
		n := c.node(i)
		if n == nil {
			continue
		}
		seq, err := committed(n, c.gid)
		if err != nil {
			continue // crashed meanwhile
		}
		c.mu.Lock()
		k, ok := compatible(c.ref, seq)
		if !ok {
			ref, from := c.ref, c.refFrom
			c.mu.Unlock()
			return violation(InvOneOrder, "node%d lists %s at position %d where %s listed %s", i, show(seq[k]), k, from, show(ref[k]))
		}
		if len(seq) > len(c.ref) {
			c.ref, c.refFrom = seq, fmt.Sprintf("node%d", i)
		}
		c.mu.Unlock()
	}
	return nil
}

func show(e entry) string { return fmt.Sprintf("[%d] %s %q", e.index, e.id, e.text) }

// settle waits until every node is up, lists the same committed messages,
// which include every queued one, and has an empty outbox.
func (c *cluster) settle(ctx context.Context, results []sendResult) error {
	var (
		why  string
		verr error
	)
	ok := waitUntil(ctx, c.o.Settle, func() bool {
		if verr = c.observe(); verr != nil {
			return true
		}
		var first []entry
		for i := range c.nodes {
			n := c.node(i)
			if n == nil {
				why = fmt.Sprintf("node%d is down", i)
				return false
			}
			st := n.Status()
			if len(st.Groups) != 1 {
				why = fmt.Sprintf("node%d is in %d groups", i, len(st.Groups))
				return false
			}
			if q := st.Groups[0].Queued; q != 0 {
				why = fmt.Sprintf("node%d has %d messages in its outbox", i, q)
				return false
			}
			seq, err := committed(n, c.gid)
			if err != nil {
				why = err.Error()
				return false
			}
			if i == 0 {
				first = seq
			} else if len(seq) != len(first) {
				why = fmt.Sprintf("node%d lists %d messages, node0 %d", i, len(seq), len(first))
				return false
			}
		}
		have := map[string]bool{}
		for _, e := range first {
			have[e.text] = true
		}
		for _, r := range results {
			if r.out != failed && !have[r.text] {
				why = fmt.Sprintf("%q (from node%d) is not delivered yet", r.text, r.from)
				return false
			}
		}
		why = ""
		return true
	})
	if verr != nil {
		return verr
	}
	if !ok {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return violation(InvSettles, "after %v: %s", c.o.Settle, why)
	}
	return nil
}

// check verifies the delivery guarantees on the settled group and returns
// the common sequence.
func (c *cluster) check(results []sendResult) ([]entry, error) {
	var seqs [][]entry
	for i := range c.nodes {
		seq, err := committed(c.node(i), c.gid)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	final := seqs[0]
	for i, seq := range seqs {
		if len(seq) != len(final) {
			return nil, violation(InvOneOrder, "node%d lists %d messages, node0 %d", i, len(seq), len(final))
		}
		if k, ok := compatible(final, seq); !ok {
			return nil, violation(InvOneOrder, "node%d lists %s at position %d where node0 lists %s", i, show(seq[k]), k, show(final[k]))
		}
	}
	count := map[string]int{}
	for _, e := range final {
		count[e.text]++
	}
	sent := map[string]bool{}
	for _, r := range results {
		sent[r.text] = true
		switch {
		case r.out == acked && count[r.text] != 1:
			return nil, violation(InvAcked, "%q, acknowledged by node%d, delivered %d times", r.text, r.from, count[r.text])
		case r.out == queued && count[r.text] != 1:
			return nil, violation(InvQueued, "%q, queued on node%d, delivered %d times", r.text, r.from, count[r.text])
		}
	}
	for text, k := range count {
		if k > 1 {
			return nil, violation(InvNoDuplicates, "%q delivered %d times", text, k)
		}
		if !sent[text] {
			return nil, violation(InvNoStrangers, "%q delivered but never sent", text)
		}
	}
	return final, nil
}

// checkStores opens every (closed) node's store and looks for the bytes of
// every sent text in every value.
func (c *cluster) checkStores(results []sendResult) error {
	for _, m := range c.nodes {
		st, err := store.Open(filepath.Join(m.dir, "store.db"))
		if err != nil {
			return fmt.Errorf("open the store of %s: %w", m.name, err)
		}
		var found []string
		values := 0
		err = st.ForEachValue(func(v []byte) {
			values++
			for _, r := range results {
				if bytes.Contains(v, []byte(r.text)) {
					found = append(found, r.text)
				}
			}
		})
		st.Close()
		if err != nil {
			return fmt.Errorf("scan the store of %s: %w", m.name, err)
		}
		if values == 0 {
			return fmt.Errorf("the store of %s is empty", m.name)
		}
		if len(found) > 0 {
			sort.Strings(found)
			return violation(InvCiphertext, "the store of %s holds %s in plaintext", m.name, strings.Join(found, ", "))
		}
	}
	return nil
}
