package node_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// TestFarCounterRefused: a member registers a sender key with a proper
// message, then sends a message under the same key at a counter
// crypto.MaxChain past it, which would make every reader step the chain
// that many times (billions, without the bound). The group commits it
// (the state machine cannot read it), but every member refuses to open it
// as malformed, counts it with the reason, and goes on: the next message
// is shown.
func TestFarCounterRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 22, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(2)
	rogue, honest := c.Member(1).ID, 0
	stats, err := node.GroupLogStats(c.Node(1), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	key := crypto.NewSenderKey(gid, rogue.Public().Sign, stats.Epoch)
	members := []identity.PublicID{c.Member(0).ID.Public(), rogue.Public()}
	propose := func(text string, header []identity.PublicID) [16]byte {
		t.Helper()
		id := crypto.NewMessageID()
		sealed, err := crypto.SealMessage(rogue, &crypto.Message{Group: gid, ID: id, Time: time.Now().UnixNano(), Body: []byte(text)}, key, header)
		if err != nil {
			t.Fatal(err)
		}
		body, err := state.Encode(&state.ChatBody{ID: id[:], Sealed: sealed})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := c.Node(1).SignRaw(&crypto.Envelope{Type: crypto.TypeChat, Group: gid, Payload: body})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Node(1).ProposeRaw(ctxT(t, 10*time.Second), c.GroupID, frame); err != nil {
			t.Fatal(err)
		}
		return id
	}
	propose("registers the key", members)
	c.Eventually(t, 10*time.Second, "the honest member shows the rogue's first message", func() bool {
		for _, m := range c.committed(honest) {
			if m.Text == "registers the key" {
				return true
			}
		}
		return false
	})
	// The rogue's own copy moves on to counter MaxChain (Advance also
	// moves the counter it seals at), then seals without a header.
	key.Advance(crypto.MaxChain)
	far := propose("far ahead", nil)
	c.send(1, "after the far one", 10*time.Second)
	c.Eventually(t, 10*time.Second, "the honest member shows the next message", func() bool {
		for _, m := range c.committed(honest) {
			if m.Text == "after the far one" {
				return true
			}
		}
		return false
	})
	for _, m := range c.committed(honest) {
		if m.ID == hex.EncodeToString(far[:]) || m.Text == "far ahead" {
			t.Fatalf("the honest member shows a message %d counters past its key: %+v", crypto.MaxChain, m)
		}
	}
	counted := false
	for reason, n := range c.Node(honest).Status().Rejected {
		if n > 0 && strings.Contains(reason, "malformed") {
			counted = true
		}
	}
	if !counted {
		t.Fatalf("the far counter is not counted: %v", c.Node(honest).Status().Rejected)
	}
}
