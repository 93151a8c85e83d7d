// Package nodetest is the one harness for running several real nodes in a
// process: a [Cluster] of [node.Node]s on a [simnet.Network] (or on real
// HTTP or libp2p over loopback), with the moves tests make — start, crash, restart,
// isolate, form a group, find the host, send, read the committed messages —
// and a wait that wakes on the nodes' events ([Cluster.Until],
// [Cluster.Eventually]). Plain waits and the locked log buffer are in
// internal/testutil, which web/ can use without importing node/.
//
// The simulated network stays a package of its own (node/simnet): the
// benchmarks set latency matrices and faults on it directly, and
// [Cluster.Net] hands it to tests that do.
//
// It uses only package node's exported API, so node's own tests (package
// node_test), the chaos runner and demes bench share it. Methods return
// errors rather than fail a test, for the runner and the benchmarks; a test
// wraps the ones it uses with t.Fatal.
//
// A test:
//
//	c, err := nodetest.New(nodetest.Options{Size: 3, Seed: 1, Dir: t.TempDir(),
//		Link: simnet.LinkConfig{Latency: time.Millisecond}})
//	...
//	t.Cleanup(c.Close)
//	if err := c.StartAll(); err != nil { t.Fatal(err) }
//	if err := c.Form(ctx, nodetest.FormOptions{}); err != nil { t.Fatal(err) }
//	m, err := c.Send(ctx, 1, "hello", 10*time.Second)
//	c.Eventually(t, 30*time.Second, "3 voters", c.HasVoters(3))
package nodetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/p2p"
)

// Options configures a [Cluster].
type Options struct {
	// Size is the number of nodes.
	Size int
	// Seed derives the nodes' identities (unless Identity is set) and the
	// faults of the simulated network.
	Seed int64
	// Link is every link of the simulated network not set otherwise.
	Link simnet.LinkConfig
	// Net, when set, is the simulated network to use instead of a new one
	// made from Seed and Link.
	Net *simnet.Network
	// HTTP runs the nodes on real HTTP over loopback instead of the
	// simulated network.
	HTTP bool
	// P2P runs the nodes on libp2p hosts on loopback instead (see
	// [Member.Host]): each member's host lives as long as the cluster, so
	// its URL survives restarts, and answers 503 while the node is down.
	P2P bool
	// Relayed, with P2P, starts a circuit relay on loopback on which every
	// member holds a slot, and has each member advertise only its circuit
	// address, so that frames go through the relay (unless libp2p's hole
	// punching opens a direct connection; [Cluster.Paths] tells).
	Relayed bool
	// Handler, when set, wraps member i's peer handler on HTTP, for tests
	// that watch or alter the traffic a node receives.
	Handler func(i int, h http.Handler) http.Handler
	// Dir holds one store directory per node. Default: a temporary
	// directory, removed by Close.
	Dir string
	// Identity returns node i's identity. Default: derived from Seed and i.
	Identity func(i int) (*identity.Identity, error)
	// Config is every node's configuration: timing, intervals, logger.
	// Dir, Identity, Name, URL and Link are set per node, and the logger
	// gets the node's name.
	Config node.Config
}

// Member is one node of a cluster, running or not.
type Member struct {
	// Index is the member's position in the cluster, ID its identity,
	// Name "node<Index>", Dir its store directory.
	Index int
	ID    *identity.Identity
	Name  string
	Dir   string
	// URL is where the others reach it; a test may change it while the
	// node is down, to restart it elsewhere ([Cluster.Move] changes it
	// while the node runs).
	URL string
	// Tweak, when set, adjusts the node's configuration at each start.
	Tweak func(*node.Config)

	n    *node.Node // nil while down; guarded by Cluster.mu
	ln   net.Listener
	srv  *http.Server
	link *node.HTTPLink
	sim  *movingEndpoint // the link on the simulated network
	host *p2p.Host       // with Options.P2P
}

// movingEndpoint is a node's link on the simulated network, which
// [Cluster.Move] switches to the node's new address while it runs: a node
// whose network changed sends from its new address too.
type movingEndpoint struct {
	ep atomic.Pointer[simnet.Endpoint]
}

// Post implements node.Link.
func (e *movingEndpoint) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	return e.ep.Load().Post(ctx, url, frame)
}

// Cluster is a set of nodes and the network between them. Its methods are
// safe for concurrent use, except that members' fields are set before the
// nodes start.
type Cluster struct {
	o       Options
	net     *simnet.Network
	dir     string
	ownDir  bool
	members []*Member
	relay   *p2p.Host // with Options.Relayed
	// GroupID is the group the cluster formed (or the one a test set).
	GroupID string

	mu sync.Mutex
}

// New makes the members of a cluster, with their identities and store
// directories, without starting them (see [Cluster.StartAll]), so that a
// test can set up links and tweaks first.
func New(o Options) (*Cluster, error) {
	c := &Cluster{o: o, dir: o.Dir, net: o.Net}
	o.HTTP = o.HTTP || o.P2P // an HTTP link beside the libp2p one
	if !o.HTTP && c.net == nil {
		c.net = simnet.New(o.Seed, o.Link)
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "demes-nodetest-")
		if err != nil {
			return nil, fmt.Errorf("make the cluster's directory: %w", err)
		}
		c.dir, c.ownDir = d, true
	}
	if o.P2P && o.Relayed {
		if err := c.startRelay(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := 0; i < o.Size; i++ {
		id, err := c.identity(i)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("identity of node%d: %w", i, err)
		}
		m := &Member{Index: i, ID: id, Name: fmt.Sprintf("node%d", i), Dir: filepath.Join(c.dir, fmt.Sprintf("node%d", i))}
		if err := os.MkdirAll(m.Dir, 0o700); err != nil {
			c.Close()
			return nil, fmt.Errorf("store directory of %s: %w", m.Name, err)
		}
		c.members = append(c.members, m)
		if o.P2P {
			if err := c.startHost(m); err != nil {
				c.Close()
				return nil, err
			}
		} else if o.HTTP {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("listen for %s: %w", m.Name, err)
			}
			m.ln, m.URL = ln, "http://"+ln.Addr().String()
		} else {
			m.URL = "sim://" + m.Name
		}
	}
	return c, nil
}

func (c *Cluster) identity(i int) (*identity.Identity, error) {
	if c.o.Identity != nil {
		return c.o.Identity(i)
	}
	s := bytes.Repeat([]byte{byte(i + 1)}, 32)
	s[0] = byte(c.o.Seed)
	return identity.FromSeed(s)
}

// StartAll starts every member.
func (c *Cluster) StartAll() error {
	for i := range c.members {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	return nil
}

// Net returns the simulated network (nil on HTTP).
func (c *Cluster) Net() *simnet.Network { return c.net }

// Size returns the number of members.
func (c *Cluster) Size() int { return len(c.members) }

// Member returns member i.
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Members returns every member, in order.
func (c *Cluster) Members() []*Member { return c.members }

// Node returns member i's running node, or nil while it is down.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].n
}

// URLs returns the URLs of the given members.
func (c *Cluster) URLs(idx ...int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = c.members[i].URL
	}
	return out
}

// Index returns the member whose public ID is publicID, or -1.
func (c *Cluster) Index(publicID string) int {
	for i, m := range c.members {
		if m.ID.Public().String() == publicID {
			return i
		}
	}
	return -1
}

// Start opens member i from its store (a restart, if it ran before) and
// connects it to the network.
func (c *Cluster) Start(i int) error {
	m := c.members[i]
	cfg := c.o.Config
	cfg.Dir, cfg.Identity, cfg.Name, cfg.URL = m.Dir, m.ID, m.Name, m.URL
	cfg.Logger = cfg.Logger.With().Str("node", m.Name).Logger()
	switch {
	case c.net != nil:
		m.sim = &movingEndpoint{}
		m.sim.ep.Store(c.net.Endpoint(m.URL))
		cfg.Link = m.sim
	case m.host != nil:
		cfg.Link, cfg.Path = p2pLink(m), m.host.Path
		if cfg.Relays == nil {
			// As in demes serve: a slot on each relay of the groups'
			// settings.
			cfg.Relays = m.host.UseGroupRelays
		}
	default:
		m.link = node.NewHTTPLink()
		cfg.Link = m.link
	}
	if m.Tweak != nil {
		m.Tweak(&cfg)
	}
	n, err := node.Open(cfg)
	if err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	if c.net != nil || m.host != nil {
		c.mu.Lock()
		m.n = n
		c.mu.Unlock()
		if c.net != nil {
			c.net.Register(m.URL, n.HandleFrame)
		}
		return nil
	}
	if m.ln == nil {
		ln, err := net.Listen("tcp", strings.TrimPrefix(m.URL, "http://"))
		if err != nil {
			n.Close()
			return fmt.Errorf("start %s: %w", m.Name, err)
		}
		m.ln = ln
	}
	h := n.PeerHandler()
	if c.o.Handler != nil {
		h = c.o.Handler(i, h)
	}
	m.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(m.ln)
	c.mu.Lock()
	m.n = n
	c.mu.Unlock()
	return nil
}

// Link returns the HTTP link member i last started with (nil on the
// simulated network), for tests that post frames of their own through it.
func (m *Member) Link() *node.HTTPLink { return m.link }

// take marks member i down and returns the node it ran, or nil.
func (c *Cluster) take(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.members[i].n
	c.members[i].n = nil
	return n
}

// Crash stops member i as a crash looks to the others: it leaves the
// network first, so it sends nothing more, then stops without writing
// anything; its store keeps what it had written.
func (c *Cluster) Crash(i int) {
	n := c.take(i)
	if n == nil {
		return
	}
	c.disconnect(c.members[i])
	n.Crash()
	if l := c.members[i].link; l != nil {
		l.CloseIdle()
	}
}

// Restart crashes member i if it runs, and starts it again from its
// store.
func (c *Cluster) Restart(i int) error {
	c.Crash(i)
	return c.Start(i)
}

// Move moves running member i to url on the simulated network, as a
// network change under a running node looks: from now on the node answers
// at url and sends from there, its old address is down, and the node is
// told its new URL ([node.Node.SetURL]), which it must announce for the
// others to reach it again. The member keeps url across restarts. Move must
// not run concurrently with methods that read the members' URLs.
func (c *Cluster) Move(i int, url string) error {
	m := c.members[i]
	if c.net == nil {
		return fmt.Errorf("move %s: only on the simulated network", m.Name)
	}
	n := c.Node(i)
	if n == nil {
		return fmt.Errorf("move %s: it is down", m.Name)
	}
	old := m.URL
	c.net.Register(url, n.HandleFrame)
	m.sim.ep.Store(c.net.Endpoint(url))
	m.URL = url
	c.net.Crash(old)
	n.SetURL(url)
	return nil
}

// Stop closes member i cleanly, then takes it off the network.
func (c *Cluster) Stop(i int) {
	n := c.take(i)
	if n == nil {
		return
	}
	n.Close()
	c.disconnect(c.members[i])
	if l := c.members[i].link; l != nil {
		l.CloseIdle()
	}
}

func (c *Cluster) disconnect(m *Member) {
	if c.net != nil {
		c.net.Crash(m.URL)
		return
	}
	if m.host != nil {
		return // the host stays, and answers 503 while the node is down
	}
	m.srv.Close()
	m.ln = nil
}

// Close stops every member at once, waits for the network's deliveries in
// flight, and removes the stores if New made their directory.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i, m := range c.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Crash(i)
			if m.ln != nil {
				m.ln.Close()
			}
		}()
	}
	wg.Wait()
	for _, m := range c.members {
		if m.host != nil {
			m.host.Close()
		}
	}
	if c.relay != nil {
		c.relay.Close()
	}
	if c.net != nil {
		c.net.Wait()
	}
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

// Live returns the members running, in order.
func (c *Cluster) Live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m.n != nil {
			out = append(out, i)
		}
	}
	return out
}

// Down returns the members not running, in order.
func (c *Cluster) Down() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m.n == nil {
			out = append(out, i)
		}
	}
	return out
}

// Isolate cuts member i off from every other member, both ways.
func (c *Cluster) Isolate(i int) {
	var others []string
	for j, m := range c.members {
		if j != i {
			others = append(others, m.URL)
		}
	}
	c.net.Partition([]string{c.members[i].URL}, others)
}

// FormOptions says how [Cluster.Form] forms the group.
type FormOptions struct {
	// Name is the group's name (default "test").
	Name string
	// Batch is how many members join at once (default 1: one after the
	// other, each invited just before it joins). Joins are membership
	// changes, which raft takes one at a time: a moderate batch keeps the
	// host busy without most of them dropped and retried.
	Batch int
	// Progress, when set, is told how many members have joined.
	Progress func(joined int)
}

// Form creates a group on member 0 and has every other member join it
// through an invite.
func (c *Cluster) Form(ctx context.Context, o FormOptions) error {
	if o.Name == "" {
		o.Name = "test"
	}
	first := c.Node(0)
	if first == nil {
		return fmt.Errorf("form: node0 is down")
	}
	g, err := first.CreateGroup(ctx, o.Name)
	if err != nil {
		return fmt.Errorf("create the group: %w", err)
	}
	c.GroupID = g.GroupID
	rest := c.members[1:]
	join := func(k int, code string) error {
		n := c.Node(rest[k].Index)
		if n == nil {
			return fmt.Errorf("join %s: it is down", rest[k].Name)
		}
		if _, err := n.Join(ctx, code); err != nil {
			return fmt.Errorf("join %s: %w", rest[k].Name, err)
		}
		return nil
	}
	if o.Batch <= 1 {
		for k, m := range rest {
			code, err := c.invite(ctx, first, m.ID.Public().String())
			if err != nil {
				return fmt.Errorf("invite %s: %w", m.Name, err)
			}
			if err := join(k, code); err != nil {
				return err
			}
			if o.Progress != nil {
				o.Progress(k + 1)
			}
		}
		return nil
	}
	// Invites are ordinary log entries and commit together.
	codes := make([]string, len(rest))
	if err := Parallel(len(rest), 16, func(k int) error {
		code, err := c.invite(ctx, first, rest[k].ID.Public().String())
		codes[k] = code
		if err != nil {
			return fmt.Errorf("invite %s: %w", rest[k].Name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	var joined atomic.Int64
	return Parallel(len(rest), o.Batch, func(k int) error {
		if err := join(k, codes[k]); err != nil {
			return err
		}
		if j := joined.Add(1); o.Progress != nil {
			o.Progress(int(j))
		}
		return nil
	})
}

// invite has inviter invite the member with public id id into the group
// and returns the code, asking again, as the answer tells a person to,
// while the invite is queued ([node.ErrQueued]) until it commits. A group
// that is forming cannot always commit: on a loaded machine a new voter
// once took 1.5 s to apply its join, the host stepped down for want of a
// quorum, and the next invite was queued (TestDeposedHostNotHandedBack
// failed in Form).
func (c *Cluster) invite(ctx context.Context, inviter *node.Node, id string) (string, error) {
	var code string
	var err error
	waitErr := c.Until(ctx, "the queued invite to commit", func() bool {
		code, err = inviter.Invite(ctx, c.GroupID, id)
		return !errors.Is(err, node.ErrQueued)
	})
	switch {
	case waitErr == nil:
		return code, err
	case err == nil:
		return "", waitErr
	default:
		return "", fmt.Errorf("%w (%v)", err, waitErr)
	}
}

// Parallel runs fn(0..n-1) with at most width running at once and returns
// the first error.
func Parallel(n, width int, fn func(int) error) error {
	sem := make(chan struct{}, max(width, 1))
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
