package chaos_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/demes/demes/node/chaos"
)

var (
	replaySeed  = flag.Int64("chaos.seed", 0, "replay the schedule of this seed (TestReplay)")
	replayNodes = flag.Int("chaos.nodes", 3, "nodes of the replayed schedule")
	replaySteps = flag.Int("chaos.steps", 30, "steps of the replayed schedule")
	schedules   = flag.Int("chaos.schedules", 0, "run this many seeds from -chaos.seed (TestMany)")
	parallel    = flag.Int("chaos.parallel", 2, "schedules run at once (TestMany)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func options(t *testing.T, seed int64, nodes, steps int) chaos.Options {
	o := chaos.Options{Seed: seed, Nodes: nodes, Steps: steps, Logf: t.Logf}
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
	}{
		{1, 3, 30},
		{2, 3, 30},
		{3, 3, 30},
		{4, 5, 30},
		{5, 5, 30},
	} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			rep := run(t, options(t, tc.seed, tc.nodes, tc.steps))
			if rep.Sent == 0 || rep.Delivered == 0 {
				t.Fatalf("a schedule that delivers nothing tests nothing: %v", rep)
			}
		})
	}
}

// TestReplay replays one seed given on the command line:
//
//	go test ./node/chaos -run TestReplay -chaos.seed=42 -v
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
	for k := chaos.Send; k <= chaos.Heal; k++ {
		if !seen[k] {
			t.Errorf("no %v step in seeds 1 to 10", k)
		}
	}
}

// TestViolationNamesSeed: the error of a failed run names the seed and how
// to replay it.
func TestViolationNamesSeed(t *testing.T) {
	v := &chaos.Violation{Seed: 77, Invariant: chaos.InvAcked, Detail: "x", Replay: "chaos.Run(...)"}
	var err error = v
	var got *chaos.Violation
	if !errors.As(err, &got) || got.Seed != 77 {
		t.Fatal("Violation does not unwrap")
	}
	if s := err.Error(); s != `chaos: seed 77: acknowledged exactly once violated: x (replay: chaos.Run(...))` {
		t.Fatalf("message: %s", s)
	}
}
