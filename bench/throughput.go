package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demes/demes/node"
)

// ThroughputProcesses is [Throughput] as users run a group: o.Nodes
// `demes serve` processes of o.Binary on loopback (one node each, as on
// separate machines, but here on this machine's cores), a group formed
// through the command line, and o.Senders clients sending through the
// nodes' local API (POST /api/v1/groups/ID/messages with a timeout, so
// that each send returns once committed), spread over the nodes. The CPU
// figure is the nodes' processes' CPU time, from /proc.
func ThroughputProcesses(ctx context.Context, o ThroughputOptions) (ThroughputResult, error) {
	if o.Binary == "" {
		return ThroughputResult{}, errors.New("throughput: no demes binary given")
	}
	if o.Nodes <= 0 {
		o.Nodes = 5
	}
	if o.Senders <= 0 {
		o.Senders = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	r := ThroughputResult{Nodes: o.Nodes, Senders: o.Senders, Processes: true}
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "throughput", o.Nodes)
	defer stop()
	if err != nil {
		return r, err
	}
	if _, err := waitStable(ctx, procs, gid); err != nil {
		return r, err
	}
	cpu := func() time.Duration {
		var t time.Duration
		for _, p := range procs {
			t += procCPU(p.cmd.Process.Pid)
		}
		return t
	}
	var (
		committed, queued atomic.Int64
		mu                sync.Mutex
		wg                sync.WaitGroup
		firstErr          error
	)
	cpu0 := cpu()
	start := time.Now()
	deadline := start.Add(o.Duration)
	for s := 0; s < o.Senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api := procs[s%o.Nodes].api
			var lat Samples
			defer func() {
				mu.Lock()
				r.Latency = append(r.Latency, lat...)
				mu.Unlock()
			}()
			for k := 0; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
				t := time.Now()
				m, code, err := api.send(ctx, gid, fmt.Sprintf("load %d/%d", s, k), 5*time.Second)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if code == http.StatusOK && m.State == node.StateCommitted {
					committed.Add(1)
					lat = append(lat, time.Since(t))
				} else {
					queued.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.CPU = cpu() - cpu0
	r.Committed, r.Queued = int(committed.Load()), int(queued.Load())
	if firstErr != nil {
		return r, firstErr
	}
	return r, ctx.Err()
}
