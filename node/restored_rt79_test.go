package node_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestRestoredSoleVoterAfterTheGrace: as TestRestoredSoleVoterAlone, but the
// other members stay offline past the restored copy's grace
// (restoredSoloGrace): the restored member, the only voter of its copy,
// elects itself and commits its person's message alone, on a history the
// group never had. That much is the documented gap (helper-79). When the
// others come back, the split must not stay silent: the restored member's
// status must say that a member it does not know sent the group's traffic,
// and that the group most likely went on without it.
//
// Watched to fail without the word (noteRestoredStranger): node0's status
// said only that it was restored, while it refused the others' catch-up as
// from a member the chain does not name. A fix that finds the fork itself
// (it catches up from the backup's state and halts on the contradiction)
// is on branch wip/restored-fork, not taken: it holds every snapshot back
// while the copy is marked.
func TestRestoredSoleVoterAfterTheGrace(t *testing.T) {
	t.Parallel()
	c, backup := joinedAfterBackup(t, 291)

	for i := range 3 {
		c.Crash(i)
	}
	c.restoreStore(0, backup)
	c.start(0)
	// Past the grace, the restored copy elects itself: what its person
	// sends commits alone (the documented gap).
	m := c.sendCommitted(0, "after the restore", 90*time.Second)
	t.Logf("node0's message %s", m.State)
	c.start(1)
	c.start(2)
	c.sendCommitted(1, "from a member that kept its log", 60*time.Second)
	c.Eventually(t, 90*time.Second, "node0 to say that a member it does not know sent the group's traffic", func() bool {
		s, ok := c.Status(0)
		return ok && strings.Contains(s.Restored, "a member it does not know")
	})
	s, _ := c.Status(0)
	t.Logf("node0 says: %s", s.Restored)
}

// TestRestoredOtherVoterOfAnOlderPair: node0 backs up a group of two voters
// (node0, node1); node2 joins and becomes the third voter, and every member
// applies it. node1 is cut off; node0 and node2, a majority, commit a
// message node1 never gets. node0 is lost and restored from its backup, in
// which node1 is the only other voter, and node2 is down. node1 lacks a
// committed message: it must not be elected (node2 must be back first),
// and the message must stay in the group's order.
//
// This is the trade of the exception for the other voter of a group of two
// (onlyOtherVoter, docs/PROTOCOL.md "A member restored from a backup"), and
// it is wider than written there: node1 need not lag on node2's addition;
// it applied it, asks node0 and node2 for votes, and node0's vote, granted
// by the count of its restored copy, is the majority node1 needs.
func TestRestoredOtherVoterOfAnOlderPair(t *testing.T) {
	t.Parallel()
	restoredOtherVoterOfAnOlderPair(t, 292, false)
}

// TestRestoredOtherVoterLaggingOnAThird: as
// TestRestoredOtherVoterOfAnOlderPair, but node1 acknowledged node2's
// promotion and was cut off before it learned that it committed: it still
// counts two voters, node0 and itself, and its log holds the promotion.
// This is the trade written in docs/PROTOCOL.md ("A member restored from a
// backup"). node1 no longer says it is one of a pair (its log holds a
// membership change it has not applied: pairOf), so node0 does not elect
// it without the message; but node1 refuses node2's vote requests (node2
// is a learner by node1's applied count) and node0, restored, grants node2
// none, so no one is elected again: the message is kept, and the group
// stalls for good. Without the check of node1's log, node0 elected node1
// and the message was lost.
func TestRestoredOtherVoterLaggingOnAThird(t *testing.T) {
	t.Skip("a documented gap (docs/PROTOCOL.md, \"A member restored from a backup\"): the group stalls for good; it lost the message before pairOf checked the log")
	t.Parallel()
	restoredOtherVoterOfAnOlderPair(t, 293, true)
}

// restoredOtherVoterOfAnOlderPair runs the scenario of
// TestRestoredOtherVoterOfAnOlderPair; with lagging, node1 is cut off from
// what it is sent as soon as it took node2's promotion, before it learned
// that it committed.
func restoredOtherVoterOfAnOlderPair(t *testing.T, seed int64, lagging bool) {
	c := newCluster(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond})
	g, err := c.Node(0).CreateGroup(ctxT(t, 30*time.Second), "ours")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	code, err := c.Node(0).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctxT(t, 30*time.Second), code); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "2 voters on node0 and node1", func() bool {
		return c.Voters(0) == 2 && c.Voters(1) == 2
	})
	c.sendCommitted(0, "before the backup", 30*time.Second)
	backup := c.backupStore(0)

	// With lagging, node1 refuses every frame after the first that brings
	// it a second membership change (node2's join as a learner, then its
	// promotion), as if cut off right after it took the promotion.
	var cut, cutting atomic.Bool
	if lagging {
		c.waitHost(1)
		changes := map[uint64]bool{}
		var mu sync.Mutex
		c.refuse(1, func(env *crypto.Envelope) bool {
			if !cutting.Load() {
				return false
			}
			if cut.Load() {
				return true
			}
			if env.Type != crypto.TypeBatch {
				return false
			}
			items, err := crypto.DecodeBatch(env.Payload)
			if err != nil {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			for _, it := range items {
				m := &pb.Message{}
				if proto.Unmarshal(it, m) != nil || m.GetType() != pb.MsgApp {
					continue
				}
				for _, e := range m.GetEntries() {
					if e.GetType() != pb.EntryNormal {
						changes[e.GetIndex()] = true
					}
				}
			}
			if len(changes) >= 2 {
				cut.Store(true)
			}
			return false
		})
		cutting.Store(true)
	}

	code, err = c.Node(0).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(2).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(2).Join(ctxT(t, 30*time.Second), code); err != nil {
		t.Fatal(err)
	}
	if lagging {
		c.Eventually(t, 30*time.Second, "3 voters on node0 and node2, node1 cut off", func() bool {
			return cut.Load() && c.Voters(0) == 3 && c.Voters(2) == 3
		})
		if c.Voters(1) != 2 {
			t.Fatalf("node1 counts %d voters, not 2", c.Voters(1))
		}
	} else {
		c.waitVoters(3)
		c.waitHost(1)
		c.sendCommitted(2, "with three voters", 30*time.Second)
		c.Eventually(t, 30*time.Second, "the three members to list the same messages", c.sameSince(1))
	}

	c.Isolate(1)
	m := c.sendCommitted(0, "node1 never got this", 60*time.Second)

	c.Crash(0)
	c.Crash(2)
	c.restoreStore(0, backup)
	c.net.Heal()
	cutting.Store(false)
	c.start(0)
	w := c.send(1, "while node2 is down", 0)
	// node1 lacks a committed message: nothing commits until node2 is
	// back.
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		for _, x := range c.committed(1) {
			if x.ID == w.ID {
				t.Fatalf("node1 committed %q without %q, which node0 and node2 committed", x.Text, m.Text)
			}
		}
	}
	c.start(2)
	c.Eventually(t, 90*time.Second, "node1 to list the message node0 and node2 committed", func() bool { return c.listsAll(1, []string{m.ID}) })
	want := 3
	if lagging {
		want = 2
	}
	c.Eventually(t, 90*time.Second, "the three members to list the same messages", c.sameSince(want))
}

// TestRestoredStaleMembership: node0 backs up a group of three voters
// (node0, node1, node2); node2 is removed and node3 joins and becomes a
// voter. node0 is lost and restored: its copy counts node2, and does not
// know node3. It must not help elect anyone its copy names that lacks what
// it acknowledged, and once a host that kept its log is back, it must catch
// up (node3 is a stranger to its copy) and take part in elections again,
// with every member listing the same messages.
func TestRestoredStaleMembership(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4, 295, simnet.LinkConfig{Latency: time.Millisecond})
	g, err := c.Node(0).CreateGroup(ctxT(t, 30*time.Second), "ours")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	for i := 1; i <= 2; i++ {
		code, err := c.Node(0).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(i).ID.Public().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Node(i).Join(ctxT(t, 30*time.Second), code); err != nil {
			t.Fatal(err)
		}
	}
	c.Eventually(t, 30*time.Second, "3 voters on node0 to node2", func() bool {
		return c.Voters(0) == 3 && c.Voters(1) == 3 && c.Voters(2) == 3
	})
	c.sendCommitted(0, "before the backup", 30*time.Second)
	backup := c.backupStore(0)

	if err := c.Node(0).Remove(ctxT(t, 30*time.Second), c.GroupID, c.Member(2).ID.Public().String()); err != nil {
		t.Fatal(err)
	}
	c.Stop(2)
	code, err := c.Node(0).Invite(ctxT(t, 30*time.Second), c.GroupID, c.Member(3).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(3).Join(ctxT(t, 30*time.Second), code); err != nil {
		t.Fatal(err)
	}
	c.waitVoters(3)
	m := c.sendCommitted(0, "acknowledged by node0", 30*time.Second)

	// node0 lost; node1 down too: node3 alone with the restored copy,
	// which does not know it, must not elect anyone.
	c.Crash(0)
	c.Crash(1)
	c.restoreStore(0, backup)
	c.start(0)
	w := c.send(3, "while node1 is down", 0)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		for _, i := range []int{0, 3} {
			for _, x := range c.committed(i) {
				if x.ID == w.ID {
					t.Fatalf("node%d committed %q with node1 down", i, x.Text)
				}
			}
		}
	}
	c.start(1)
	c.Eventually(t, 90*time.Second, "node0 to list the message it acknowledged and node3's", func() bool { return c.listsAll(0, []string{m.ID, w.ID}) })
	c.Eventually(t, 60*time.Second, "node0 to take part in elections again", func() bool {
		hold, err := node.RestoredHold(c.Node(0), c.GroupID)
		return err == nil && !hold
	})
	c.sendCommitted(0, "after the restore", 60*time.Second)
	c.Eventually(t, 60*time.Second, "the three members to list the same messages", func() bool {
		var ref string
		for k, i := range []int{0, 1, 3} {
			var after []node.Message
			for _, x := range c.committed(i) {
				if x.Text != "before the backup" {
					after = append(after, x)
				}
			}
			if k == 0 {
				ref = fmt.Sprint(len(after), nodetest.Texts(after))
			} else if fmt.Sprint(len(after), nodetest.Texts(after)) != ref {
				return false
			}
		}
		return true
	})
}
