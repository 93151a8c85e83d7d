package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/demes/demes/node"
)

// RestartOptions configures [Restart].
type RestartOptions struct {
	// Binary is the demes executable to run. Required.
	Binary string
	// Rounds is how many times every node is killed at once (default 10).
	Rounds int
	// Progress, when set, receives a line per round.
	Progress io.Writer
}

// RestartResult is what [Restart] measured.
type RestartResult struct {
	// Commits: from the moment a majority (two of three) serves again
	// after every node was killed with SIGKILL at once, until a message
	// sent by one of them is committed.
	Commits Samples
	// Lost counts the messages acknowledged before a kill that some node
	// did not list afterwards.
	Lost int
}

// Figures returns the table lines of the result.
func (r RestartResult) Figures() []Figure {
	f := durationFigure("restart all: kill -9 every node, majority back -> commits", "s", r.Commits, 2*time.Second, 0)
	f.Note = fmt.Sprintf("3 demes serve processes on loopback; %d acknowledged messages lost", r.Lost)
	return []Figure{f}
}

// Restart runs three `demes serve` processes of o.Binary on loopback in one
// group, and o.Rounds times: sends a message, kills every process with
// SIGKILL at once, starts two of them again, and measures how long until
// one of them commits a message once both serve; then starts the third and
// waits until the group is stable again.
func Restart(ctx context.Context, o RestartOptions) (RestartResult, error) {
	var r RestartResult
	if o.Binary == "" {
		return r, errors.New("restart: no demes binary given")
	}
	if o.Rounds <= 0 {
		o.Rounds = 10
	}
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "restart", 3, HTTP)
	defer stop()
	if err != nil {
		return r, err
	}
	var acked []string
	for k := 0; k < o.Rounds; k++ {
		if _, err := waitStable(ctx, procs, gid); err != nil {
			return r, fmt.Errorf("round %d: %w", k+1, err)
		}
		m, code, err := procs[k%3].api.send(ctx, gid, fmt.Sprintf("before restart %d", k), 10*time.Second)
		if err != nil || code != http.StatusOK || m.State != node.StateCommitted {
			return r, fmt.Errorf("round %d: send before the kill: %v (%d, %s)", k+1, err, code, m.State)
		}
		acked = append(acked, m.ID)
		for _, p := range procs {
			if err := p.kill(); err != nil {
				return r, err
			}
		}
		// Two of three back: a majority of the voters.
		back := []*serveProc{procs[(k+1)%3], procs[(k+2)%3]}
		for _, p := range back {
			if err := p.start(ctx); err != nil {
				return r, err
			}
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		for j := 0; ; j++ {
			m, code, err := back[j%2].api.send(rctx, gid, fmt.Sprintf("after restart %d/%d", k, j), 20*time.Millisecond)
			if err == nil && code == http.StatusOK && m.State == node.StateCommitted {
				break
			}
			if rctx.Err() != nil {
				cancel()
				return r, fmt.Errorf("round %d: no commit within 30 s of a majority back", k+1)
			}
		}
		cancel()
		r.Commits = append(r.Commits, time.Since(start))
		if err := procs[k%3].start(ctx); err != nil {
			return r, err
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: restart %d/%d: commits %.3f s after a majority is back\n", k+1, o.Rounds, r.Commits[k].Seconds())
		}
	}
	lost, _, err := checkDelivered(ctx, procs, gid, acked)
	r.Lost = lost
	return r, err
}
