package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestLastVoterCannotLeave: the state machine refuses the removal of a
// group's last voter. The only member's leave (or its removal of itself)
// says so at once, and proposes nothing: it used to propose the change
// again every second, each refused into the log, until it timed out 30 s
// later with "not committed in time".
func TestLastVoterCannotLeave(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, 248, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 60*time.Second)
	gi, err := c.Node(0).CreateGroup(ctx, "alone")
	if err != nil {
		t.Fatal(err)
	}
	c.GroupID = gi.GroupID
	c.send(0, "talking to myself", 20*time.Second)
	for what, err := range map[string]error{
		"leave":             c.Node(0).Leave(ctx, c.GroupID),
		"remove themselves": c.Node(0).Remove(ctx, c.GroupID, c.Member(0).ID.Public().String()),
	} {
		if !errors.Is(err, node.ErrInvalid) || !strings.Contains(err.Error(), "only member") {
			t.Errorf("the only member's %s: %v, want ErrInvalid saying it is the only member", what, err)
		}
	}
	c.send(0, "still here", 20*time.Second)
	es, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if env, err := crypto.Verify(e.Frame); err == nil && (env.Type == crypto.TypeLeave || env.Type == crypto.TypeRemove) {
			t.Errorf("a removal reached the log at index %d", e.Index)
		}
	}
}
