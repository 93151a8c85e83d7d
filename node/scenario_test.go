package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// readable returns the texts of the chat messages the group accepted, in the
// log of node i, that the identity me can decrypt from the ciphertext alone,
// with its key store when it is one of the cluster's nodes (its prekey
// secrets and kept sender keys, nodetest.Loot), and every sender key those
// open from any key header in that log, even of a rejected entry: what a
// member, or a former one, could read if it got hold of the log (as a host
// does). (A rejected entry may be readable: one sealed before its sender
// applied a removal. The group never delivers it.)
func (c *cluster) readable(i int, me *identity.Identity) map[string]bool {
	c.t.Helper()
	entries, err := c.Node(i).LogFrames(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	st := state.New(gid)
	accepted := map[uint64]bool{}
	for _, e := range entries {
		if e.Kind == transcript.KindConf {
			st.ApplyConf(e.Index, e.NodeID, e.Change, e.Frame)
			continue
		}
		accepted[e.Index] = st.ApplyEntry(e.Index, e.Frame).Chat != nil
	}
	out := map[string]bool{}
	loot := &nodetest.Loot{ID: me}
	for _, m := range c.Members() {
		if m.ID.Public() == me.Public() {
			if loot, err = nodetest.TakeLoot(m.Dir, me); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	for idx, o := range loot.Read(gid, entries) {
		if accepted[idx] {
			out[string(o.Body)] = true
		}
	}
	return out
}

// checkExactlyOnce checks that every acknowledged text appears exactly once.
func checkExactlyOnce(t *testing.T, ms []node.Message, acked []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range ms {
		count[m.Text]++
	}
	for _, a := range acked {
		if count[a] != 1 {
			t.Fatalf("message %q delivered %d times; want exactly once; log: %s", a, count[a], nodetest.Texts(ms))
		}
	}
	for text, k := range count {
		if k > 1 {
			t.Fatalf("message %q delivered %d times", text, k)
		}
	}
}

func TestHostCrashFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2, simnet.LinkConfig{Latency: time.Millisecond, Jitter: 0.5})
	c.form()
	c.waitVoters(3)
	var acked []string
	for i := 0; i < 5; i++ {
		text := fmt.Sprintf("before %d", i)
		if m := c.send(i%3, text, 10*time.Second); m.State == node.StateCommitted {
			acked = append(acked, text)
		}
	}
	old := c.Host()
	c.Crash(old)
	h := c.waitHost(old)
	for i := 0; i < 5; i++ {
		text := fmt.Sprintf("after %d", i)
		from := c.Live()[i%2]
		if m := c.send(from, text, 10*time.Second); m.State == node.StateCommitted {
			acked = append(acked, text)
		}
	}
	if len(acked) != 10 {
		t.Fatalf("only %d of 10 sends acknowledged with a live majority", len(acked))
	}
	checkExactlyOnce(t, c.converged(10), acked)
	// The crashed host restarts from its store and catches up.
	c.start(old)
	ms := c.converged(10)
	checkExactlyOnce(t, ms, acked)
	_ = h
}

func TestTwoCrashesInFive(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 3, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	var acked []string
	send := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			text := fmt.Sprintf("%s %d", prefix, i)
			live := c.Live()
			if m := c.send(live[i%len(live)], text, 10*time.Second); m.State == node.StateCommitted {
				acked = append(acked, text)
			}
		}
	}
	send("a", 3)
	h1 := c.Host()
	c.Crash(h1)
	h2 := c.waitHost(h1)
	c.Crash(h2)
	c.waitHost(h2)
	send("b", 3)
	if len(acked) != 6 {
		t.Fatalf("%d of 6 acknowledged with 3 of 5 voters alive", len(acked))
	}
	checkExactlyOnce(t, c.converged(6), acked)
}

func TestMinorityPartitionQueues(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 4, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.send(0, "warm-up", 10*time.Second)
	c.converged(1)
	// Cut one follower away from the others.
	h := c.Host()
	minority := (h + 1) % 3
	c.Isolate(minority)
	m := c.send(minority, "from the minority", 500*time.Millisecond)
	if m.State != node.StateTentative {
		t.Fatalf("a minority committed a message: %+v", m)
	}
	c.send(h, "from the majority", 10*time.Second)
	// The minority commits nothing while cut off.
	for _, mm := range c.committed(minority) {
		if mm.Text == "from the minority" || mm.Text == "from the majority" {
			t.Fatalf("minority shows %q as committed during the partition", mm.Text)
		}
	}
	st := c.Node(minority).Status().Groups[0]
	if st.Queued != 1 {
		t.Fatalf("minority outbox holds %d messages, want 1", st.Queued)
	}
	c.net.Heal()
	ms := c.converged(3)
	checkExactlyOnce(t, ms, []string{"warm-up", "from the minority", "from the majority"})
	c.Eventually(t, 30*time.Second, "an empty outbox", func() bool { return c.Node(minority).Status().Groups[0].Queued == 0 })
}

// TestQueuedMessageSurvivesRestart queues a message sealed without a key
// header (its sender key was registered before), restarts its node while it
// is still cut off, and checks that it is delivered exactly once: the node
// recovers its sender key from the log's key headers, since no key is ever
// on disk.
func TestQueuedMessageSurvivesRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 9, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.send(2, "registers the key", 10*time.Second)
	c.converged(1)
	c.Isolate(2)
	if m := c.send(2, "queued across a restart", 500*time.Millisecond); m.State != node.StateTentative {
		t.Fatalf("a minority committed a message: %+v", m)
	}
	c.restart(2)
	c.Eventually(t, 30*time.Second, "the restarted node to restore its outbox", func() bool {
		return c.Node(2).Status().Groups[0].Queued == 1
	})
	c.net.Heal()
	checkExactlyOnce(t, c.converged(2), []string{"registers the key", "queued across a restart"})
	c.Eventually(t, 30*time.Second, "an empty outbox", func() bool { return c.Node(2).Status().Groups[0].Queued == 0 })
}

// TestAcknowledgedSendSurvivesCrash crashes a node right after its sends
// returned, without waiting for anything: a send returns only once its
// message is on disk (its outbox write rides with the node's next raft
// write, or is made at once when the send is acknowledged as queued), so
// every one is there after the restart and is delivered once.
func TestAcknowledgedSendSurvivesCrash(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 10, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	s := (c.Host() + 1) % 3 // a follower
	c.send(s, "registers the key", 10*time.Second)
	c.converged(1)
	// Cut off, the node still believes in its host for a while, so its
	// proposals go out (and are lost) and nothing is written but the
	// outbox.
	c.Isolate(s)
	want := []string{"registers the key"}
	for i := 0; i < 5; i++ {
		text := fmt.Sprintf("acknowledged %d", i)
		if m := c.send(s, text, 0); m.State != node.StateTentative {
			t.Fatalf("a cut-off node committed %q: %+v", text, m)
		}
		want = append(want, text)
	}
	c.restart(s)
	c.Eventually(t, 30*time.Second, "the restarted node to restore its outbox", func() bool {
		return c.Node(s).Status().Groups[0].Queued == 5
	})
	c.net.Heal()
	checkExactlyOnce(t, c.converged(len(want)), want)
}

func TestSendsDuringFailoverNotLost(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 5, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	old := c.Host()
	from := (old + 1) % 3
	c.Crash(old)
	// Sent at once, while the group has no host yet: queued or committed,
	// never lost, never doubled.
	var sent []string
	for i := 0; i < 5; i++ {
		text := fmt.Sprintf("during %d", i)
		c.send(from, text, 0)
		sent = append(sent, text)
	}
	c.waitHost(old)
	ms := c.converged(5)
	checkExactlyOnce(t, ms, sent)
}

// threeWithMessages forms a group of 3 voters on seed's network and has each
// send one message, m0 to m2, committed everywhere.
func threeWithMessages(t *testing.T, seed int64) *cluster {
	t.Helper()
	c := newCluster(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	for i := 0; i < 3; i++ {
		c.send(i, fmt.Sprintf("m%d", i), 10*time.Second)
	}
	c.converged(3)
	return c
}

func TestRestartAllFromStore(t *testing.T) {
	t.Parallel()
	c := threeWithMessages(t, 6)
	for i := range c.Members() {
		c.Crash(i)
	}
	for i := range c.Members() {
		c.start(i)
	}
	c.waitHost(-1)
	c.send(1, "after restart", 10*time.Second)
	checkExactlyOnce(t, c.converged(4), []string{"m0", "m1", "m2", "after restart"})
}

// TestQuietGroupHistoryOnDisk checks that once a group goes quiet, a
// member's disk holds the commit index of everything it has shown: crashed
// then restarted with every other member down, it lists the same messages,
// without a host to learn the commit index from again. (Under load the
// commit index is written only with the next write, see handleReady.)
func TestQuietGroupHistoryOnDisk(t *testing.T) {
	t.Parallel()
	c := threeWithMessages(t, 61)
	f := (c.Host() + 1) % 3
	shown := nodetest.Texts(c.committed(f))
	c.Eventually(t, 30*time.Second, "the commit index on disk", func() bool {
		s, err := node.GroupLogStats(c.Node(f), c.GroupID)
		return err == nil && s.StoredCommit >= s.Applied
	})
	for i := range c.Members() {
		c.Crash(i)
	}
	c.start(f)
	c.Eventually(t, 30*time.Second, fmt.Sprintf("%s, alone after a crash, to list %q", c.Member(f).Name, shown), func() bool {
		return nodetest.Texts(c.committed(f)) == shown
	})
}

// TestCatchUpWithLargeMessages checks that a member that was down while
// the others sent megabytes of messages catches up: the host's appends to it
// are up to 1 MiB each and many at a time, and a request with all of them
// would be over the frame limit and refused every time it was sent again.
func TestCatchUpWithLargeMessages(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 62, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	// 200 messages in a few seconds: over the default quota of 120 a
	// minute, which is not what this test is about.
	if err := c.Node(0).SetSettings(ctxT(t, 30*time.Second), c.GroupID, node.GroupSettings{MsgsPerMinute: 100000}); err != nil {
		t.Fatal(err)
	}
	h := c.Host()
	f := (h + 1) % 3
	c.Crash(f)
	body := strings.Repeat("x", crypto.MaxBody-100)
	const n = 200 // 12.8 MB: the frame limit is 8 MiB
	for k := 0; k < n; k++ {
		c.send(h, fmt.Sprintf("%03d %s", k, body), 10*time.Second)
	}
	c.start(f)
	// 12.8 MB through the simulated network and three stores: 27 to 59 s
	// alone under -race on this machine (2026-12-05), more beside the other
	// tests (191 s once for the whole test, with the host stepping down for
	// lack of quorum); 3.5 s without -race. Under -race 84% of the CPU is
	// the race detector checking the copies of large byte slices
	// (__tsan::MemoryAccessRangeT, in a CPU profile): a follower's turn for
	// one 1 MiB append takes about a second, longer than the election
	// timeout (the slow-turn warnings say so), so the catching-up member
	// stands as pre-candidate again and again, and two such followers would
	// cost the host its quorum. The limit is a hang's, not a figure:
	// generous.
	ms := c.convergedWithin(n, 4*time.Minute)
	if len(ms) != n {
		t.Fatalf("%d messages, want %d", len(ms), n)
	}
}

func TestJoinReadsOnlyAfterJoin(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 7, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 60*time.Second)
	gi, err := c.Node(0).CreateGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = gi.GroupID
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	c.send(0, "before the join", 10*time.Second)
	// Messages keep flowing while node 2 joins.
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		k := 0
		for {
			select {
			case <-stop:
				done <- k
				return
			default:
			}
			if _, err := c.Node(1).Send(ctx, c.GroupID, fmt.Sprintf("flow %d", k), 5*time.Second); err == nil {
				k++
			}
		}
	}()
	code, err = c.Node(0).Invite(ctx, c.GroupID, c.Member(2).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(2).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	c.send(0, "after the join", 10*time.Second)
	close(stop)
	<-done
	c.Eventually(t, 30*time.Second, "the joiner to see the message after its join", func() bool {
		for _, m := range c.committed(2) {
			if m.Text == "after the join" {
				return true
			}
		}
		return false
	})
	for _, m := range c.committed(2) {
		if m.Text == "before the join" {
			t.Fatal("the joiner reads a message from before its join")
		}
	}
	// Nor can its keys decrypt it from the log, which it holds in full.
	if r := c.readable(2, c.Member(2).ID); r["before the join"] || !r["after the join"] {
		t.Fatalf("from the log, the joiner decrypts %q: %v (want false), and %q: %v (want true)", "before the join", r["before the join"], "after the join", r["after the join"])
	}
	// What it reads is exactly the tail of what the others read.
	all := c.committed(0)
	mine := c.committed(2)
	if len(mine) == 0 || len(mine) >= len(all) {
		t.Fatalf("joiner sees %d of %d messages", len(mine), len(all))
	}
	c.Eventually(t, 30*time.Second, "joiner to catch up", func() bool {
		all, mine = c.committed(0), c.committed(2)
		return nodetest.Texts(all[len(all)-len(mine):]) == nodetest.Texts(mine)
	})
}

func TestRemovedMemberCannotRead(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 8, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	c.send(0, "everyone", 10*time.Second)
	c.converged(1)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Node(0).Remove(ctx, c.GroupID, c.Member(2).ID.Public().String()); err != nil {
		t.Fatal(err)
	}
	c.send(1, "not for node2", 10*time.Second)
	c.Eventually(t, 30*time.Second, "node1 to see its message", func() bool { return len(c.committed(1)) == 2 })
	for _, m := range c.committed(2) {
		if m.Text == "not for node2" {
			t.Fatal("a removed member reads a message sent after its removal")
		}
	}
	// Nor can its keys decrypt it from a remaining member's log, every key
	// header in it included.
	if r := c.readable(1, c.Member(2).ID); r["not for node2"] || !r["everyone"] {
		t.Fatalf("from the log, the removed member decrypts %q: %v (want false), and %q: %v (want true)", "not for node2", r["not for node2"], "everyone", r["everyone"])
	}
	// A non-creator cannot remove others.
	err := c.Node(1).Remove(ctxT(t, 3*time.Second), c.GroupID, c.Member(0).ID.Public().String())
	if err == nil {
		t.Fatal("a member who is not the creator removed the creator")
	}
}

func TestRestartOnNewAddress(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 10, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	h := c.Host()
	f := (h + 1) % 3
	c.Crash(f)
	c.Member(f).URL = "sim://moved"
	c.start(f)
	c.send(h, "to the moved node", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the moved node to receive new messages", func() bool {
		for _, m := range c.committed(f) {
			if m.Text == "to the moved node" {
				return true
			}
		}
		return false
	})
}
