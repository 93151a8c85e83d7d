package node_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// TestCatchUpOpensWhatItShows: a member that was away catches up on many
// entries in one go, and checks their signatures and opens their messages
// on every core before it applies them (precheck.go). Meanwhile a member
// committed a copy of one of its own messages under a new id: the envelope
// is good and its sender key registered, so the state machine accepts it,
// and only opening it fails (each message's key is derived from its id).
// The member catching up must list every honest message and not the copy,
// and count the copy once, as the members that were online did; and its
// catch-up must have gone through precheck, or this test would not cover
// it. (Whether a worker or the group's goroutine opens each message
// depends on the scheduler: TestPrecheckOpenedOnlyForSameInputs covers
// the use of what a worker opened.)
func TestCatchUpOpensWhatItShows(t *testing.T) {
	t.Parallel()
	const away = 2
	c := newCluster(t, 3, 171, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.send(1, "before", 10*time.Second)
	c.Stop(away)
	var want []string
	for k := range 40 {
		want = append(want, c.send(k%2, fmt.Sprintf("while away %d", k), 10*time.Second).ID)
	}

	// Node1's copy of its latest message, under a new id.
	frames, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	for _, e := range frames {
		env, err := crypto.Verify(e.Frame)
		if err != nil || env.Type != crypto.TypeChat || env.Sender != c.Member(1).ID.Public().Sign {
			continue
		}
		var b state.ChatBody
		if err := state.Decode(env.Payload, &b); err != nil {
			t.Fatal(err)
		}
		sealed = b.Sealed
	}
	copyID := crypto.NewMessageID()
	body, err := state.Encode(&state.ChatBody{ID: copyID[:], Sealed: sealed})
	if err != nil {
		t.Fatal(err)
	}
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := c.Node(1).SignRaw(&crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: body})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 60*time.Second)
	c.Eventually(t, 30*time.Second, "node0 to count the copy it could not open", func() bool {
		if openFailures(c.Node(0)) > 0 {
			return true
		}
		_ = c.Node(1).ProposeRaw(ctx, c.GroupID, forged) // again, until committed
		return false
	})
	for k := range 10 {
		want = append(want, c.send(k%2, fmt.Sprintf("after the copy %d", k), 10*time.Second).ID)
	}

	c.start(away)
	c.Eventually(t, 30*time.Second, "the member back to list every message", func() bool {
		ms, err := c.Committed(away)
		if err != nil {
			return false
		}
		listed := map[string]bool{}
		for _, m := range ms {
			listed[m.ID] = true
		}
		for _, id := range want {
			if !listed[id] {
				return false
			}
		}
		return true
	})
	for _, m := range c.committed(away) {
		if m.ID == hex.EncodeToString(copyID[:]) {
			t.Fatalf("the member back lists the copy (index %d)", m.Index)
		}
	}
	if n := openFailures(c.Node(away)); n != 1 {
		t.Errorf("the member back counted %d messages it could not open, want 1 (the copy)", n)
	}
	st, err := node.GroupLogStats(c.Node(away), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Prechecked == 0 {
		t.Error("the member back delivered no message checked ahead: the catch-up did not go through precheck")
	}
}

// openFailures is how many committed messages n counted as not opening.
func openFailures(n *node.Node) int64 {
	var sum int64
	for reason, k := range n.Status().Rejected {
		if strings.HasPrefix(reason, "open message") {
			sum += k
		}
	}
	return sum
}

// TestPrecheckLeavesOwnMessages: a member's own messages, queued while the
// group could not commit, commit together when it can again. The member
// sealed them itself and knows what opening them gives, so precheck's
// workers must not check their records' signatures again (a fifth of a
// five-member group's record checks under load), and the member must still
// list every one of them.
func TestPrecheckLeavesOwnMessages(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 173, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3) // so that node0 alone cannot commit
	c.send(0, "before", 10*time.Second)
	c.Stop(1)
	c.Stop(2)
	ctx := ctxT(t, 60*time.Second)
	const queued = 64
	var want []string
	for k := range queued {
		m, err := c.Node(0).Send(ctx, c.GroupID, fmt.Sprintf("queued %d", k), 0)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
	}
	c.start(1)
	c.start(2)
	c.Eventually(t, 30*time.Second, "node0 to list its queued messages committed", func() bool { return c.listsAll(0, want) })
	st, err := node.GroupLogStats(c.Node(0), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Prechecked == 0 {
		t.Fatal("node0 committed its queued messages in Readies too small for precheck: the test covers nothing")
	}
	if st.OwnAhead != 0 {
		t.Errorf("precheck's workers were handed %d of node0's own messages to open, want 0", st.OwnAhead)
	}
	// The members that did not seal them open them ahead as usual.
	c.Eventually(t, 30*time.Second, "node1 to list node0's queued messages", func() bool { return c.listsAll(1, want) })
}

// listsAll reports whether node i lists every message of ids as committed.
func (c *cluster) listsAll(i int, ids []string) bool {
	ms, err := c.Committed(i)
	if err != nil {
		return false
	}
	listed := make(map[string]bool, len(ms))
	for _, m := range ms {
		listed[m.ID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			return false
		}
	}
	return true
}
