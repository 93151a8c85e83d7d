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
// messages; with [Options.Restore], it also takes backups of members' stores
// and puts a crashed member's store back to its latest backup, one member
// held as restored at a time (restore.go). Then it heals the network,
// restarts every crashed node, waits for the group to settle, restarts
// every node once more from its store, and checks (check.go, a pure function of what the run observed):
//
//   - one order: every node's committed messages are a prefix of one common
//     sequence (checked after every step, too, not only at the end);
//   - nothing acknowledged is lost: every send that returned committed is
//     delivered exactly once;
//   - nothing is lost silently: every send that returned queued is
//     delivered exactly once after healing, and no message is delivered twice;
//   - what was shown is kept: every message a member listed as tentative
//     (delivered directly while the group could not commit) is committed
//     exactly once after healing;
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
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/node"
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
	// Churn adds membership changes to the schedule (see [Join], [Leave],
	// [Away]): the run starts Spares more nodes in no group, which members
	// invite during the run, and the group lets every member invite.
	Churn bool
	// Spares is how many such nodes a churn run has (default 2).
	Spares int
	// Restore adds backups and restores to the schedule (see [Backup],
	// [Restore]): a member's store is put back to an earlier backup while
	// it is down, and it must catch up without the group losing or
	// reordering anything it acknowledged. What the restored member had
	// only queued after its backup went back with its outbox: such a send
	// counts as failed (delivered at most once).
	Restore bool
	// SnapshotEntries and SnapshotKeep are the nodes' snapshot settings
	// (see node.Config; default: the node's). Small ones make a short
	// schedule take snapshots, restart from them, and catch members up from
	// the log in the store rather than in memory.
	SnapshotEntries, SnapshotKeep uint64
	// MessageWindow is the nodes' window of messages in memory (see
	// node.Config; default: the node's). A small one makes a restart
	// restore the board of the messages before it from the stored board
	// alone (board.go), not from the messages it reads again.
	MessageWindow int
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
	if o.Churn && o.Spares <= 0 {
		o.Spares = 2
	}
	if !o.Churn {
		o.Spares = 0
	}
	return o
}

// replay is how to run the same schedule again.
func (o Options) replay() string {
	return fmt.Sprintf("chaos.Run(ctx, chaos.Options{Seed: %d, Nodes: %d, Steps: %d, MaxDown: %d, Churn: %v, Restore: %v, SnapshotEntries: %d, SnapshotKeep: %d, MessageWindow: %d}), or go test ./node/chaos -run TestReplay -v -chaos.seed=%d -chaos.nodes=%d -chaos.steps=%d -chaos.maxdown=%d -chaos.churn=%v -chaos.restore=%v -chaos.snapshot=%d -chaos.keep=%d -chaos.window=%d",
		o.Seed, o.Nodes, o.Steps, o.MaxDown, o.Churn, o.Restore, o.SnapshotEntries, o.SnapshotKeep, o.MessageWindow,
		o.Seed, o.Nodes, o.Steps, o.MaxDown, o.Churn, o.Restore, o.SnapshotEntries, o.SnapshotKeep, o.MessageWindow)
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
	// Tentative counts the messages some member listed as tentative.
	Tentative int
	// Delivered is the number of messages in the final common sequence.
	Delivered int
	// Reactions counts the reactions sent (board.go), whatever their
	// outcome; they are not among the sends.
	Reactions int
	// Crashes counts the nodes crashed, HostKills those that were hosts.
	Crashes, HostKills, Restarts int
	// Restores counts the stores put back from a backup.
	Restores int
	Elapsed  time.Duration
	// Trace is what each step did when it ran (the resolved targets).
	Trace []string
}

func (r Report) String() string {
	restores := ""
	if r.Restores > 0 {
		restores = fmt.Sprintf(", %d restored from a backup", r.Restores)
	}
	return fmt.Sprintf("seed %d: %d nodes, %d steps, %d sends (%d acknowledged, %d queued, %d failed, %d shown tentative), %d delivered, %d reactions, %d crashes (%d hosts), %d restarts%s, %v",
		r.Seed, r.Nodes, len(r.Schedule), r.Sent, r.Acked, r.Queued, r.Failed, r.Tentative, r.Delivered, r.Reactions, r.Crashes, r.HostKills, r.Restarts, restores, r.Elapsed.Round(time.Millisecond))
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
	InvTentative    = "tentative committed exactly once"
	InvNoDuplicates = "at most once"
	InvNoStrangers  = "only sent messages"
	InvCiphertext   = "no plaintext on disk"
	InvSettles      = "settles after healing"
	InvCaughtUp     = "a member that returns catches up"
	InvOneBoard     = "one board"
	InvReactions    = "acknowledged reactions shown"
)

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
	r, err := newRunner(o, dir)
	if err != nil {
		return rep, fmt.Errorf("chaos: seed %d: %w", o.Seed, err)
	}
	defer r.shutdown()
	err = r.run(ctx, &rep)
	rep.Elapsed = time.Since(start)
	r.mu.Lock()
	rep.Trace = append(rep.Trace, r.trace...)
	r.mu.Unlock()
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
