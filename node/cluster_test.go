package node_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// cluster is a set of nodes on a simulated network, for scenario tests.
type cluster struct {
	t     testing.TB
	net   *simnet.Network
	nodes []*tnode
	gid   string
}

type tnode struct {
	i     int
	id    *identity.Identity
	dir   string
	url   string
	name  string
	n     *node.Node // nil while crashed
	tweak func(*node.Config)
}

func newCluster(t testing.TB, size int, seed int64, link simnet.LinkConfig) *cluster {
	return newClusterWith(t, size, seed, link, nil)
}

// newClusterWith is newCluster with a hook to adjust each node's config and
// the network before the nodes start.
func newClusterWith(t testing.TB, size int, seed int64, link simnet.LinkConfig, tune func(*cluster)) *cluster {
	c := &cluster{t: t, net: simnet.New(seed, link)}
	for i := 0; i < size; i++ {
		s := bytes.Repeat([]byte{byte(i + 1)}, 32)
		s[0] = byte(seed)
		id, err := identity.FromSeed(s)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &tnode{i: i, id: id, dir: t.TempDir(), url: fmt.Sprintf("sim://node%d", i), name: fmt.Sprintf("node%d", i)})
	}
	if tune != nil {
		tune(c)
	}
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.crash(i)
		}
		c.net.Wait()
	})
	return c
}

func init() {
	if os.Getenv("DEMES_TEST_LOG") != "" {
		// Placement runs on 100 ms intervals in tests: a log is only
		// readable with milliseconds.
		zerolog.TimeFieldFormat = time.RFC3339Nano
	}
}

func testLogger() zerolog.Logger {
	if os.Getenv("DEMES_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: "15:04:05.000"}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

func (c *cluster) start(i int) {
	tn := c.nodes[i]
	cfg := node.Config{
		Dir: tn.dir, Identity: tn.id, Name: tn.name, URL: tn.url,
		Link: c.net.Endpoint(tn.url), Logger: testLogger().With().Str("node", tn.name).Logger(),
		RetryInterval: 200 * time.Millisecond,
	}
	if tn.tweak != nil {
		tn.tweak(&cfg)
	}
	n, err := node.Open(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", tn.name, err)
	}
	tn.n = n
	c.net.Register(tn.url, n.HandleFrame)
}

// isolate cuts node i off from every other node of the cluster.
func (c *cluster) isolate(i int) {
	var others []string
	for j, tn := range c.nodes {
		if j != i {
			others = append(others, tn.url)
		}
	}
	c.net.Partition([]string{c.nodes[i].url}, others)
}

// crash stops a node abruptly: it vanishes from the network first, so it
// sends nothing more, and its store stays as it was.
func (c *cluster) crash(i int) {
	tn := c.nodes[i]
	if tn.n == nil {
		return
	}
	c.net.Crash(tn.url)
	tn.n.Crash()
	tn.n = nil
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// form creates a group on node 0 and has every other node join it.
func (c *cluster) form() string {
	c.t.Helper()
	ctx := ctxT(c.t, 60*time.Second)
	gi, err := c.nodes[0].n.CreateGroup(ctx, "test")
	if err != nil {
		c.t.Fatal(err)
	}
	c.gid = gi.GroupID
	for _, tn := range c.nodes[1:] {
		code, err := c.nodes[0].n.Invite(ctx, c.gid, tn.id.Public().String())
		if err != nil {
			c.t.Fatalf("invite %s: %v", tn.name, err)
		}
		if _, err := tn.n.Join(ctx, code); err != nil {
			c.t.Fatalf("join %s: %v", tn.name, err)
		}
	}
	return c.gid
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cluster) host() int {
	for i, tn := range c.nodes {
		if tn.n == nil {
			continue
		}
		st := tn.n.Status()
		for _, g := range st.Groups {
			if g.GroupID == c.gid && g.Role == "leader" {
				return i
			}
		}
	}
	return -1
}

func (c *cluster) committed(i int) []node.Message {
	msgs, err := c.nodes[i].n.Messages(c.gid)
	if err != nil {
		c.t.Fatalf("messages on %s: %v", c.nodes[i].name, err)
	}
	var out []node.Message
	for _, m := range msgs {
		if m.State == node.StateCommitted {
			out = append(out, m)
		}
	}
	return out
}

func texts(ms []node.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d:%s|", m.Index, m.Text)
	}
	return b.String()
}

// converged waits until every live node lists the same committed messages,
// at least want of them, and returns them.
func (c *cluster) converged(want int) []node.Message {
	c.t.Helper()
	var ref []node.Message
	eventually(c.t, 30*time.Second, fmt.Sprintf("%d messages in the same order on every live node", want), func() bool {
		ref = nil
		for i, tn := range c.nodes {
			if tn.n == nil {
				continue
			}
			ms := c.committed(i)
			if ref == nil {
				ref = ms
				continue
			}
			if texts(ms) != texts(ref) {
				return false
			}
		}
		return len(ref) >= want
	})
	return ref
}

func (c *cluster) send(i int, text string, wait time.Duration) node.Message {
	c.t.Helper()
	m, err := c.nodes[i].n.Send(ctxT(c.t, wait+10*time.Second), c.gid, text, wait)
	if err != nil {
		c.t.Fatalf("send from %s: %v", c.nodes[i].name, err)
	}
	return m
}

func TestGroupChat(t *testing.T) {
	c := newCluster(t, 3, 1, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	for i := range c.nodes {
		m := c.send(i, fmt.Sprintf("hello from %d", i), 10*time.Second)
		if m.State != node.StateCommitted {
			t.Fatalf("message from node%d not committed: %+v", i, m)
		}
	}
	ms := c.converged(3)
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.Text] = true
	}
	for i := range c.nodes {
		if !seen[fmt.Sprintf("hello from %d", i)] {
			t.Fatalf("message from node%d missing: %s", i, texts(ms))
		}
	}
	st := c.nodes[0].n.Status()
	if len(st.Groups) != 1 || len(st.Groups[0].Members) != 3 {
		t.Fatalf("status: %+v", st)
	}
}
