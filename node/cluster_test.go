package node_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// cluster is a nodetest.Cluster bound to a test: the moves scenario tests
// make fail the test instead of returning errors.
type cluster struct {
	*nodetest.Cluster
	t   testing.TB
	net *simnet.Network
}

func newCluster(t testing.TB, size int, seed int64, link simnet.LinkConfig) *cluster {
	return newClusterWith(t, size, seed, link, nil)
}

// newClusterWith is newCluster with a hook to adjust each node's config and
// the network before the nodes start.
func newClusterWith(t testing.TB, size int, seed int64, link simnet.LinkConfig, tune func(*cluster)) *cluster {
	return newClusterOf(t, nodetest.Options{Size: size, Seed: seed, Link: link}, tune)
}

// newClusterOf is newClusterWith for any options (real HTTP, wrapped peer
// handlers): it fills in o's Dir and Config (the test's logger, a retry
// every 200 ms).
func newClusterOf(t testing.TB, o nodetest.Options, tune func(*cluster)) *cluster {
	o.Dir = t.TempDir()
	o.Config = node.Config{Logger: testLogger(t), RetryInterval: 200 * time.Millisecond}
	nc, err := nodetest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	t.Cleanup(func() { logAlerts(t, nc) })
	c := &cluster{Cluster: nc, t: t, net: nc.Net()}
	if tune != nil {
		tune(c)
	}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// testLogger is the node logger for t: in memory and printed if t fails
// (testutil.Logger), or silent in a benchmark unless DEMES_TEST_LOG asks.
func testLogger(t testing.TB) zerolog.Logger {
	if _, bench := t.(*testing.B); bench && os.Getenv("DEMES_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return testutil.Logger(t)
}

// start starts (or restarts) node i.
func (c *cluster) start(i int) {
	c.t.Helper()
	if err := c.Start(i); err != nil {
		c.t.Fatal(err)
	}
}

// restart crashes node i and starts it again from its store.
func (c *cluster) restart(i int) {
	c.t.Helper()
	if err := c.Restart(i); err != nil {
		c.t.Fatal(err)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// form creates a group on node 0 and has every other node join it.
func (c *cluster) form() string {
	c.t.Helper()
	if err := c.Form(ctxT(c.t, 60*time.Second), nodetest.FormOptions{}); err != nil {
		c.t.Fatal(err)
	}
	return c.GroupID
}

// formOf creates a group named name on node 0, has nodes 1 to k-1 join
// it one after the other (the others stay out: newcomers the test invites
// later), and waits until each of the k sees k voters.
func (c *cluster) formOf(name string, k int) {
	c.t.Helper()
	ctx := ctxT(c.t, 2*time.Minute)
	g, err := c.Node(0).CreateGroup(ctx, name)
	if err != nil {
		c.t.Fatal(err)
	}
	c.GroupID = g.GroupID
	for i := 1; i < k; i++ {
		code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(i).ID.Public().String())
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := c.Node(i).Join(ctx, code); err != nil {
			c.t.Fatal(err)
		}
	}
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("%d voters on the %d members", k, k), func() bool {
		for i := range k {
			if c.Voters(i) != k {
				return false
			}
		}
		return true
	})
}

func (c *cluster) committed(i int) []node.Message {
	c.t.Helper()
	ms, err := c.Committed(i)
	if err != nil {
		c.t.Fatal(err)
	}
	return ms
}

// converged waits until every live node lists the same committed messages,
// at least want of them, and returns them.
func (c *cluster) converged(want int) []node.Message {
	c.t.Helper()
	return c.convergedWithin(want, 30*time.Second)
}

// convergedWithin is converged with a bound of its own, for a test that
// moves more than a few messages.
func (c *cluster) convergedWithin(want int, d time.Duration) []node.Message {
	c.t.Helper()
	var ref []node.Message
	c.Eventually(c.t, d, fmt.Sprintf("%d messages in the same order on every live node", want), func() bool {
		var ok bool
		ref, ok = c.Converged(want)
		return ok
	})
	return ref
}

// send sends text from node i, which waits up to wait for it to commit
// (0: it answers once the message is queued and on disk), and returns the
// node's answer. The context only bounds how long the test waits for that
// answer: a minute past the wait, because the answer needs the group's
// goroutine and a write to disk, which on a loaded machine, among other
// clusters moving 64 KiB messages under -race, took over 10 s.
func (c *cluster) send(i int, text string, wait time.Duration) node.Message {
	c.t.Helper()
	m, err := c.Send(ctxT(c.t, wait+time.Minute), i, text, wait)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// sendCommitted sends text from node i and waits until node i lists it as
// committed, within a minute. A send answers early, with the message
// queued and handed to the members, when the group has no host and too few
// voters answered its pings lately to elect one (tentative.go, stuck): on
// a loaded machine, where elections and pings run late, a group of live
// members can be there for a moment. The message must still commit once
// the group has a host again; the test fails if it does not.
func (c *cluster) sendCommitted(i int, text string, wait time.Duration) node.Message {
	c.t.Helper()
	m := c.send(i, text, wait)
	if m.State == node.StateCommitted {
		return m
	}
	c.Eventually(c.t, time.Minute, fmt.Sprintf("%q, answered %s by the send, to commit on node%d", text, m.State, i), func() bool {
		for _, x := range c.committed(i) {
			if x.ID == m.ID {
				m = x
				return true
			}
		}
		return false
	})
	return m
}

// waitVoters waits until every live node knows the group has k voters.
func (c *cluster) waitVoters(k int) {
	c.t.Helper()
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("%d voters on every node", k), c.HasVoters(k))
}

// waitHost waits for a live host other than except, and returns it.
func (c *cluster) waitHost(except int) int {
	c.t.Helper()
	h := -1
	c.Eventually(c.t, 30*time.Second, "a live host", func() bool {
		h = c.Host()
		return h >= 0 && h != except
	})
	return h
}

func TestGroupChat(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 1, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	for i := range c.Size() {
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
	for i := range c.Size() {
		if !seen[fmt.Sprintf("hello from %d", i)] {
			t.Fatalf("message from node%d missing: %s", i, nodetest.Texts(ms))
		}
	}
	st := c.Node(0).Status()
	if len(st.Groups) != 1 || len(st.Groups[0].Members) != 3 {
		t.Fatalf("status: %+v", st)
	}
}

// logAlerts logs, for a failed test, the fork and censorship alerts the
// nodes show.
func logAlerts(t testing.TB, nc *nodetest.Cluster) {
	if t.Failed() {
		if a := nc.Alerts(); a != "" {
			t.Log("alerts:\n" + a)
		}
	}
}
