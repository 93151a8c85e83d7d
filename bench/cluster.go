package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// cluster is a set of in-process nodes that talk over real HTTP on loopback
// (net == nil) or over the simulated network.
type cluster struct {
	dir     string
	net     *simnet.Network
	base    node.Config
	members []*member
	gid     string
}

type member struct {
	i    int
	id   *identity.Identity
	name string
	dir  string
	url  string
	n    *node.Node // nil while crashed
	ln   net.Listener
	srv  *http.Server
	link *node.HTTPLink
}

// newCluster makes size nodes with fresh identities and stores under a new
// temporary directory, and starts them. base supplies the timing and
// intervals; Dir, Identity, Name, URL and Link are set here.
func newCluster(size int, sim *simnet.Network, base node.Config) (*cluster, error) {
	dir, err := os.MkdirTemp("", "demes-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, net: sim, base: base}
	for i := 0; i < size; i++ {
		id, err := identity.Generate()
		if err != nil {
			c.close()
			return nil, err
		}
		m := &member{i: i, id: id, name: fmt.Sprintf("node%d", i), dir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			c.close()
			return nil, err
		}
		if sim != nil {
			m.url = fmt.Sprintf("sim://node%d", i)
		} else {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				c.close()
				return nil, err
			}
			m.ln = ln
			m.url = "http://" + ln.Addr().String()
		}
		c.members = append(c.members, m)
	}
	for i := range c.members {
		if err := c.start(i); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// start opens node i from its store and connects it to the network.
func (c *cluster) start(i int) error {
	m := c.members[i]
	cfg := c.base
	cfg.Dir, cfg.Identity, cfg.Name, cfg.URL = m.dir, m.id, m.name, m.url
	if c.net != nil {
		cfg.Link = c.net.Endpoint(m.url)
	} else {
		m.link = node.NewHTTPLink()
		cfg.Link = m.link
	}
	n, err := node.Open(cfg)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	m.n = n
	if c.net != nil {
		c.net.Register(m.url, n.HandleFrame)
		return nil
	}
	if m.ln == nil {
		addr := m.url[len("http://"):]
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			n.Close()
			m.n = nil
			return fmt.Errorf("start %s: %w", m.name, err)
		}
		m.ln = ln
	}
	m.srv = &http.Server{Handler: n.PeerHandler(), ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(m.ln)
	return nil
}

// crash stops node i abruptly: it leaves the network first, so that it
// sends nothing more, and its store stays as it was.
func (c *cluster) crash(i int) {
	m := c.members[i]
	if m.n == nil {
		return
	}
	if c.net != nil {
		c.net.Crash(m.url)
	} else {
		m.srv.Close()
		m.ln = nil
	}
	m.n.Crash()
	if m.link != nil {
		m.link.CloseIdle()
	}
	m.n = nil
}

// close stops every node and removes the stores.
func (c *cluster) close() {
	var wg sync.WaitGroup
	for i := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.crash(i)
			if m := c.members[i]; m.ln != nil {
				m.ln.Close()
			}
		}()
	}
	wg.Wait()
	if c.net != nil {
		c.net.Wait()
	}
	os.RemoveAll(c.dir)
}

// form creates a group on node 0, invites everyone else, and has them join
// concurrently, batch at a time. Invites are ordinary log entries and commit
// together; joins are membership changes, which raft takes one at a time, so
// a moderate batch keeps the leader busy without most proposals being
// dropped and retried.
func (c *cluster) form(ctx context.Context, batch int, progress func(joined int)) error {
	first := c.members[0].n
	g, err := first.CreateGroup(ctx, "bench")
	if err != nil {
		return err
	}
	c.gid = g.GroupID
	rest := c.members[1:]
	codes := make([]string, len(rest))
	if err := parallel(len(rest), 16, func(k int) error {
		code, err := first.Invite(ctx, c.gid, rest[k].id.Public().String())
		codes[k] = code
		return err
	}); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	var joined atomic.Int64
	return parallel(len(rest), max(batch, 1), func(k int) error {
		if _, err := rest[k].n.Join(ctx, codes[k]); err != nil {
			return fmt.Errorf("join %s: %w", rest[k].name, err)
		}
		if j := joined.Add(1); progress != nil {
			progress(int(j))
		}
		return nil
	})
}

// parallel runs fn(0..n-1) with at most width running at once and returns
// the first error.
func parallel(n, width int, fn func(int) error) error {
	sem := make(chan struct{}, width)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for k := 0; k < n; k++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(k); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// status returns node i's view of the group.
func (c *cluster) status(i int) (node.GroupStatus, bool) {
	m := c.members[i]
	if m.n == nil {
		return node.GroupStatus{}, false
	}
	for _, g := range m.n.Status().Groups {
		if g.GroupID == c.gid {
			return g, true
		}
	}
	return node.GroupStatus{}, false
}

// host returns the index of the live node that leads, or -1.
func (c *cluster) host() int {
	for i := range c.members {
		if g, ok := c.status(i); ok && g.Role == "leader" {
			return i
		}
	}
	return -1
}

// agreedHost returns the index of the host that most live nodes name, or
// -1 when no host is named by a majority of them.
func (c *cluster) agreedHost() int {
	votes := map[string]int{}
	live := 0
	for i := range c.members {
		g, ok := c.status(i)
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
			return c.index(h)
		}
	}
	return -1
}

func (c *cluster) index(publicID string) int {
	for i, m := range c.members {
		if m.id.Public().String() == publicID {
			return i
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
	for i := range c.members {
		g, ok := c.status(i)
		if !ok {
			if c.members[i].n != nil {
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
		if v != voters || g.Host == "" || len(g.Members) != len(c.members) {
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

// waitUntil polls cond every step until it holds or ctx ends.
func waitUntil(ctx context.Context, step time.Duration, what string, cond func() bool) error {
	t := time.NewTicker(step)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return nil
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
	for _, m := range c.members {
		if m.n == nil {
			continue
		}
		ch, stop := m.n.Subscribe()
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
