package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// cluster is a nodetest.Cluster of in-process nodes that talk over real
// HTTP or libp2p on loopback, or over the simulated network, with what the benchmarks
// add: a host most nodes agree on, a settled group, delivery times.
type cluster struct {
	*nodetest.Cluster
}

// newCluster makes size nodes with fresh identities and stores under a new
// temporary directory, and starts them: on sim, or on transport t over
// loopback when sim is nil. base supplies the timing and intervals; Dir,
// Identity, Name, URL and Link are set per node.
func newCluster(size int, sim *simnet.Network, t Transport, base node.Config) (*cluster, error) {
	c, err := nodetest.New(nodetest.Options{
		Size: size, Net: sim, HTTP: sim == nil, P2P: sim == nil && t.p2p(), Relayed: t == P2PRelay, Config: base,
		Identity: func(int) (*identity.Identity, error) { return identity.Generate() },
	})
	if err != nil {
		return nil, err
	}
	if err := c.StartAll(); err != nil {
		c.Close()
		return nil, err
	}
	return &cluster{c}, nil
}

// form creates the group "bench" on node 0 and has the others join, batch
// at a time (see nodetest.FormOptions).
func (c *cluster) form(ctx context.Context, batch int, progress func(joined int)) error {
	return c.Form(ctx, nodetest.FormOptions{Name: "bench", Batch: batch, Progress: progress})
}

// agreedHost returns the index of the host that most live nodes name, or
// -1 when no host is named by a majority of them.
func (c *cluster) agreedHost() int {
	votes := map[string]int{}
	live := 0
	for i := range c.Members() {
		g, ok := c.Status(i)
		if !ok {
			continue
		}
		live++
		if g.Host != "" {
			votes[g.Host]++
		}
	}
	for h, v := range votes {
		if 2*v > live {
			return c.Index(h)
		}
	}
	return -1
}

// settled reports whether every live node knows all the members, the
// group's voters and one same host, and has applied within maxLag entries
// of the others.
func (c *cluster) settled(voters int, maxLag uint64) bool {
	host := ""
	lo, hi := ^uint64(0), uint64(0)
	for i := range c.Members() {
		g, ok := c.Status(i)
		if !ok {
			if c.Node(i) != nil {
				return false
			}
			continue
		}
		v := 0
		for _, m := range g.Members {
			if m.Voter {
				v++
			}
		}
		if v != voters || g.Host == "" || len(g.Members) != c.Size() {
			return false
		}
		if host == "" {
			host = g.Host
		} else if g.Host != host {
			return false
		}
		lo, hi = min(lo, g.Committed), max(hi, g.Committed)
	}
	return host != "" && hi-lo <= maxLag
}

// delivery records when each node delivered each committed message, from
// the nodes' event streams.
type delivery struct {
	mu    sync.Mutex
	at    map[string][]time.Time // message id -> one time per node that delivered it
	done  map[string]chan struct{}
	want  int
	stops []func()
	wg    sync.WaitGroup
}

// watch subscribes to every live node's events; a message counts as
// delivered everywhere once want nodes have committed it.
func (c *cluster) watch(want int) *delivery {
	d := &delivery{at: map[string][]time.Time{}, done: map[string]chan struct{}{}, want: want}
	for _, i := range c.Live() {
		ch, stop := c.Node(i).Subscribe()
		d.stops = append(d.stops, stop)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for ev := range ch {
				if ev.Kind != "message" || ev.Message == nil || ev.Message.State != node.StateCommitted {
					continue
				}
				d.mark(ev.Message.ID, time.Now())
			}
		}()
	}
	return d
}

func (d *delivery) chanFor(id string) chan struct{} {
	ch := d.done[id]
	if ch == nil {
		ch = make(chan struct{})
		d.done[id] = ch
	}
	return ch
}

func (d *delivery) mark(id string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at[id] = append(d.at[id], t)
	if len(d.at[id]) == d.want {
		close(d.chanFor(id))
	}
}

// wait returns when message id has been delivered everywhere, and the time
// the last node delivered it.
func (d *delivery) wait(ctx context.Context, id string) (time.Time, error) {
	d.mu.Lock()
	ch := d.chanFor(id)
	d.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		d.mu.Lock()
		got := len(d.at[id])
		d.mu.Unlock()
		return time.Time{}, fmt.Errorf("message delivered on %d of %d nodes: %w", got, d.want, ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var last time.Time
	for _, t := range d.at[id] {
		if t.After(last) {
			last = t
		}
	}
	return last, nil
}

// count returns how many (message, node) deliveries were seen.
func (d *delivery) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ts := range d.at {
		n += len(ts)
	}
	return n
}

func (d *delivery) stop() {
	for _, s := range d.stops {
		s()
	}
	d.wg.Wait()
}

// nodeLogger returns the logger of benchmark nodes: warnings and errors to
// w, or nothing when w is nil.
func nodeLogger(w io.Writer) zerolog.Logger {
	if w == nil {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}
