package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestStrandedMemberCatchesUp is issue 16's scenario: a founding member is
// offline while three new members join, then the other founders go away
// for good, one at a time (the group keeps committing: its voters move to
// the newcomers). When the founding member comes back, every member it
// knew is gone and every member still there is one it never heard of. It
// must verify the chain of membership from what it last knew, catch up
// from the newcomers, and have the message it queued while cut off
// committed exactly once. (Before the fix, it refused the newcomers as
// "sender is not a member" and never caught up; what it sent stayed
// queued.)
func TestStrandedMemberCatchesUp(t *testing.T) {
	t.Parallel()
	strandedScenario(t, newCluster(t, 6, 161, simnet.LinkConfig{Latency: time.Millisecond}))
}

// TestStrandedMemberCatchesUpHTTP is the same over real HTTP on loopback,
// where the peer listener checks a stranger's frame before the node does.
func TestStrandedMemberCatchesUpHTTP(t *testing.T) {
	t.Parallel()
	nc, err := nodetest.New(nodetest.Options{
		Size: 6, HTTP: true, Dir: t.TempDir(),
		Config: node.Config{Logger: testLogger(t), RetryInterval: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	t.Cleanup(func() { logAlerts(t, nc) })
	if err := nc.StartAll(); err != nil {
		t.Fatal(err)
	}
	strandedScenario(t, &cluster{Cluster: nc, t: t})
}

// BenchmarkStrandedMemberBack times issue 16's scenario over HTTP on
// loopback: from the founding member's restart until it lists every
// message, its queued one included, committed.
func BenchmarkStrandedMemberBack(b *testing.B) {
	var all []time.Duration
	for k := 0; k < b.N; k++ {
		nc, err := nodetest.New(nodetest.Options{
			Size: 6, HTTP: true, Dir: b.TempDir(),
			Config: node.Config{Logger: testLogger(b), RetryInterval: 200 * time.Millisecond},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := nc.StartAll(); err != nil {
			b.Fatal(err)
		}
		all = append(all, strandedScenario(b, &cluster{Cluster: nc, t: b}))
		nc.Close()
	}
	slices.Sort(all)
	b.ReportMetric(all[len(all)/2].Seconds(), "s-back-p50")
	b.ReportMetric(all[len(all)-1].Seconds(), "s-back-max")
}

// strandedScenario runs the scenario and returns how long the founding
// member took from its restart to list every message, its own queued one
// committed.
func strandedScenario(t testing.TB, c *cluster) time.Duration {
	ctx := ctxT(t, 120*time.Second)
	g, err := c.Node(0).CreateGroup(ctx, "founders")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	join := func(inviter, k int) {
		t.Helper()
		code, err := c.Node(inviter).Invite(ctx, c.GroupID, c.Member(k).ID.Public().String())
		if err != nil {
			t.Fatalf("node%d invites node%d: %v", inviter, k, err)
		}
		if _, err := c.Node(k).Join(ctx, code); err != nil {
			t.Fatalf("node%d joins: %v", k, err)
		}
	}
	join(0, 1)
	join(0, 2)
	// node1 will invite the newcomers.
	if err := c.Node(0).SetAdmin(ctx, c.GroupID, c.Member(1).ID.Public().String(), true); err != nil {
		t.Fatal(err)
	}
	c.send(0, "founded", 10*time.Second)
	voters := func(i int, want ...int) func() bool {
		return func() bool {
			g, ok := c.Status(i)
			if !ok {
				return false
			}
			on := map[string]bool{}
			for _, m := range g.Members {
				if m.Voter {
					on[m.PublicID] = true
				}
			}
			for _, k := range want {
				if !on[c.Member(k).ID.Public().String()] {
					return false
				}
			}
			return len(on) == len(want)
		}
	}
	c.Eventually(t, 30*time.Second, "node0, node1, node2 voters", voters(1, 0, 1, 2))

	// The founding member goes offline; three newcomers join meanwhile.
	c.Crash(0)
	join(1, 3)
	join(1, 4)
	join(1, 5)
	// The other founders go away for good, one at a time; the voters
	// move to the newcomers each time.
	// survives is the condition that, in member i's view, the voters
	// other than the gone ones are a quorum: the group keeps committing
	// once those are gone.
	survives := func(i int, gone ...int) func() bool {
		return func() bool {
			g, ok := c.Status(i)
			if !ok {
				return false
			}
			all, left := 0, 0
			for _, m := range g.Members {
				if !m.Voter {
					continue
				}
				all++
				if k := c.Index(m.PublicID); !slices.Contains(gone, k) {
					left++
				}
			}
			return left >= all/2+1
		}
	}
	c.Eventually(t, 60*time.Second, "voters that survive node0 and node1 going", survives(3, 0, 1))
	c.Crash(1)
	c.send(3, "node1 went away", 20*time.Second)
	c.Eventually(t, 60*time.Second, "voters that survive node2 going too", survives(3, 0, 1, 2))
	c.Crash(2)
	c.send(4, "only newcomers now", 20*time.Second)

	// The founding member comes back and sends at once: nobody it knows
	// answers, so the message is queued.
	back := time.Now()
	c.start(0)
	// At least the 3 members its own log lists, or more: a member that
	// reaches it may catch it up before this looks.
	c.Eventually(t, 30*time.Second, "node0 to read its log again", func() bool {
		g, ok := c.Status(0)
		return ok && len(g.Members) >= 3
	})
	m, err := c.Node(0).Send(ctx, c.GroupID, "I am back", time.Millisecond)
	if err != nil || m.State == node.StateCommitted {
		t.Fatalf("send while stranded: %+v, %v; want it queued", m, err)
	}
	// The newcomers cannot read what was sent before they joined.
	want := "node1 went away|only newcomers now|I am back"
	if err := c.Until(ctxT(t, 60*time.Second), "node0 to catch up and its message to commit once everywhere", func() bool {
		for _, i := range []int{0, 3, 4, 5} {
			ms, err := c.Committed(i)
			w := want
			if i == 0 {
				w = "founded|" + want
			}
			if err != nil || texts(ms) != w {
				return false
			}
		}
		return true
	}); err != nil {
		for _, i := range []int{0, 3, 4, 5} {
			ms, _ := c.Committed(i)
			st, _ := c.Status(i)
			t.Logf("node%d: %q (queued %d, role %s)", i, texts(ms), st.Queued, st.Role)
		}
		t.Fatal(err)
	}
	took := time.Since(back)
	// Once caught up, node0 knows the newcomers by the log, and it is a
	// member that can send like any other.
	c.send(0, "in step", 20*time.Second)
	st, _ := c.Status(0)
	if st.Queued != 0 {
		t.Errorf("node0 still has %d messages queued", st.Queued)
	}
	return took
}

// texts joins the messages' texts with "|", for comparisons.
func texts(ms []node.Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteByte('|')
		}
		fmt.Fprint(&b, m.Text)
	}
	return b.String()
}

// TestReconnectAfterEveryoneMoved: a member is away while every other member
// moves to a new address; it comes back on a new address itself. Nobody can
// reach anybody: it knows only the old addresses, and they know only its
// old one. Pointed at one member's new address (demes reconnect), it is
// caught up, the others learn its new address, and the message it queued
// commits once.
func TestReconnectAfterEveryoneMoved(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 162, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	// node1 will make the invite whose addresses node0 reconnects through.
	if err := c.Node(0).SetSettings(ctxT(t, 30*time.Second), c.GroupID, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	c.send(0, "before", 10*time.Second)
	c.Crash(0)
	for _, i := range []int{1, 2} {
		c.Crash(i)
		c.Member(i).URL = fmt.Sprintf("sim://node%d-moved", i)
		c.start(i)
		c.Eventually(t, 30*time.Second, fmt.Sprintf("node%d's new address to commit", i), func() bool {
			for _, j := range []int{1, 2} {
				g, _ := c.Status(j)
				found := false
				for _, m := range g.Members {
					found = found || (m.PublicID == c.Member(i).ID.Public().String() && m.PeerURL == c.Member(i).URL)
				}
				if !found {
					return false
				}
			}
			return true
		})
		c.send(i, fmt.Sprintf("node%d moved", i), 10*time.Second)
	}
	c.Member(0).URL = "sim://node0-moved"
	c.start(0)
	// At least the 3 members its own log lists, or more: a member that
	// reaches it may catch it up before this looks.
	c.Eventually(t, 30*time.Second, "node0 to read its log again", func() bool {
		g, ok := c.Status(0)
		return ok && len(g.Members) >= 3
	})
	m, err := c.Node(0).Send(ctxT(t, 10*time.Second), c.GroupID, "back at a new address", time.Millisecond)
	if err != nil || m.State == node.StateCommitted {
		t.Fatalf("send while cut off: %+v, %v; want it queued", m, err)
	}
	ctx := ctxT(t, 60*time.Second)
	// A wrong target is refused with the reason.
	if _, err := c.Node(0).Reconnect(ctx, c.GroupID, "node1 please"); !errors.Is(err, node.ErrInvalid) {
		t.Errorf("reconnect to a non-address: %v, want ErrInvalid", err)
	}
	res, err := c.Node(0).Reconnect(ctx, c.GroupID, c.Member(1).URL)
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	if res.After <= res.Before || res.Member != c.Member(1).ID.Public().String() {
		t.Errorf("reconnect: %+v, want entries caught up from node1", res)
	}
	c.Eventually(t, 60*time.Second, "node0's message on every node, once", func() bool {
		for i := 0; i < 3; i++ {
			ms, err := c.Committed(i)
			if err != nil || strings.Count(texts(ms), "back at a new address") != 1 {
				return false
			}
		}
		return true
	})
	// Reconnecting again, through an invite code node1 made (for anyone:
	// only its addresses count), changes nothing: node0 is in step.
	stranger, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.Node(1).Invite(ctx, c.GroupID, stranger.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	res, err = c.Node(0).Reconnect(ctx, c.GroupID, code)
	if err != nil {
		t.Fatalf("reconnect through an invite: %v", err)
	}
	if res.After < res.Before || res.Member == "" {
		t.Errorf("reconnect through an invite: %+v", res)
	}
}

// TestSendRightAfterRestart: a member sends the moment its node is back,
// before the node has read its log again; the send waits for that instead
// of failing with "not (yet) a member" (which it did).
func TestSendRightAfterRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 163, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	for k := 0; k < 20; k++ {
		c.send(k%3, fmt.Sprintf("m%d", k), 10*time.Second)
	}
	c.restart(1)
	m, err := c.Node(1).Send(ctxT(t, 30*time.Second), c.GroupID, "right after the restart", 10*time.Second)
	if err != nil {
		t.Fatalf("send right after the restart: %v", err)
	}
	if m.State != node.StateCommitted {
		t.Errorf("send right after the restart: %s, want committed", m.State)
	}
}

// TestReturningVoterCompletesQuorum: a voter is away while the group goes
// on, then a second voter goes too, so that the one left cannot commit
// (one of three). When the first comes back, behind, its seat is what the
// quorum needs: it catches up and votes, the message queued meanwhile
// commits once, and it lists everything it missed.
func TestReturningVoterCompletesQuorum(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 171, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.Crash(2)
	for k := 0; k < 5; k++ {
		if m := c.send(k%2, fmt.Sprint("while node2 is away ", k), 10*time.Second); m.State != node.StateCommitted {
			t.Fatalf("send %d: %s with two of three voters up", k, m.State)
		}
	}
	c.Crash(1)
	m := c.send(0, "alone", 3*time.Second)
	if m.State == node.StateCommitted {
		t.Fatal("one voter of three committed alone")
	}
	c.start(2)
	c.Eventually(t, 60*time.Second, "node0 and node2 to list every message, the queued one committed once", func() bool {
		for _, i := range []int{0, 2} {
			ms, err := c.Committed(i)
			if err != nil || len(ms) != 6 {
				return false
			}
			if n := strings.Count("|"+texts(ms)+"|", "|alone|"); n != 1 {
				return false
			}
		}
		return true
	})
}
