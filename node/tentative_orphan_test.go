package node_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// hostOn makes node i the host, as placement would hand over to the best
// member, and keeps it there: whoever hosts hands over to it, and it hands
// over to nobody on its placement's advice (KeepHosting).
func (c *cluster) hostOn(i int) {
	c.t.Helper()
	if err := node.KeepHosting(ctxT(c.t, 10*time.Second), c.Node(i), c.GroupID); err != nil {
		c.t.Fatal(err)
	}
	c.Eventually(c.t, time.Minute, fmt.Sprintf("node%d to host", i), func() bool {
		h := c.Host()
		if h == i || h < 0 {
			return h == i
		}
		_ = node.HandOver(ctxT(c.t, 10*time.Second), c.Node(h), c.GroupID, c.Member(i).ID.Public().Sign)
		return false
	})
}

// TestTentativeOfALostAuthorCommits: while the group cannot commit, node0's
// message reaches node1 directly and shows there, tentative. Then node0
// loses it: its store is put back from a backup taken before it sent (a
// lost laptop, restored). Only the author's outbox proposed a message to
// the log, so node1 showed it tentative for good, a message the others
// were shown and the group never ordered. A host that holds another
// member's tentative message proposes it itself once the author has had
// time to: it commits once, as node0's, on every member.
func TestTentativeOfALostAuthorCommits(t *testing.T) {
	t.Parallel()
	lostAuthorCommits(t, 193, 1)
}

// TestTentativeOfALostAuthorHeldByAFollowerCommits: as
// TestTentativeOfALostAuthorCommits, but node1, the one member that holds
// the message, does not host once the group is back: node4 does. node1
// hands the message to the host, which proposes it.
//
// Watched to fail (node1 showed the message tentative, no member listed it
// committed) before a member that does not host handed the host what it
// held (relayOrphans).
func TestTentativeOfALostAuthorHeldByAFollowerCommits(t *testing.T) {
	t.Parallel()
	lostAuthorCommits(t, 193, 4)
}

// lostAuthorCommits runs TestTentativeOfALostAuthorCommits on the seed's
// latencies, with node host hosting once the group is back.
func lostAuthorCommits(t *testing.T, seed int64, host int) {
	c := newCluster(t, 5, seed, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(5)
	c.send(0, "before", 10*time.Second)
	backup := c.backupStore(0)
	c.stopMajority(0, 1)
	m := c.sendHeldBy1("held by node1 alone")
	c.Crash(0)
	c.restoreStore(0, backup)
	for _, i := range []int{2, 3, 4} {
		c.start(i)
	}
	c.start(0)
	c.hostOn(host)
	c.Eventually(t, time.Minute, "node0's message, held by node1 alone, to commit on every member", func() bool {
		for _, i := range c.Live() {
			if got, ok := c.listed(i)[m.ID]; !ok || got.State != node.StateCommitted {
				return false
			}
		}
		return true
	})
	ref := c.converged(2)
	n := 0
	for _, x := range ref {
		if x.ID == m.ID {
			n++
			if x.Text != m.Text || x.Author != c.Member(0).ID.Public().String() {
				t.Errorf("the message committed as %q by %s, want %q by node0", x.Text, x.Author, m.Text)
			}
		}
	}
	if n != 1 {
		t.Errorf("node0's message is committed %d times, want once: %s", n, tentTexts(ref))
	}
}

// TestTentativeOfAKeeperNotShownNorProposed: a keeper reads nothing and
// takes no part in the conversation: the state machine refuses a chat
// entry it signs. A rogue keeper seals a message to the members and hands
// it to them tentative. It must not be shown; and the host, which proposes
// the tentative messages it holds of other members, must not put it in
// the log (refused, unquoted, at every retry).
func TestTentativeOfAKeeperNotShownNorProposed(t *testing.T) {
	t.Parallel()
	c := friends(t, 197, true)
	c.Eventually(t, 30*time.Second, "3 voters on node0", func() bool {
		return c.Voters(0) == 3
	})
	c.send(0, "hello ben", 10*time.Second)
	c.hostOn(0)
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	// The epoch: that of node0's committed message.
	var epoch uint64
	es, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat {
			var b state.ChatBody
			if state.Decode(env.Payload, &b) == nil {
				if info, err := crypto.ReadSealed(b.Sealed); err == nil {
					epoch = info.Epoch
				}
			}
		}
	}
	keeper := c.Member(2).ID
	key := crypto.NewSenderKey(gid, keeper.Public().Sign, epoch)
	id := crypto.NewMessageID()
	readers := []identity.PublicID{c.Member(0).ID.Public(), c.Member(1).ID.Public()}
	sort.Slice(readers, func(i, j int) bool { return readers[i].Compare(readers[j]) < 0 })
	now := time.Now().UnixNano()
	sealed, err := crypto.SealMessage(keeper, &crypto.Message{Group: gid, ID: id, Time: now, Body: []byte("keeper speaks")}, key, readers)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := state.Encode(&state.ChatBody{ID: id[:], Sealed: sealed})
	frame, err := crypto.Sign(keeper, &crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: body, Counter: uint64(now), Time: now})
	if err != nil {
		t.Fatal(err)
	}
	type item struct {
		_     struct{} `cbor:",toarray"`
		Order uint64
		Frame []byte
	}
	type items struct {
		_     struct{} `cbor:",toarray"`
		Items []item
	}
	payload, _ := state.Encode(&items{Items: []item{{Order: 1000, Frame: frame}}})
	for _, to := range []int{0, 1} {
		env, err := crypto.Sign(keeper, &crypto.Envelope{Type: crypto.TypeTentative, Group: gid, To: c.Member(to).ID.Public().Sign,
			Payload: payload, Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano()})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Node(to).HandleFrame(ctxT(t, 10*time.Second), env)
	}
	time.Sleep(8 * time.Second) // orphanAfter, and then some
	for _, i := range []int{0, 1} {
		for _, m := range c.listed(i) {
			if m.Text == "keeper speaks" {
				t.Errorf("node%d shows the keeper's message (%s)", i, m.State)
			}
		}
	}
	es, err = c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if env, err := crypto.Verify(e.Frame); err == nil && env.Type == crypto.TypeChat && env.Sender == keeper.Public().Sign {
			t.Errorf("the log holds a chat entry of the keeper at %d, which the state machine refuses", e.Index)
		}
	}
}
