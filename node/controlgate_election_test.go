package node_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// TestGateFromTheFirstProposal: a voter (the rogue) grants another voter
// the vote that makes it host and, in the same frame, forwards it settings
// entries it may not sign, 60 KiB each. raft leads from that vote on, but
// the node learns it only at its next Ready: a gate that asked the node's
// own idea of its role let the whole frame into the log, past the kind,
// role and allowance checks (and the quotas, for chat).
func TestGateFromTheFirstProposal(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 304, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(3)
	h := c.waitHost(-1)
	cand, rogue := (h+1)%3, (h+2)%3
	big := make([]byte, 60<<10)
	payload, err := state.Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for range 20 {
		f, err := c.Node(rogue).SignRaw(&crypto.Envelope{Type: crypto.TypeSettings, Group: c.gid(), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	// The campaign can lose a race on a loaded machine (the host's
	// heartbeat reaches the candidate before its own vote counts, and it
	// steps down): it is tried again. The frame of a try that did not
	// elect the candidate went to the host as any proposal does.
	var leads bool
	for try := 1; !leads; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leads, err = node.ElectAndTake(ctx, c.Node(cand), c.GroupID, c.Member(rogue).ID.Public(), frames)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if !leads && try == 10 {
			t.Fatalf("the rogue's vote did not make the candidate host in %d tries: %v", try, err)
		}
	}
	// Sent after the rogue's frame: once it commits, whatever the host
	// took of the frame has committed before it.
	after := c.sendCommitted(cand, "after the rogue's vote", 30*time.Second)
	es, err := c.Node(cand).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	took := 0
	for _, e := range es {
		for _, f := range frames {
			if bytes.Equal(e.Frame, f) {
				took++
			}
		}
	}
	t.Logf("message %s committed after the rogue's frame", after.ID)
	if took > 0 {
		t.Fatalf("the new host put %d of the rogue's %d settings entries (60 KiB each, which only an admin may sign) in the log", took, len(frames))
	}
}
