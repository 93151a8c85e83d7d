package chaos

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// The runner: it drives a nodetest.Cluster through the schedule, records
// what the nodes list and what each send returned, and hands those
// observations to the checker (check.go).

// calm is the network between faults.
var calm = simnet.LinkConfig{Latency: time.Millisecond, Jitter: 0.5}

// runner is one run of a schedule.
type runner struct {
	o Options
	c *nodetest.Cluster

	mu      sync.Mutex // guards results, reacts, lastAcked, shown, order, index and trace
	results []sendResult
	// reacts are the reactions sent, lastAcked the last message each node
	// sent and had acknowledged, which its next reaction is to (board.go).
	reacts    []reactResult
	lastAcked map[int]string
	// shown are the messages some member listed as tentative, by text,
	// with their authors.
	shown map[string]int
	order orderCheck
	index indexOrder // the order check of churn runs (churn.go)
	trace []string
	sends sync.WaitGroup
	// away are the members an Away step took down for the rest of the
	// schedule; codes the invite codes of joins, by joiner, and rejoining
	// the joins run again (churn.go).
	away map[int]bool
	// left are the members that left the group at some point: one that
	// joins again keeps the history it had read before (checkChurn).
	left      map[int]bool
	codes     map[int]string
	rejoining map[int]bool
	// backups are each member's latest backup, lost the spans in which
	// what a member queued went back with its store (restore.go).
	backups  map[int]backupCopy
	lost     []lostWindow
	restored map[int]bool // put back and not started since (othersHeld)
}

func newRunner(o Options, dir string) (*runner, error) {
	logger := zerolog.Nop()
	if o.Logger != nil {
		logger = *o.Logger
	}
	c, err := nodetest.New(nodetest.Options{
		Size: o.Nodes + o.Spares, Seed: o.Seed, Link: calm, Dir: dir,
		Identity: func(i int) (*identity.Identity, error) {
			seed := sha256.Sum256([]byte(fmt.Sprintf("demes chaos node %d", i)))
			return identity.FromSeed(seed[:])
		},
		Config: node.Config{
			Logger: logger,
			Timing: o.Timing,
			// Everything periodic runs a few times faster than by
			// default, so that retries, pings and placement happen
			// during a short schedule.
			RetryInterval:    100 * time.Millisecond,
			PingInterval:     200 * time.Millisecond,
			LatencyInterval:  time.Second,
			TransferCooldown: time.Second,
			SnapshotEntries:  o.SnapshotEntries,
			SnapshotKeep:     o.SnapshotKeep,
			MessageWindow:    o.MessageWindow,
			// A new sender key every third message, so that
			// schedules rotate keys often and send most headers
			// over key links, through crashes and host changes.
			RotateMessages: 3,
		},
	})
	if err != nil {
		return nil, err
	}
	if err := c.StartAll(); err != nil {
		c.Close()
		return nil, err
	}
	return &runner{o: o, c: c, shown: map[string]int{}, away: map[int]bool{}, codes: map[int]string{}, rejoining: map[int]bool{}, left: map[int]bool{}, backups: map[int]backupCopy{}, restored: map[int]bool{}}, nil
}

func (r *runner) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.trace = append(r.trace, line)
	r.mu.Unlock()
	if r.o.Logf != nil {
		r.o.Logf("seed %d: %s", r.o.Seed, line)
	}
}

func (r *runner) shutdown() {
	r.sends.Wait()
	r.c.Close()
}

// start starts node i from its store: one restored since its last start
// is held from then on until it catches up, as its status says.
func (r *runner) start(i int) error {
	r.mu.Lock()
	delete(r.restored, i)
	r.started(i)
	r.mu.Unlock()
	return r.c.Start(i)
}

// heal removes every cut and puts every link back to calm.
func (r *runner) heal() {
	net := r.c.Net()
	net.Heal()
	net.SetDefault(calm)
	for i, a := range r.c.Members() {
		for j, b := range r.c.Members() {
			if i != j {
				net.SetLink(a.URL, b.URL, calm)
			}
		}
	}
}

// form creates the group on node 0, has the others join, and waits until
// every node knows every voter, on a calm network.
func (r *runner) form(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.Settle)
	defer cancel()
	if err := r.c.Form(ctx, nodetest.FormOptions{Name: "chaos"}); err != nil {
		return err
	}
	want := min(r.o.Nodes, 5)
	if err := r.c.Until(ctx, fmt.Sprintf("%d voters on every node", want), r.c.HasVoters(want)); err != nil {
		return fmt.Errorf("the group did not reach %d voters on every node: %w", want, err)
	}
	return nil
}

func (r *runner) run(ctx context.Context, rep *Report) error {
	form := r.form
	if r.o.Churn {
		form = r.formChurn
	}
	if err := form(ctx); err != nil {
		return fmt.Errorf("forming the group: %w", err)
	}
	r.logf("group %s formed", r.c.GroupID)
	// Tentative messages come and go between steps (they commit once the
	// group can): look for them all along.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			for _, i := range r.c.Live() {
				r.noteTentative(i)
			}
			if pause(watchCtx, 50*time.Millisecond) != nil {
				return
			}
		}
	}()
	defer func() { stopWatch(); <-watched }()
	for k, s := range rep.Schedule {
		if err := r.step(ctx, k, s, rep); err != nil {
			return err
		}
		if err := r.observe(); err != nil {
			return err
		}
		if err := pause(ctx, s.Pause); err != nil {
			return err
		}
	}
	r.sends.Wait()
	stopWatch()
	<-watched
	r.mu.Lock()
	results := append([]sendResult(nil), r.results...)
	for text, from := range r.shown {
		results = append(results, sendResult{text: text, from: from, out: shown})
		rep.Tentative++
	}
	r.forgetLost(results, r.reacts)
	r.mu.Unlock()
	for _, res := range results {
		if res.out == shown {
			continue
		}
		rep.Sent++
		switch res.out {
		case acked:
			rep.Acked++
		case queued:
			rep.Queued++
		default:
			rep.Failed++
		}
	}

	// Heal everything and bring every node back.
	r.heal()
	for _, i := range r.c.Down() {
		if err := r.start(i); err != nil {
			return err
		}
		rep.Restarts++
	}
	r.logf("healed; every node up")
	if err := r.settle(ctx, results); err != nil {
		return err
	}
	// Every node restarts once more from its store alone.
	for i := range r.c.Members() {
		r.c.Crash(i)
	}
	for i := range r.c.Members() {
		if err := r.start(i); err != nil {
			return err
		}
	}
	r.logf("restarted every node")
	if err := r.settle(ctx, results); err != nil {
		return err
	}
	final, err := r.check(results)
	if err != nil {
		return err
	}
	rep.Delivered = len(final)
	if err := r.checkBoards(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	rep.Reactions = len(r.reacts)
	r.mu.Unlock()
	for i := range r.c.Members() {
		r.c.Crash(i)
	}
	return r.checkStores(results)
}

// step runs one step of the schedule.
func (r *runner) step(ctx context.Context, k int, s Step, rep *Report) error {
	pick := func(from []int) int {
		if len(from) == 0 {
			return -1
		}
		return from[s.Pick%len(from)]
	}
	switch s.Kind {
	case Join, Leave, Away:
		return r.churnStep(ctx, k, s, rep, pick)
	case Send:
		from := pick(r.live())
		if from < 0 {
			r.logf("%d %s: no live node", k, s.Kind)
			return nil
		}
		r.logf("%d %s: %d from node%d, waiting %v", k, s.Kind, s.Count, from, s.Wait)
		for j := 0; j < s.Count; j++ {
			r.sends.Add(1)
			if target := r.reactTarget(from, k, j); target != "" {
				emoji := reactions[(k+j)/reactEvery%len(reactions)]
				go func() {
					defer r.sends.Done()
					r.react(ctx, from, target, emoji, s.Wait)
				}()
				continue
			}
			text := fmt.Sprintf("chaos-plaintext-seed%d-step%03d-%d", r.o.Seed, k, j)
			go func() {
				defer r.sends.Done()
				r.send(ctx, from, text, s.Wait)
			}()
		}
	case KillHost, CrashFollower:
		live := r.live()
		h := r.c.Host()
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
			r.logf("%d %s: nothing to crash", k, s.Kind)
			return nil
		}
		r.c.Crash(target)
		rep.Crashes++
		if target == h {
			rep.HostKills++
		}
		if h < 0 {
			r.logf("%d %s: crashed node%d (no host known)", k, s.Kind, target)
		} else {
			r.logf("%d %s: crashed node%d (host: node%d)", k, s.Kind, target, h)
		}
	case Restart:
		target := pick(r.down())
		if target < 0 {
			r.logf("%d %s: nothing to restart", k, s.Kind)
			return nil
		}
		if err := r.start(target); err != nil {
			return err
		}
		rep.Restarts++
		r.logf("%d %s: restarted node%d", k, s.Kind, target)
	case Partition:
		side := map[int]bool{}
		for _, i := range s.Side {
			side[i] = true
		}
		var a, b []int
		for i := range r.c.Members() {
			if side[i] {
				a = append(a, i)
			} else {
				b = append(b, i)
			}
		}
		r.c.Net().Heal()
		r.c.Net().Partition(r.c.URLs(a...), r.c.URLs(b...))
		r.logf("%d %s: %v | %v", k, s.Kind, a, b)
	case IsolateHost, CutHost:
		h := r.c.Host()
		if h < 0 {
			r.logf("%d %s: no host", k, s.Kind)
			return nil
		}
		if s.Kind == IsolateHost {
			r.c.Net().Heal()
		}
		for i := range r.c.Members() {
			if i == h {
				continue
			}
			hu, ou := r.c.Member(h).URL, r.c.Member(i).URL
			switch {
			case s.Kind == IsolateHost:
				r.c.Net().Partition([]string{hu}, []string{ou})
			case s.Pick%2 == 0:
				r.c.Net().Cut(ou, hu)
			default:
				r.c.Net().Cut(hu, ou)
			}
		}
		r.logf("%d %s: host node%d", k, s, h)
	case CutOneWay:
		r.c.Net().Cut(r.c.Member(s.From).URL, r.c.Member(s.To).URL)
		r.logf("%d %s", k, s)
	case Degrade:
		r.c.Net().SetLink(r.c.Member(s.From).URL, r.c.Member(s.To).URL, s.Link)
		r.logf("%d %s", k, s)
	case DegradeAll:
		r.c.Net().SetDefault(s.Link)
		r.logf("%d %s", k, s)
	case RestartAll:
		live := r.c.Live()
		for _, i := range live {
			r.c.Crash(i)
		}
		for _, i := range live {
			if err := r.start(i); err != nil {
				return err
			}
		}
		rep.Crashes += len(live)
		rep.Restarts += len(live)
		r.logf("%d %s: %v", k, s.Kind, live)
	case Heal:
		r.heal()
		r.logf("%d %s", k, s.Kind)
	case Backup:
		i := pick(r.live())
		if i < 0 {
			r.logf("%d %s: no live node", k, s.Kind)
			return nil
		}
		return r.backup(k, s, i)
	case Restore:
		i := pick(r.restorable(true))
		if i < 0 {
			i = pick(r.restorable(false))
		}
		switch {
		case i < 0:
			r.logf("%d %s: no node with a backup", k, s.Kind)
			return nil
		case r.othersHeld(i):
			r.logf("%d %s: another member restored has not caught up yet", k, s.Kind)
			return nil
		}
		if r.c.Node(i) != nil {
			r.c.Crash(i)
			rep.Crashes++
		}
		return r.restore(k, s, i, rep)
	default:
		return fmt.Errorf("step %d: unknown kind %v", k, s.Kind)
	}
	return nil
}

func (r *runner) send(ctx context.Context, from int, text string, wait time.Duration) {
	res := sendResult{text: text, from: from}
	var m node.Message
	m, res.out, res.err = r.call(ctx, from, wait, func(ctx context.Context, n *node.Node) (node.Message, error) {
		return n.Send(ctx, r.c.GroupID, text, wait)
	})
	res.done = time.Now()
	if res.out == acked {
		r.noteAcked(from, m.ID)
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}

// call makes node from send (fn: Send or Post, waiting up to wait), and
// returns what it answered and the outcome: acknowledged when committed, or
// when the node had nothing to send (Unchanged: a reaction it has already,
// which shows as if committed), queued otherwise, failed on an error or
// with the node down.
func (r *runner) call(ctx context.Context, from int, wait time.Duration, fn func(context.Context, *node.Node) (node.Message, error)) (node.Message, outcome, error) {
	n := r.c.Node(from)
	if n == nil {
		return node.Message{}, failed, errors.New("node crashed before the send")
	}
	cctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	m, err := fn(cctx, n)
	switch {
	case err != nil:
		return m, failed, err
	case m.Unchanged, m.State == node.StateCommitted:
		return m, acked, nil
	}
	return m, queued, nil
}

// committed lists node i's committed messages.
func (r *runner) committed(i int) ([]entry, error) {
	ms, err := r.c.Committed(i)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(ms))
	for _, m := range ms {
		out = append(out, entry{index: m.Index, id: m.ID, text: m.Text})
	}
	return out, nil
}

// observe hands every live node's committed messages to the order check,
// and notes the other members' messages it lists as tentative.
func (r *runner) observe() error {
	for _, i := range r.c.Live() {
		r.noteTentative(i)
		seq, err := r.committed(i)
		if err != nil {
			continue // crashed meanwhile
		}
		r.mu.Lock()
		if r.o.Churn {
			err = r.index.observe(fmt.Sprintf("node%d", i), seq)
		} else {
			err = r.order.observe(fmt.Sprintf("node%d", i), seq)
		}
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// noteTentative records the messages of other members that node i lists as
// tentative, with their authors.
func (r *runner) noteTentative(i int) {
	n := r.c.Node(i)
	if n == nil {
		return
	}
	// Tentative messages come last: the newest page holds them (a run
	// sends far fewer than a page while the group cannot commit).
	p, err := n.MessagePage(r.c.GroupID, 200, "")
	if err != nil {
		return
	}
	ms := p.Messages
	self := r.c.Member(i).ID.Public().String()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range ms {
		if m.State == node.StateTentative && m.Author != self {
			if from := r.c.Index(m.Author); from >= 0 {
				r.shown[m.Text] = from
			}
		}
	}
}
