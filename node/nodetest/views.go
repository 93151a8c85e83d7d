package nodetest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
)

// Status returns member i's view of the cluster's group, and false while
// it is down or not in the group.
func (c *Cluster) Status(i int) (node.GroupStatus, bool) {
	n := c.Node(i)
	if n == nil {
		return node.GroupStatus{}, false
	}
	for _, g := range n.Status().Groups {
		if g.GroupID == c.GroupID {
			return g, true
		}
	}
	return node.GroupStatus{}, false
}

// Host returns the live member that leads the group in the highest term,
// or -1.
func (c *Cluster) Host() int {
	best, term := -1, uint64(0)
	for _, i := range c.Live() {
		if g, ok := c.Status(i); ok && g.Role == "leader" && (best < 0 || g.Term > term) {
			best, term = i, g.Term
		}
	}
	return best
}

// Voters returns how many voters member i sees in the group (0 while it
// is down).
func (c *Cluster) Voters(i int) int {
	g, _ := c.Status(i)
	v := 0
	for _, m := range g.Members {
		if m.Voter {
			v++
		}
	}
	return v
}

// HasVoters is the condition that every live member sees k voters: a
// configuration change counts in raft only where its commit is known, so a
// crash test must not start while a follower still has the old one.
func (c *Cluster) HasVoters(k int) func() bool {
	return func() bool {
		for _, i := range c.Live() {
			if c.Voters(i) != k {
				return false
			}
		}
		return true
	}
}

// OneHost is the condition that every member is up and follows one host.
func (c *Cluster) OneHost() func() bool {
	return func() bool {
		host := ""
		for i := range c.Size() {
			g, ok := c.Status(i)
			if !ok || g.Host == "" || host != "" && g.Host != host {
				return false
			}
			host = g.Host
		}
		return true
	}
}

// Settled is the condition that every member is up, follows one host and
// has applied the same index (the status's Committed): a member that
// restarted has caught up.
func (c *Cluster) Settled() func() bool {
	one := c.OneHost()
	return func() bool {
		if !one() {
			return false
		}
		first, _ := c.Status(0)
		for i := 1; i < c.Size(); i++ {
			if g, ok := c.Status(i); !ok || g.Committed != first.Committed {
				return false
			}
		}
		return true
	}
}

// Send sends text to the group from member i, waiting up to wait for its
// commit (see [node.Node.Send]).
func (c *Cluster) Send(ctx context.Context, i int, text string, wait time.Duration) (node.Message, error) {
	n := c.Node(i)
	if n == nil {
		return node.Message{}, fmt.Errorf("send from node%d: it is down", i)
	}
	m, err := n.Send(ctx, c.GroupID, text, wait)
	if err != nil {
		return m, fmt.Errorf("send from %s: %w", c.members[i].Name, err)
	}
	return m, nil
}

// Committed returns the committed messages member i lists.
func (c *Cluster) Committed(i int) ([]node.Message, error) {
	n := c.Node(i)
	if n == nil {
		return nil, fmt.Errorf("messages on node%d: it is down", i)
	}
	msgs, err := n.Messages(c.GroupID)
	if err != nil {
		return nil, fmt.Errorf("messages on %s: %w", c.members[i].Name, err)
	}
	var out []node.Message
	for _, m := range msgs {
		if m.State == node.StateCommitted {
			out = append(out, m)
		}
	}
	return out, nil
}

// Texts renders messages as "index:text|...", for comparisons and failure
// messages.
func Texts(ms []node.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d:%s|", m.Index, m.Text)
	}
	return b.String()
}

// Converged reports whether every live member lists the same committed
// messages, at least want of them, and returns them.
func (c *Cluster) Converged(want int) ([]node.Message, bool) {
	var ref []node.Message
	first := true
	for _, i := range c.Live() {
		ms, err := c.Committed(i)
		if err != nil {
			return nil, false // crashed meanwhile
		}
		if first {
			ref, first = ms, false
			continue
		}
		if !sameMessages(ms, ref) {
			return nil, false
		}
	}
	return ref, !first && len(ref) >= want
}

// FallbackEvery is how often [Cluster.Until] checks its condition between
// events.
const FallbackEvery = 50 * time.Millisecond

// sameMessages compares positions and texts, as Texts would, without
// rendering megabytes of them on every check.
func sameMessages(a, b []node.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k].Index != b[k].Index || a[k].Text != b[k].Text {
			return false
		}
	}
	return true
}

// Until waits until cond holds or ctx ends, checking it whenever a live
// member publishes an event (a commit, a change of role or members) and
// every [FallbackEvery] besides, for what events do not show (a node that
// restarts during the wait, a latency map).
func (c *Cluster) Until(ctx context.Context, what string, cond func() bool) error {
	wake := make(chan struct{}, 1)
	var stops []func()
	done := make(chan struct{})
	defer func() {
		close(done)
		for _, s := range stops {
			s()
		}
	}()
	for _, i := range c.Live() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		ch, stop := n.Subscribe()
		stops = append(stops, stop)
		go func() {
			for {
				select {
				case _, ok := <-ch:
					if !ok {
						return
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				case <-done:
					return
				}
			}
		}()
	}
	return testutil.Wait(ctx, wake, FallbackEvery, what, cond)
}

// Eventually fails t if cond does not hold within d; see [Cluster.Until].
func (c *Cluster) Eventually(t testutil.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.Until(ctx, what, cond); err != nil {
		t.Fatalf("timed out after %v %v", d, err)
	}
}

// Alerts describes the fork and censorship alerts every live node shows,
// for a failed test's log: a halted group or a deposed host explains many
// a timeout. It returns "" when no node shows one.
func (c *Cluster) Alerts() string {
	var b strings.Builder
	for _, i := range c.Live() {
		for _, g := range c.Node(i).Status().Groups {
			if g.Fork != nil {
				fmt.Fprintf(&b, "node%d: group %s halted: %s\n", i, g.GroupID, g.Fork.Message)
			}
			if g.Censorship != nil {
				fmt.Fprintf(&b, "node%d: group %s suspects its host: %s\n", i, g.GroupID, g.Censorship.Message)
			}
		}
	}
	return b.String()
}
