package chaos_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/demes/demes/node/chaos"
	"github.com/demes/demes/node/nodetest"
)

var (
	replaySeed  = flag.Int64("chaos.seed", 0, "replay the schedule of this seed (TestReplay)")
	replayNodes = flag.Int("chaos.nodes", 3, "nodes of the replayed schedule")
	replaySteps = flag.Int("chaos.steps", 30, "steps of the replayed schedule")
	replayDown  = flag.Int("chaos.maxdown", 0, "most nodes down at once in the replayed schedule (0: a minority)")
	schedules   = flag.Int("chaos.schedules", 0, "run this many seeds from -chaos.seed (TestMany)")
	parallel    = flag.Int("chaos.parallel", 2, "schedules run at once (TestMany)")
	snapEntries = flag.Uint64("chaos.snapshot", 0, "the nodes' SnapshotEntries (0: the default)")
	snapKeep    = flag.Uint64("chaos.keep", 0, "the nodes' SnapshotKeep (0: the default)")
	window      = flag.Int("chaos.window", 0, "the nodes' MessageWindow (0: the default)")
	churn       = flag.Bool("chaos.churn", false, "membership changes during the faults (joins, leaves, a member away)")
	restore     = flag.Bool("chaos.restore", false, "backups and restores during the faults (a member's store put back to an earlier backup)")
)

// TestMain checks for leaked goroutines; schedules run at once and store in
// memory (see nodetest.SetUpTestMain).
func TestMain(m *testing.M) {
	nodetest.SetUpTestMain()
	goleak.VerifyTestMain(m)
}

func options(t *testing.T, seed int64, nodes, steps int) chaos.Options {
	o := chaos.Options{Seed: seed, Nodes: nodes, Steps: steps, MaxDown: *replayDown, Logf: t.Logf,
		SnapshotEntries: *snapEntries, SnapshotKeep: *snapKeep, MessageWindow: *window, Churn: *churn, Restore: *restore}
	if os.Getenv("DEMES_TEST_LOG") != "" {
		l := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
		o.Logger = &l
	}
	return o
}

func run(t *testing.T, o chaos.Options) chaos.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		t.Logf("schedule:\n%s", chaos.FormatSchedule(rep.Schedule))
		t.Fatal(err)
	}
	t.Log(rep)
	return rep
}

// TestSeeds runs a fixed set of schedules: 3 and 5 nodes, host kills,
// crashes, partitions, lossy links, with every guarantee checked after each.
func TestSeeds(t *testing.T) {
	for _, tc := range []struct {
		seed         int64
		nodes, steps int
		snapshot     uint64 // SnapshotEntries, 0 for the flag's
		churn        bool
		restore      bool
	}{
		// Chosen for variety: host kills, restarts of every node, long
		// partitions with most sends queued, and 5-node groups with two
		// nodes down.
		{2, 3, 30, 0, false, false},
		{3, 3, 30, 0, false, false},
		{10, 3, 30, 0, false, false},
		{3, 5, 30, 0, false, false},
		{8, 5, 30, 0, false, false},
		// The same with a snapshot every few entries and a window of 4
		// messages: restarts restore a snapshot and the reactions before
		// the window from the stored board, and members catch up from the
		// log in the store.
		{10, 3, 30, 8, false, false},
		{8, 5, 30, 8, false, false},
		// With membership changes during the faults: members join and
		// leave, one is away for most of the schedule and must catch up.
		{2, 5, 30, 0, true, false},
		{4, 5, 30, 8, true, false},
		// With backups and restores: a member's store put back to an
		// earlier backup twice, catching up without the group losing
		// what it acknowledged.
		{346004, 3, 30, 0, false, true},
	} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			o := options(t, tc.seed, tc.nodes, tc.steps)
			if tc.snapshot > 0 {
				o.SnapshotEntries, o.SnapshotKeep, o.MessageWindow = tc.snapshot, 2, 4
			}
			o.Churn = o.Churn || tc.churn
			o.Restore = o.Restore || tc.restore
			rep := run(t, o)
			if rep.Sent == 0 || rep.Delivered == 0 {
				t.Fatalf("a schedule that delivers nothing tests nothing: %v", rep)
			}
			if tc.restore && rep.Restores == 0 {
				t.Fatalf("a restore schedule that restored nothing: %v", rep)
			}
		})
	}
}

// TestReplay replays one seed given on the command line (a failed run
// prints the exact command):
//
//	go test ./node/chaos -run TestReplay -v -chaos.seed=42
func TestReplay(t *testing.T) {
	if *replaySeed == 0 {
		t.Skip("no -chaos.seed given")
	}
	run(t, options(t, *replaySeed, *replayNodes, *replaySteps))
}

// TestMany runs many schedules, a few at a time:
//
//	go test ./node/chaos -run TestMany -chaos.schedules=200 -chaos.seed=1000 -timeout=1h
func TestMany(t *testing.T) {
	if *schedules == 0 {
		t.Skip("no -chaos.schedules given")
	}
	sem := make(chan struct{}, max(*parallel, 1))
	t.Run("group", func(t *testing.T) {
		for k := 0; k < *schedules; k++ {
			seed := *replaySeed + int64(k)
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				o := options(t, seed, *replayNodes, *replaySteps)
				o.Logf = nil
				run(t, o)
			})
		}
	})
}

// TestScheduleIsDeterministic: a seed is its schedule, so a printed failing
// seed replays the same faults.
func TestScheduleIsDeterministic(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		for _, nodes := range []int{3, 5} {
			o := chaos.Options{Seed: seed, Nodes: nodes, Steps: 40}
			a, b := chaos.Schedule(o), chaos.Schedule(o)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d: two generations differ:\n%s\n%s", seed, chaos.FormatSchedule(a), chaos.FormatSchedule(b))
			}
			if len(a) != 40 {
				t.Fatalf("seed %d: %d steps, want 40", seed, len(a))
			}
			// The schedule never takes more than a minority down.
			down := 0
			for _, s := range a {
				switch s.Kind {
				case chaos.KillHost, chaos.CrashFollower:
					down++
				case chaos.Restart:
					down--
				}
				if down < 0 || down > (nodes-1)/2 {
					t.Fatalf("seed %d: %d nodes down after %v", seed, down, s)
				}
			}
		}
	}
	a := chaos.Schedule(chaos.Options{Seed: 1})
	b := chaos.Schedule(chaos.Options{Seed: 2})
	if reflect.DeepEqual(a, b) {
		t.Fatal("seeds 1 and 2 give the same schedule")
	}
	// Every kind of fault shows up across a few seeds.
	seen := map[chaos.Kind]bool{}
	for seed := int64(1); seed <= 10; seed++ {
		for _, s := range chaos.Schedule(chaos.Options{Seed: seed}) {
			seen[s.Kind] = true
		}
	}
	for k := chaos.Send; k <= chaos.RestartAll; k++ {
		if !seen[k] {
			t.Errorf("no %v step in seeds 1 to 10", k)
		}
	}
}

// TestFailureNamesSeed: a failed run names its seed and the command that
// replays it, and a broken guarantee is a *Violation.
func TestFailureNamesSeed(t *testing.T) {
	// No time to settle: the run cannot even form its group.
	_, err := chaos.Run(context.Background(), chaos.Options{Seed: 77, Steps: 1, Settle: time.Nanosecond})
	if err == nil {
		t.Fatal("a run without time to settle succeeded")
	}
	for _, want := range []string{"seed 77", "-chaos.seed=77 ", "Seed: 77,"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	var v *chaos.Violation
	if errors.As(err, &v) {
		t.Fatalf("a run that could not start reported a violation: %v", err)
	}
	var err2 error = &chaos.Violation{Seed: 77, Invariant: chaos.InvAcked, Detail: "x", Replay: "r"}
	if !errors.As(err2, &v) || v.Seed != 77 || err2.Error() != "chaos: seed 77: acknowledged exactly once violated: x (replay: r)" {
		t.Fatalf("violation: %v", err2)
	}
}
