package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/demes/demes/node/chaos"
	"github.com/demes/demes/node/nodetest"
)

// ChaosOptions configures [Chaos].
type ChaosOptions struct {
	// Schedules is how many seeds are run, from FirstSeed on (default 100).
	Schedules int
	// FirstSeed is the first seed (default 1).
	FirstSeed int64
	// Nodes is the group size of each schedule (default chaos's, 3).
	Nodes int
	// Parallel is how many schedules run at once (default 1).
	Parallel int
	// Churn adds membership changes to the schedules (chaos.Options.Churn).
	Churn bool
	// StoredBoard gives the nodes a snapshot every 8 entries and a window
	// of 4 messages in memory, so that restarts take the board (the
	// reactions the schedules send) from the stored board, not from the
	// messages they read again.
	StoredBoard bool
	// Restore adds backups and restores to the schedules
	// (chaos.Options.Restore).
	Restore bool
	// Progress, when set, receives a line per schedule.
	Progress io.Writer
}

// ChaosResult is what [Chaos] found.
type ChaosResult struct {
	// Schedules is how many schedules ran to checked: fewer than asked
	// for when the run was stopped early.
	Schedules int
	// Violations are the schedules that broke a guarantee (each names its
	// seed and how to replay it); Errors those that could not run.
	Violations []error
	Errors     []error
	// Elapsed is each schedule's run time.
	Elapsed Samples
	// Totals over all schedules.
	Sent, Acked, Queued, Failed, Delivered, Reactions, Crashes, HostKills, Restores int
	// StoredBoard is ChaosOptions.StoredBoard, for the note.
	StoredBoard bool
}

// Figures returns the table lines of the result.
func (r ChaosResult) Figures() []Figure {
	bad := len(r.Violations) + len(r.Errors)
	f := Figure{
		Name: "chaos: schedules breaking a guarantee", Unit: "schedules", N: r.Schedules,
		Median: float64(bad), P99: nan(), Target: fmt.Sprintf("0 of %d", r.Schedules), Verdict: verdict(bad == 0 && r.Schedules > 0),
		Note: fmt.Sprintf("%d violations, %d errors; %d sends (%d acknowledged, %d queued), %d reactions, %d crashes (%d hosts)",
			len(r.Violations), len(r.Errors), r.Sent, r.Acked, r.Queued, r.Reactions, r.Crashes, r.HostKills),
	}
	if r.StoredBoard {
		f.Note += "; restarts from the stored board (a snapshot every 8 entries, 4 messages in memory)"
	}
	if r.Restores > 0 {
		f.Note += fmt.Sprintf("; %d stores put back from a backup", r.Restores)
	}
	d := durationFigure("chaos: one schedule, run to checked", "s", r.Elapsed, 0, 0)
	return []Figure{f, d}
}

// Chaos runs node/chaos's seeded fault schedules (host kills, crashes and
// restarts, partitions, loss, duplication, delay, while members send) and
// counts the schedules after which a delivery guarantee did not hold.
func Chaos(ctx context.Context, o ChaosOptions) (ChaosResult, error) {
	if o.Schedules <= 0 {
		o.Schedules = 100
	}
	if o.FirstSeed == 0 {
		o.FirstSeed = 1
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	r := ChaosResult{Schedules: o.Schedules, StoredBoard: o.StoredBoard}
	var mu sync.Mutex
	err := nodetest.Parallel(o.Schedules, o.Parallel, func(k int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seed := o.FirstSeed + int64(k)
		start := time.Now()
		co := chaos.Options{Seed: seed, Nodes: o.Nodes, Churn: o.Churn, Restore: o.Restore}
		if o.StoredBoard {
			co.SnapshotEntries, co.SnapshotKeep, co.MessageWindow = 8, 2, 4
		}
		rep, err := chaos.Run(ctx, co)
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Elapsed = append(r.Elapsed, time.Since(start))
		r.Sent += rep.Sent
		r.Acked += rep.Acked
		r.Queued += rep.Queued
		r.Failed += rep.Failed
		r.Delivered += rep.Delivered
		r.Reactions += rep.Reactions
		r.Crashes += rep.Crashes
		r.HostKills += rep.HostKills
		r.Restores += rep.Restores
		var v *chaos.Violation
		switch {
		case errors.As(err, &v):
			r.Violations = append(r.Violations, err)
		case err != nil:
			r.Errors = append(r.Errors, err)
		}
		if o.Progress != nil {
			status := "ok"
			if err != nil {
				status = err.Error()
			}
			fmt.Fprintf(o.Progress, "bench: chaos %d/%d: %s: %s\n", len(r.Elapsed), o.Schedules, rep, status)
		}
		return nil
	})
	// Stopped early (^C, a deadline), the figure is of the schedules that
	// ran to checked, not of those asked for.
	r.Schedules = len(r.Elapsed)
	return r, err
}
