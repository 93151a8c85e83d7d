package node_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/simnet"
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
	honest := 0
	r := newRogueMember(t, c, 1)
	first, sealed := r.seal(t, "registers the key", true)
	r.propose(t, first, sealed, "node0 to show the rogue's first message", func() bool {
		return c.shows(honest, "registers the key")
	})
	// The rogue's own copy moves on to counter MaxChain (Advance also
	// moves the counter it seals at), then seals without a header.
	r.key.Advance(crypto.MaxChain)
	far, sealed2 := r.seal(t, "far ahead", false)
	r.propose(t, far, sealed2, "node0 to count the far counter as malformed", func() bool {
		return c.rejectedFor(honest, "malformed")
	})
	c.send(1, "after the far one", 10*time.Second)
	c.waitShows(honest, "after the far one")
	for _, m := range c.committed(honest) {
		if m.ID == hex.EncodeToString(far[:]) || m.Text == "far ahead" {
			t.Fatalf("the honest member shows a message %d counters past its key: %+v", crypto.MaxChain, m)
		}
	}
}
