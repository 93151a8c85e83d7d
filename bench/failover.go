package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// FailoverOptions configures [Failover].
type FailoverOptions struct {
	// Binary is the demes executable to run (`demes bench` passes its own,
	// the Benchmark functions build one). Required.
	Binary string
	// Kills is how many times the host is killed (default 20).
	Kills int
	// Cuts is how many times the host's links are cut (0: as many as
	// Kills; negative: none). See [FailoverResult.Cut].
	Cuts int
	// Progress, when set, receives a line per kill.
	Progress io.Writer
	// Transport is how the processes talk (HTTP or P2P; default HTTP).
	Transport Transport
}

// FailoverResult is what [Failover] measured.
type FailoverResult struct {
	// Failover: from SIGKILL of the host until a survivor's send was
	// committed by a new host. The survivor sends a new message every
	// few milliseconds from the moment of the kill, each waiting 20 ms for
	// its commit, so this is what a member typing during the failover sees.
	Failover Samples
	// NewHost: from SIGKILL until the other survivor's status names a new
	// host.
	NewHost Samples
	// Drained: from SIGKILL until every message the survivor sent during
	// the failover (most of them queued in its outbox) was committed.
	Drained Samples
	// Rejoin: from the restart of the killed process until it has caught
	// up and every node counts 3 voters again.
	Rejoin Samples
	// Cut, CutNewHost and CutDrained are Failover, NewHost and Drained
	// when the host's links are cut instead: its process is stopped
	// (SIGSTOP), so that it sends and answers nothing while its
	// connections stay open, as behind a pulled cable; nothing tells the
	// others it is gone. Healed: from its SIGCONT (the cable back) until
	// every node agrees on one host and counts 3 voters again.
	Cut, CutNewHost, CutDrained, Healed Samples
	// Sent counts the messages sent during the failovers, Queued those of
	// them not committed when their send returned (they wait in the
	// outbox), Lost those missing from some node's messages in the end,
	// Duplicated those listed more than once.
	Sent, Queued, Lost, Duplicated int
	// Transport is how the processes talked, Paths (on libp2p) how their
	// hosts reached each other at the end.
	Transport Transport
	Paths     map[string]int
}

// Figures returns the table lines of the result.
func (r FailoverResult) Figures() []Figure {
	f := durationFigure("failover: kill -9 host -> new host commits", "s", r.Failover, 700*time.Millisecond, 1500*time.Millisecond)
	f.Note = "3 demes serve processes on loopback"
	if r.Transport.p2p() {
		f.Note += "; " + pathsNote(r.Paths)
	}
	h := durationFigure("failover: kill -9 host -> new host known", "s", r.NewHost, 0, 0)
	d := durationFigure("failover: kill -9 host -> sent meanwhile all committed", "s", r.Drained, 0, 0)
	d.Note = "the outbox re-proposes queued messages to the new host"
	j := durationFigure("failover: restart -> caught up, 3 voters", "s", r.Rejoin, 0, 0)
	lost := Figure{
		Name: "failover: messages sent during failover lost", Unit: "msgs", N: r.Sent,
		Median: float64(r.Lost + r.Duplicated), P99: nan(), Target: "0 lost, 0 duplicated", Verdict: verdict(r.Lost+r.Duplicated == 0 && r.Sent > 0),
		Note: fmt.Sprintf("%d sent, %d queued at first, %d lost, %d duplicated", r.Sent, r.Queued, r.Lost, r.Duplicated),
	}
	figs := []Figure{f, h, d, j}
	if len(r.Cut) > 0 {
		c := durationFigure("failover: cut host's links -> new host commits", "s", r.Cut, 700*time.Millisecond, 1500*time.Millisecond)
		c.Note = "the host's process stopped (SIGSTOP): silent, its connections open"
		ch := durationFigure("failover: cut host's links -> new host known", "s", r.CutNewHost, 0, 0)
		cd := durationFigure("failover: cut host's links -> sent meanwhile all committed", "s", r.CutDrained, 0, 0)
		hl := durationFigure("failover: links back -> one host, 3 voters", "s", r.Healed, 0, 0)
		figs = append(figs, c, ch, cd, hl)
	}
	return r.Transport.noted(append(figs, lost))
}

// Failover runs three `demes serve` processes of o.Binary on loopback,
// forms a group through the command line (keygen, group create, invite,
// join), and then, o.Kills times: kills the host's process with SIGKILL,
// measures how long until a new host commits a message sent by a survivor,
// restarts the killed node on the same ports, and waits until it has
// caught up and all three are voters again. Then, o.Cuts times, the same
// with the host's links cut (its process stopped) instead of killed, and
// restored instead of restarted.
func Failover(ctx context.Context, o FailoverOptions) (FailoverResult, error) {
	r := FailoverResult{Transport: o.Transport}
	if o.Binary == "" {
		return r, errors.New("failover: no demes binary given")
	}
	if o.Kills <= 0 {
		o.Kills = 20
	}
	if o.Cuts == 0 {
		o.Cuts = o.Kills
	}
	if o.Cuts > 0 && !canPause {
		o.Cuts = 0
		if o.Progress != nil {
			fmt.Fprintln(o.Progress, "bench: failover: no cut-link runs on this platform (no SIGSTOP)")
		}
	}
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "failover", 3, o.Transport)
	defer stop()
	if err != nil {
		return r, err
	}
	var sent []string
	// The kills, then the cuts: the same round, the host killed or its
	// process stopped.
	for _, round := range []struct {
		name string
		n    int
		cut  bool
	}{{"kill", o.Kills, false}, {"cut", o.Cuts, true}} {
		for k := 0; k < round.n; k++ {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			host, err := waitStable(ctx, procs, gid)
			if err != nil {
				return r, fmt.Errorf("%s %d: %w", round.name, k+1, err)
			}
			ids, err := failoverOnce(ctx, procs, gid, host, k, round.cut, &r)
			sent = append(sent, ids...)
			if err != nil {
				return r, fmt.Errorf("%s %d: %w", round.name, k+1, err)
			}
			if o.Progress != nil {
				fmt.Fprintln(o.Progress, r.progress(round.cut, k, round.n))
			}
		}
	}
	r.Sent = len(sent)
	r.Lost, r.Duplicated, err = checkDelivered(ctx, procs, gid, sent)
	if err == nil && o.Transport.p2p() {
		r.Paths, err = procPaths(ctx, procs, gid)
	}
	return r, err
}

// startProcGroup starts n `demes serve` processes of bin on loopback, each
// with its own home in a new temporary directory, talking over t (with
// P2P, each listens for libp2p peers on a free loopback port too), and
// forms a group of them through the command line (keygen, group create,
// invite, join). stop ends
// the processes and removes the directory; call it even on an error.
// Each of opts may set up a process before it starts.
func startProcGroup(ctx context.Context, bin, name string, n int, t Transport, opts ...func(i int, p *serveProc) error) (procs []*serveProc, gid string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "demes-bench-"+name+"-")
	if err != nil {
		return nil, "", func() {}, err
	}
	procs = make([]*serveProc, n)
	stop = func() {
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
		os.RemoveAll(dir)
	}
	for i := range procs {
		p := &serveProc{bin: bin, home: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		procs[i] = p
		if p.listen, err = freeAddr(); err != nil {
			return procs, "", stop, err
		}
		if p.ui, err = freeAddr(); err != nil {
			return procs, "", stop, err
		}
		if t.p2p() {
			if p.p2p, err = freeAddr(); err != nil {
				return procs, "", stop, err
			}
		}
		out, err := p.cli(ctx, "keygen", "--name", fmt.Sprintf("node%d", i))
		if err != nil {
			return procs, "", stop, err
		}
		p.pub = out
		for _, o := range opts {
			if err := o(i, p); err != nil {
				return procs, "", stop, err
			}
		}
		if err := p.start(ctx); err != nil {
			return procs, "", stop, err
		}
	}
	gid, err = procs[0].cli(ctx, "group", "create", "bench")
	if err != nil {
		return procs, "", stop, err
	}
	for _, p := range procs[1:] {
		code, err := procs[0].cli(ctx, "invite", p.pub, "--group", gid)
		if err != nil {
			return procs, "", stop, err
		}
		if _, err := p.cli(ctx, "join", code); err != nil {
			return procs, "", stop, err
		}
	}
	// Lift the quotas (see unlimited) through the settings route of the
	// local API.
	if _, err := procs[0].api.do(ctx, http.MethodPut, "/api/v1/groups/"+gid+"/settings", unlimited, nil); err != nil {
		return procs, "", stop, fmt.Errorf("lift the quotas: %w", err)
	}
	return procs, gid, stop, nil
}

// failoverOnce kills the host (with cut, stops it instead), times the
// failover, restarts (resumes) it and waits for it to catch up. It returns
// the ids of the messages sent.
func failoverOnce(ctx context.Context, procs []*serveProc, gid string, host, k int, cut bool, r *FailoverResult) ([]string, error) {
	var survivors []*serveProc
	for i, p := range procs {
		if i != host {
			survivors = append(survivors, p)
		}
	}
	oldHost := procs[host].pub
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		wg      sync.WaitGroup
		newHost time.Duration
		hostErr error
	)
	start := time.Now()
	fault, tag := procs[host].kill, "failover"
	if cut {
		fault, tag = procs[host].pause, "cut"
	}
	if err := fault(); err != nil {
		return nil, err
	}
	if cut {
		// Whatever happens below, the process must not stay stopped.
		defer procs[host].resume()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		hostErr = testutil.Poll(fctx, 5*time.Millisecond, "a new host", func() bool {
			st, err := survivors[1].api.status(fctx)
			if err != nil {
				return false
			}
			for _, g := range st.Groups {
				if g.GroupID == gid && g.Host != "" && g.Host != oldHost {
					newHost = time.Since(start)
					return true
				}
			}
			return false
		})
	}()
	var ids []string
	var failover time.Duration
	for j := 0; failover == 0; j++ {
		m, code, err := survivors[0].api.send(fctx, gid, fmt.Sprintf("%s %d/%d", tag, k, j), 20*time.Millisecond)
		if err != nil {
			if fctx.Err() != nil {
				wg.Wait()
				return ids, fmt.Errorf("no commit within 30 s of the %s: %w", tag, err)
			}
			continue
		}
		ids = append(ids, m.ID)
		if code == http.StatusOK && m.State == node.StateCommitted {
			failover = time.Since(start)
		} else {
			r.Queued++
		}
	}
	wg.Wait()
	if hostErr != nil {
		return ids, hostErr
	}
	failovers, newHosts, drained := &r.Failover, &r.NewHost, &r.Drained
	if cut {
		failovers, newHosts, drained = &r.Cut, &r.CutNewHost, &r.CutDrained
	}
	*failovers = append(*failovers, failover)
	*newHosts = append(*newHosts, newHost)
	if err := testutil.Poll(fctx, 5*time.Millisecond, "the survivor's outbox to drain", func() bool {
		st, err := survivors[0].api.status(fctx)
		if err != nil {
			return false
		}
		for _, g := range st.Groups {
			if g.GroupID == gid {
				return g.Queued == 0
			}
		}
		return false
	}); err != nil {
		return ids, err
	}
	*drained = append(*drained, time.Since(start))

	restart := time.Now()
	back, after, rejoin := procs[host].start, "after the restart", &r.Rejoin
	if cut {
		back, after, rejoin = func(context.Context) error { return procs[host].resume() }, "after the links came back", &r.Healed
	}
	if err := back(ctx); err != nil {
		return ids, err
	}
	if _, err := waitStable(ctx, procs, gid); err != nil {
		return ids, fmt.Errorf("%s: %w", after, err)
	}
	*rejoin = append(*rejoin, time.Since(restart))
	return ids, nil
}

// waitStable waits until all nodes name the same host, count as many
// voters as the group can have (all of them, at most 5) and have applied the
// same index, and returns the host's index.
func waitStable(ctx context.Context, procs []*serveProc, gid string) (int, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	host := -1
	want := min(len(procs), state.DefaultMaxVoters)
	err := testutil.Poll(wctx, 10*time.Millisecond, fmt.Sprintf("%d voters agreeing on a host", want), func() bool {
		hostID, commit := "", uint64(0)
		for i, p := range procs {
			st, err := p.api.status(wctx)
			if err != nil {
				return false
			}
			var g *node.GroupStatus
			for k := range st.Groups {
				if st.Groups[k].GroupID == gid {
					g = &st.Groups[k]
				}
			}
			if g == nil || g.Host == "" || g.Queued > 0 {
				return false
			}
			voters := 0
			for _, m := range g.Members {
				if m.Voter {
					voters++
				}
			}
			if voters != want {
				return false
			}
			if i == 0 {
				hostID, commit = g.Host, g.Committed
			} else if g.Host != hostID || g.Committed != commit {
				return false
			}
		}
		host = -1
		for i, p := range procs {
			if p.pub == hostID {
				host = i
			}
		}
		return host >= 0
	})
	return host, err
}

// checkDelivered waits until every node lists every sent message as
// committed, and counts those missing or listed twice.
func checkDelivered(ctx context.Context, procs []*serveProc, gid string, sent []string) (lost, dup int, err error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	count := func() (int, int, error) {
		var seen []map[string]int
		for _, p := range procs {
			msgs, err := p.api.messages(wctx, gid)
			if err != nil {
				return 0, 0, err
			}
			s := map[string]int{}
			for _, m := range msgs {
				if m.State == node.StateCommitted {
					s[m.ID]++
				}
			}
			seen = append(seen, s)
		}
		lost, dup := 0, 0
		for _, id := range sent {
			missing, twice := false, false
			for _, s := range seen {
				missing = missing || s[id] == 0
				twice = twice || s[id] > 1
			}
			if missing {
				lost++
			}
			if twice {
				dup++
			}
		}
		return lost, dup, nil
	}
	for {
		lost, dup, err = count()
		if err == nil && lost == 0 {
			return 0, dup, nil
		}
		select {
		case <-wctx.Done():
			return lost, dup, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// progress is the line that tells how failover round k of n went: a kill,
// or with cut a cut link.
func (r *FailoverResult) progress(cut bool, k, n int) string {
	if cut {
		return fmt.Sprintf("bench: failover, cut link %d/%d: %.3f s (new host known after %.3f s, outbox drained after %.2f s, healed in %.2f s)",
			k+1, n, r.Cut[k].Seconds(), r.CutNewHost[k].Seconds(), r.CutDrained[k].Seconds(), r.Healed[k].Seconds())
	}
	return fmt.Sprintf("bench: failover %d/%d: %.3f s (new host known after %.3f s, outbox drained after %.2f s, rejoined in %.2f s)",
		k+1, n, r.Failover[k].Seconds(), r.NewHost[k].Seconds(), r.Drained[k].Seconds(), r.Rejoin[k].Seconds())
}
