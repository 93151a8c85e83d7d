package node_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// listed returns the messages node i lists, by id.
func (c *cluster) listed(i int) map[string]node.Message {
	c.t.Helper()
	ms, err := c.Node(i).Messages(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]node.Message{}
	for _, m := range ms {
		if _, dup := out[m.ID]; dup {
			c.t.Fatalf("node%d lists message %q twice", i, m.Text)
		}
		out[m.ID] = m
	}
	return out
}

// stopMajority stops members 2, 3 and 4 of a group of five (three of its
// five voters) and waits until each of the given members knows no host.
func (c *cluster) stopMajority(watch ...int) {
	c.t.Helper()
	for _, i := range []int{2, 3, 4} {
		c.Stop(i)
	}
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("no host on nodes %v", watch), func() bool {
		for _, i := range watch {
			if g, ok := c.Status(i); !ok || g.Host != "" {
				return false
			}
		}
		return true
	})
}

// showsTentative reports whether node i lists m, tentative, with its text
// (false while it cannot list, as during a restart).
func (c *cluster) showsTentative(i int, m node.Message) bool {
	ms, err := c.Node(i).Messages(c.GroupID)
	if err != nil {
		return false
	}
	for _, x := range ms {
		if x.ID == m.ID {
			return x.State == node.StateTentative && x.Text == m.Text
		}
	}
	return false
}

// sendHeldBy1 sends text from node0 while the group cannot commit
// (stopMajority), checks that the send answers it tentative, and waits
// until node0 counts it held by node1.
func (c *cluster) sendHeldBy1(text string) node.Message {
	c.t.Helper()
	m := c.send(0, text, 20*time.Second)
	if m.State != node.StateTentative {
		c.t.Fatalf("node0's message is %s with a majority of the voters stopped", m.State)
	}
	c.Eventually(c.t, 30*time.Second, "node0 to count its message held by node1", func() bool {
		return c.listed(0)[m.ID].Delivered == 1
	})
	return m
}

// TestTentativeWhileMajorityAsleep is issue 18's scenario: five members,
// three of them stopped, so the group cannot commit. The two left still
// talk: each one's message reaches the other directly, is shown there
// tentative, and the send answers with how many members hold it instead of
// waiting out its timeout. When the three come back, every member lists
// one order with every message once, none tentative any more.
func TestTentativeWhileMajorityAsleep(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 181, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	// The group has no host any more.
	c.stopMajority(0, 1)
	exchange := func(from, to int, text string) node.Message {
		t.Helper()
		m := c.send(from, text, 20*time.Second)
		if m.State != node.StateTentative {
			t.Fatalf("node%d's %q is %s with a majority of the voters stopped", from, text, m.State)
		}
		if m.Delivered != 1 || m.Others != 4 {
			t.Errorf("node%d's %q: delivered to %d of %d others, want 1 of 4", from, text, m.Delivered, m.Others)
		}
		got := c.listed(to)[m.ID]
		if got.State != node.StateTentative || got.Text != text || got.Author != c.Member(from).ID.Public().String() {
			t.Fatalf("node%d lists node%d's message as %+v, want it tentative with its text and author", to, from, got)
		}
		return m
	}
	a := exchange(0, 1, "are you there?")
	b := exchange(1, 0, "yes, the others sleep")
	// A reply comes after what it answers, on both sides.
	if b.Order <= a.Order {
		t.Errorf("the reply's order %d is not after the question's %d", b.Order, a.Order)
	}
	for _, i := range []int{0, 1} {
		ms, _ := c.Node(i).Messages(c.GroupID)
		if n := len(ms); n < 3 || ms[n-2].ID != a.ID || ms[n-1].ID != b.ID {
			t.Errorf("node%d lists %v, want the question then the reply last", i, tentTexts(ms))
		}
		if g, _ := c.Status(i); g.Waiting == "" {
			t.Errorf("node%d's status does not say why messages wait", i)
		}
	}
	// A restart of node1 keeps what node0 handed it: it shows the
	// question again, tentative, from its store (ciphertext, as the log).
	c.restart(1)
	c.Eventually(t, 30*time.Second, "node1 to show node0's question again after its restart", func() bool {
		return c.showsTentative(1, a)
	})
	for _, i := range []int{2, 3, 4} {
		c.start(i)
	}
	ref := c.converged(3)
	count := map[string]int{}
	for _, m := range ref {
		count[m.Text]++
	}
	for _, text := range []string{"before", "are you there?", "yes, the others sleep"} {
		if count[text] != 1 {
			t.Errorf("%q is committed %d times, want once: %s", text, count[text], tentTexts(ref))
		}
	}
	c.Eventually(t, 30*time.Second, "no message tentative on any node", func() bool {
		for _, i := range c.Live() {
			for _, m := range c.listed(i) {
				if m.State != node.StateCommitted {
					return false
				}
			}
		}
		return true
	})
}

// TestTentativeUnstoredNotHeld: a member whose disk refuses to store the
// tentative messages it takes (here, an input/output error on the write)
// shows them, but must not answer their author that it holds them: the
// author counts it among the members that hold a message, and stops
// handing the message over to it, only once the member stored it, so that
// it shows the message again after a restart.
func TestTentativeUnstoredNotHeld(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 184, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	if err := node.FailTentativeWrites(ctxT(t, 30*time.Second), c.Node(1), c.GroupID, syscall.EIO); err != nil {
		t.Fatal(err)
	}
	c.stopMajority(0, 1)
	m := c.send(0, "not on node1's disk", 20*time.Second)
	if m.State != node.StateTentative {
		t.Fatalf("node0's message is %s with a majority of the voters stopped", m.State)
	}
	if m.Delivered != 0 {
		t.Errorf("node0 counts its message delivered to %d members, though node1 could not store it", m.Delivered)
	}
	// node1 took the message: it shows it, and counts what it could not
	// store, where the operator looks.
	if got := c.listed(1)[m.ID]; got.State != node.StateTentative || got.Text != m.Text {
		t.Errorf("node1 lists node0's message as %+v, want it shown tentative", got)
	}
	if n := c.Node(1).Status().Rejected["tentative message not stored"]; n == 0 {
		t.Errorf("node1 does not count the tentative message it could not store: %v", c.Node(1).Status().Rejected)
	}
	// Once its disk writes again, node1 stores the message, and node0,
	// handing it over again, counts it.
	if err := node.FailTentativeWrites(ctxT(t, 30*time.Second), c.Node(1), c.GroupID, nil); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "node0 to count its message delivered to node1", func() bool {
		return c.listed(0)[m.ID].Delivered == 1
	})
	c.restart(1)
	c.Eventually(t, 30*time.Second, "node1 to show node0's message again after its restart", func() bool {
		return c.showsTentative(1, m)
	})
}

// TestTentativeHolderLosesMessage: a member that said it holds a tentative
// message may lose it afterwards (here it is put back from a copy of its
// home taken before, as after a lost disk). The author, whose message must
// reach every member it can or show that they do not hold it, asks the
// members that said they hold it again now and then, and hands it over
// again to one that no longer does: the member shows the message again,
// before the group can commit it.
func TestTentativeHolderLosesMessage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 188, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	c.stopMajority(0, 1)
	// A copy of node1's home, taken while it is stopped.
	c.Stop(1)
	backup := filepath.Join(t.TempDir(), "node1")
	copyHome(t, c.Member(1).Dir, backup)
	c.start(1)
	m := c.sendHeldBy1("kept by node1, then lost")
	if !c.showsTentative(1, m) {
		t.Fatalf("node1 does not show node0's message it holds: the test is broken")
	}
	// node1 is put back from the copy, without the message.
	c.Crash(1)
	if err := os.RemoveAll(c.Member(1).Dir); err != nil {
		t.Fatal(err)
	}
	copyHome(t, backup, c.Member(1).Dir)
	c.start(1)
	c.Eventually(t, 60*time.Second, "node1 to show node0's message again, handed over anew", func() bool {
		return c.showsTentative(1, m)
	})
	c.Eventually(t, 30*time.Second, "node0 to count its message held by node1", func() bool {
		return c.listed(0)[m.ID].Delivered == 1
	})
}

// copyHome copies a stopped node's home from one directory to another, its
// files private (0600) as the node keeps them.
func copyHome(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		copyFile(t, path, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTentativeRestartAfterNewEpoch: a member holds a tentative message of
// an author cut off from the rest of the group, which goes on committing
// and moves to a new membership epoch (a rekey here; a join or a leave
// does the same). The member goes on showing the message, sealed in the
// epoch before, and must show it again after a restart: the author, still
// cut off, does not hand it over again, and the message commits only once
// the author is back.
func TestTentativeRestartAfterNewEpoch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 185, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	// The author s reaches only the member r; r and the three others are
	// a majority, with the host among them.
	host := c.waitHost(-1)
	s, r := -1, -1
	var rest []string
	for i := range 5 {
		switch {
		case i == host:
		case s < 0:
			s = i
			continue
		case r < 0:
			r = i
			continue
		}
		rest = append(rest, c.Member(i).URL)
	}
	// A message committed first: the author's key is known, and its
	// tentative message carries no key header.
	c.sendCommitted(s, "before the cut", 10*time.Second)
	c.net.Partition([]string{c.Member(s).URL}, rest)
	c.Eventually(t, 30*time.Second, fmt.Sprintf("no host on node%d, cut off", s), func() bool {
		g, ok := c.Status(s)
		return ok && g.Host == ""
	})
	m := c.send(s, "from behind the cut", 20*time.Second)
	if m.State != node.StateTentative || m.Delivered != 1 {
		t.Fatalf("node%d's message is %s, delivered to %d members, want it tentative and delivered to node%d", s, m.State, m.Delivered, r)
	}
	shown := func() bool { return c.showsTentative(r, m) }
	if err := c.Node(r).Rekey(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	if !shown() {
		t.Fatalf("node%d no longer shows node%d's tentative message after the group's new epoch", r, s)
	}
	// The restart replays the log up to the commit index on disk: the
	// rekey's, for the restart to find the new epoch.
	var epoch uint64
	c.Eventually(t, 30*time.Second, fmt.Sprintf("node%d to store the new epoch's commit", r), func() bool {
		ls, err := node.GroupLogStats(c.Node(r), c.GroupID)
		epoch = ls.Epoch
		return err == nil && ls.StoredCommit >= ls.Epoch
	})
	c.restart(r)
	c.Eventually(t, 30*time.Second, fmt.Sprintf("node%d to show node%d's message again after its restart", r, s), shown)
	if ls, err := node.GroupLogStats(c.Node(r), c.GroupID); err != nil || ls.Epoch != epoch {
		t.Fatalf("node%d restarted in epoch %d, want %d (%v)", r, ls.Epoch, epoch, err)
	}
	// Back together, the author's message commits, once, on every node.
	c.net.Heal()
	c.Eventually(t, 60*time.Second, "the message committed on every node", func() bool {
		for i := range 5 {
			if c.listed(i)[m.ID].State != node.StateCommitted {
				return false
			}
		}
		return true
	})
}

// TestTentativeCrashAfterNewEpoch: a member takes a tentative message
// sealed in a membership epoch that began just before, and crashes before
// its lazy write of the commit index has stored that epoch's start. It
// answered that it holds the message, so its author does not hand it over
// again: the restart must find the new epoch and show the message again,
// though the group cannot commit (no host tells it the commit index).
func TestTentativeCrashAfterNewEpoch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 189, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	if err := node.LagCommitWrites(ctxT(t, 30*time.Second), c.Node(1), c.GroupID); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(1).Rekey(ctxT(t, 30*time.Second), c.GroupID); err != nil {
		t.Fatal(err)
	}
	var epoch uint64
	c.Eventually(t, 30*time.Second, "node0 in node1's new epoch", func() bool {
		e0, _ := c.epochAndApplied(0)
		e1, _ := c.epochAndApplied(1)
		epoch = e1
		return e0 == e1
	})
	if ls, err := node.GroupLogStats(c.Node(1), c.GroupID); err != nil || ls.StoredCommit >= epoch {
		t.Fatalf("node1's stored commit index %d covers the epoch at %d already (%v): the test is broken", ls.StoredCommit, epoch, err)
	}
	c.stopMajority(0, 1)
	m := c.sendHeldBy1("in the new epoch")
	c.restart(1)
	c.Eventually(t, 30*time.Second, "node1 to show node0's message again after its crash", func() bool {
		return c.showsTentative(1, m)
	})
	if e, _ := c.epochAndApplied(1); e != epoch {
		t.Errorf("node1 restarted in epoch %d, want %d", e, epoch)
	}
}

// TestTentativeNotWhileCommitting checks that a group that commits sends
// nothing directly: a send answers committed, and nothing else is held.
func TestTentativeNotWhileCommitting(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 182, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	for k := range 5 {
		if m := c.send(k%3, fmt.Sprint("m", k), 10*time.Second); m.State != node.StateCommitted {
			t.Fatalf("send %d answered %s in a working group", k, m.State)
		}
	}
	for i := range 3 {
		if g, _ := c.Status(i); g.Tentative != 0 {
			t.Errorf("node%d holds %d tentative messages in a working group", i, g.Tentative)
		}
	}
}

func tentTexts(ms []node.Message) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprintf("%s:%q ", m.State, m.Text)
	}
	return s
}

// TestLastTwoStandingCommit: five members go offline one at a time, the
// group settling between departures. The voter set follows the members
// online (dead voters are dropped while a majority can still change it,
// once keeping them would cost the quorum: five voters keep one dead, and
// drop to three when two are), so the last two standing still commit,
// without tentative delivery.
func TestLastTwoStandingCommit(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 5, 183, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	for k, gone := range []int{4, 2, 0} {
		c.Stop(gone)
		if m := c.send((gone+1)%5, fmt.Sprint("after departure ", k), 20*time.Second); m.State != node.StateCommitted {
			t.Fatalf("the group does not commit after node%d left: %s", gone, m.State)
		}
		want := []int{5, 3, 3}[k]
		c.Eventually(t, 60*time.Second, fmt.Sprintf("%d voters, all online, after node%d left", want, gone), func() bool {
			for _, i := range c.Live() {
				g, ok := c.Status(i)
				if !ok || g.Host == "" {
					return false
				}
				voters := 0
				for _, m := range g.Members {
					if m.Voter {
						voters++
					}
				}
				if voters != want {
					return false
				}
			}
			return true
		})
	}
	for _, i := range []int{1, 3} {
		if m := c.send(i, fmt.Sprint("from node", i), 20*time.Second); m.State != node.StateCommitted {
			t.Fatalf("node%d's message is %s with two of five members online", i, m.State)
		}
	}
}
