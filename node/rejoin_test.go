package node_test

import (
	"os"
	"testing"
	"time"

	"github.com/demes/demes/node/simnet"
)

// TestRejoinAfterRemoval: a removed member that is invited again joins with
// a new store, and the log it then receives holds its own earlier removal.
// Once its new join is applied it is a member like any other: it sends, and
// its status does not say it left. (Before the fix, the old removal marked
// the node as gone for good: it refused to send, stopped placement,
// addresses and checkpoints, and showed the role "left".)
func TestRejoinAfterRemoval(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 63, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Node(0).Remove(ctx, c.GroupID, c.Member(2).ID.Public().String()); err != nil {
		t.Fatal(err)
	}
	c.Crash(2)
	if err := os.RemoveAll(c.Member(2).Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.Member(2).Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c.start(2)
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(2).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(2).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	if g, _ := c.Status(2); g.Role == "left" {
		t.Errorf("the member that joined again shows the role %q", g.Role)
	}
	c.send(2, "back again", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the message to reach node0", func() bool {
		for _, m := range c.committed(0) {
			if m.Text == "back again" {
				return true
			}
		}
		return false
	})
}

// TestRejoinFromOldStore: a member that left keeps its store (and its
// history); invited back, it joins through a member like anyone and its log
// grows on from where it stopped. (Before, Join saw the group in its store
// and waited to be a member, contacting nobody, until the caller gave up.)
func TestRejoinFromOldStore(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 64, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	ctx := ctxT(t, 60*time.Second)
	c.send(0, "before", 10*time.Second)
	if err := c.Node(2).Leave(ctx, c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.send(0, "while away", 10*time.Second)
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(2).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(2).Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	c.send(2, "back again", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the message to reach node0", func() bool {
		for _, m := range c.committed(0) {
			if m.Text == "back again" {
				return true
			}
		}
		return false
	})
	for _, m := range c.committed(2) {
		if m.Text == "while away" {
			t.Fatal("the member reads what was sent while it was not one")
		}
	}
}

// TestConcurrentJoins: the same invite joined twice at once on one node (a
// person clicking Join twice, a retry while the first still runs) starts one
// group runtime, not two. (Before the fix, each join that got a reply
// started its own raft over the same store and registered it in turn; the
// first was never stopped, and the node's Close waited for it forever.)
func TestConcurrentJoins(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 65, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 60*time.Second)
	g, err := c.Node(0).CreateGroup(ctx, "twice")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = g.GroupID
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(1).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for k := 0; k < 4; k++ {
		go func() {
			_, err := c.Node(1).Join(ctx, code)
			errs <- err
		}()
	}
	ok := 0
	for k := 0; k < 4; k++ {
		if err := <-errs; err == nil {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no join succeeded")
	}
	c.send(1, "joined once", 10*time.Second)
	closed := make(chan struct{})
	go func() {
		c.Stop(1)
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("the node did not close: a group runtime was left running")
	}
}

// TestRemovedBySurvivesRestart: a member an admin removed says so, and
// names the admin, after a clean stop and a start too. (The restart
// restores the group from its snapshot, which records that the member went
// but not who sent it away; applying it once wiped the record, and status
// said "left".)
func TestRemovedBySurvivesRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 65, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	if err := c.Node(0).Remove(ctxT(t, 60*time.Second), c.GroupID, c.Member(2).ID.Public().String()); err != nil {
		t.Fatal(err)
	}
	admin := c.Member(0).ID.Public().String()
	removedBy := func() string {
		gs := c.Node(2).Groups()
		if len(gs) != 1 || !gs[0].Left {
			return ""
		}
		return gs[0].RemovedBy
	}
	c.Eventually(t, 30*time.Second, "node2 to say node0 removed it", func() bool { return removedBy() == admin })
	c.Stop(2)
	c.start(2)
	if got := removedBy(); got != admin {
		t.Fatalf("after a restart node2 says it was removed by %q, want %q (node0)", got, admin)
	}
	if g, _ := c.Status(2); g.Role != "left" || g.RemovedBy != admin {
		t.Fatalf("after a restart node2's status says role %q, removed by %q", g.Role, g.RemovedBy)
	}
}
