package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/demes/demes/node"
)

// ThroughputProcesses is [Throughput] as users run a group: o.Nodes
// `demes serve` processes of o.Binary on loopback over o.Transport (one node each, as on
// separate machines, but here on this machine's cores), a group formed
// through the command line, and o.Senders clients sending through the
// nodes' local API (POST /api/v1/groups/ID/messages with a timeout, so
// that each send returns once committed), spread over the nodes. The CPU
// figure is the nodes' processes' CPU time, from /proc.
func ThroughputProcesses(ctx context.Context, o ThroughputOptions) (ThroughputResult, error) {
	if o.Binary == "" {
		return ThroughputResult{}, errors.New("throughput: no demes binary given")
	}
	o = o.withDefaults()
	r := ThroughputResult{Nodes: o.Nodes, Senders: o.Senders, Processes: true, Transport: o.Transport}
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "throughput", o.Nodes, o.Transport)
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
	cpu0 := cpu()
	err = r.load(ctx, o, func(s, k int) (bool, error) {
		m, code, err := procs[s%o.Nodes].api.send(ctx, gid, fmt.Sprintf("load %d/%d", s, k), 5*time.Second)
		return err == nil && code == http.StatusOK && m.State == node.StateCommitted, err
	})
	r.CPU = cpu() - cpu0
	if err == nil && o.Transport.p2p() {
		r.Paths, err = procPaths(ctx, procs, gid)
	}
	return r, err
}
