package node_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// TestHostHoldsMessagesWhileAShrinkIsUnapplied: a group of at most two
// voters swaps one: the host promotes the learner, then demotes the other
// voter, which leaves a pair, and a message arrives in the same turn as the
// demotion. raft counts a host's acknowledgements by the configuration it
// applied, so without a hold the message commits on the word of the member
// demoted, while the new voter never got it (its appends stop at the
// demotion here, as if lost). The new voter then says it holds every entry
// the pair committed (pingPair); the host, lost and restored from a backup
// older than the demotion, elects it on that word, and the message,
// committed and shown, is gone from the group's history.
//
// Watched to fail (the host and the member demoted listed the message, the
// group after the restore did not) without the hold (confhold.go).
func TestHostHoldsMessagesWhileAShrinkIsUnapplied(t *testing.T) {
	t.Parallel()
	c := pairAndLearner(t, 299)
	const h, gone, kept = 0, 1, 2
	c.hostOn(h)
	if _, err := node.ChangeVoterAndSend(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(kept).ID.Public(), true, ""); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "three voters", func() bool {
		return c.Voters(0) == 3 && c.Voters(1) == 3 && c.Voters(2) == 3
	})
	c.sendCommitted(h, "before the backup", 10*time.Second)
	c.converged(1)
	backup := c.backupStore(h)

	if err := node.TrimAppendsAfterChange(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(kept).ID.Public()); err != nil {
		t.Fatal(err)
	}
	// The member demoted answers first, as a nearer one does.
	c.net.SetLink(c.Member(kept).URL, c.Member(h).URL, simnet.LinkConfig{Latency: 100 * time.Millisecond})
	id, err := node.ChangeVoterAndSend(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(gone).ID.Public(), false, "sent while the demotion is on its way")
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "the host and the new voter to apply the demotion", func() bool {
		return c.Voters(h) == 2 && c.Voters(kept) == 2
	})
	if c.Host() != h {
		t.Skipf("node%d no longer hosts: the scenario needs the member lost to be the host", h)
	}
	var seen []string
	for _, i := range []int{h, gone} {
		if c.listsAll(i, []string{id}) {
			seen = append(seen, fmt.Sprintf("node%d", i))
		}
	}

	// The host lost and restored from its backup; the new voter hosts.
	c.Crash(h)
	c.Stop(gone)
	c.restoreStore(h, backup)
	c.start(h)
	after := c.sendCommitted(kept, "after the restore", 60*time.Second)
	c.Eventually(t, time.Minute, "the restored member to list the message after the restore", func() bool {
		return c.listsAll(h, []string{after.ID})
	})
	if len(seen) > 0 && !c.listsAll(kept, []string{id}) {
		t.Fatalf("%v listed the message as committed; the group lost it after the restore", seen)
	}
}

// TestHeldProposalsPassTheGateAfterTheChange: a member's message sealed in
// the current membership epoch reaches the host while the removal of
// another member, which opens a new epoch, is on its way. Appended after
// the removal, it is refused by every member's state machine: a junk entry
// in every log, which counts against no quota. The host holds it until the
// removal is applied (confhold.go) and puts it through its gate then,
// against the new epoch: it is dropped there; its author seals it again
// for the new epoch.
//
// Watched to fail (the message's frame in the log, refused) with the gate
// passed as the message arrived.
func TestHeldProposalsPassTheGateAfterTheChange(t *testing.T) {
	t.Run("the host's removal", func(t *testing.T) {
		t.Parallel()
		heldPassTheGate(t, 300, func(c *cluster, h, author, gone int, m handMade) error {
			return node.RemoveAndTake(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(gone).ID.Public(), c.Member(author).ID.Public(), m.frame)
		})
	})
	// The leave and the message in one batch from the member leaving:
	// what follows a membership change a member forwarded is held too.
	t.Run("a member's leave", func(t *testing.T) {
		t.Parallel()
		heldPassTheGate(t, 301, func(c *cluster, h, author, gone int, m handMade) error {
			return node.LeaveAndTake(ctxT(t, 10*time.Second), c.Node(h), c.Node(author), c.GroupID, m.frame)
		})
	})
}

// heldPassTheGate runs TestHeldProposalsPassTheGateAfterTheChange: node1's
// message, sealed before the change, reaches node0, the host, in the same
// turn as the change that take makes (a member leaves the group).
func heldPassTheGate(t *testing.T, seed int64, take func(c *cluster, h, author, gone int, m handMade) error) {
	c, m := sealedOnHost(t, seed, "sealed before the change")
	const h, author, gone = 0, 1, 2
	if err := take(c, h, author, gone, m); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "the change applied on the host", func() bool {
		sh, _ := c.Status(h)
		return len(sh.Members) == 2
	})
	// Committed after the message, had the host appended it.
	c.sendCommitted(h, "after the change", 10*time.Second)
	if at, ok, err := c.logIndexOf(h, m.frame); err != nil {
		t.Fatal(err)
	} else if ok {
		t.Fatalf("the host put a message sealed in the epoch the change closed into the log (index %d), where every member refuses it", at)
	}
}

// TestOneMemberCannotFillTheHold: while a membership change is unapplied,
// a member forwards the host as many junk proposals as the hold takes
// (maxHeldProposals); another member's message arrives after them. The
// hold is shared: the message is dropped, and so is every message that
// arrives while the change is unapplied, each time the member does it
// again. Each member has its share of the hold, so the message is kept
// and released with the rest (the junk is dropped at the gate then).
func TestOneMemberCannotFillTheHold(t *testing.T) {
	t.Parallel()
	c, m := sealedOnHost(t, 302, "sent while the hold is full of junk")
	const h, author, rogue = 0, 1, 2
	if err := node.FloodHoldAndTake(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(author).ID.Public(), c.Member(rogue).ID.Public(), c.Member(author).ID.Public(), 4096, m.frame); err != nil {
		t.Fatal(err)
	}
	after := c.sendCommitted(h, "after the flood", 10*time.Second)
	c.Eventually(t, 30*time.Second, "the author to list the host's message", func() bool {
		return c.listsAll(author, []string{after.ID})
	})
	if _, ok, err := c.logIndexOf(h, m.frame); err != nil {
		t.Fatal(err)
	} else if !ok {
		t.Fatal("the host dropped a member's message that arrived while another member's junk filled the hold")
	}
}

// TestStreamedChangesDoNotHoldTheOthers: while a membership change is
// unapplied, a member forwards many membership changes (refused by the
// state machine, but membership changes in raft's log all the same), then
// another member's message arrives. raft takes one change at a time: the
// first is appended as the hold is released and the others become empty
// entries, so the message is appended behind one change. Were each change
// held again behind the one before, each would cost the message a commit
// round, for as long as the member goes on.
func TestStreamedChangesDoNotHoldTheOthers(t *testing.T) {
	t.Parallel()
	c, m := sealedOnHost(t, 303, "sent behind a stream of changes")
	const h, author, rogue = 0, 1, 2
	target := c.Member(author).ID.Public().Sign
	payload, err := state.Encode(&state.TargetBody{Target: target[:]})
	if err != nil {
		t.Fatal(err)
	}
	removal, err := c.Node(rogue).SignRaw(&crypto.Envelope{Type: crypto.TypeRemove, Group: c.gid(), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.StreamChangesAndTake(ctxT(t, 10*time.Second), c.Node(h), c.GroupID, c.Member(author).ID.Public(), c.Member(rogue).ID.Public(), c.Member(author).ID.Public(), 50, removal, m.frame); err != nil {
		t.Fatal(err)
	}
	var at uint64
	c.Eventually(t, 60*time.Second, "the message in the host's log", func() bool {
		var ok bool
		at, ok, _ = c.logIndexOf(h, m.frame)
		return ok
	})
	es, err := c.Node(h).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	streamed := 0
	for _, e := range es {
		if e.Index < at && bytes.Equal(e.Frame, removal) {
			streamed++
		}
	}
	if streamed > 1 {
		t.Fatalf("the message waited behind %d of the changes the member streamed, a commit round each", streamed)
	}
}

// sealedOnHost forms a group of three on the seed's latencies, node0 (its
// creator, an admin) hosting, and returns it with a message of node1's
// sealed in the current membership epoch and not sent: the tests hand it
// to the host themselves.
func sealedOnHost(t *testing.T, seed int64, text string) (*cluster, handMade) {
	c := newCluster(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	const h, author = 0, 1
	c.hostOn(h)
	c.sendCommitted(author, "before", 10*time.Second)
	epoch, _ := c.epochAndApplied(h)
	key := crypto.NewSenderKey(c.gid(), c.Member(author).ID.Public().Sign, epoch)
	return c, c.sealChat(author, key, true, 0, text)
}

// logIndexOf returns the index of the committed entry of node i's log
// whose frame is frame, and whether there is one.
func (c *cluster) logIndexOf(i int, frame []byte) (uint64, bool, error) {
	es, err := c.Node(i).LogFrames(c.GroupID)
	if err != nil {
		return 0, false, err
	}
	for _, e := range es {
		if bytes.Equal(e.Frame, frame) {
			return e.Index, true, nil
		}
	}
	return 0, false, nil
}
