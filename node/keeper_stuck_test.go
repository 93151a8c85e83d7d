package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestKeeperAddWhileMajorityAsleep: five members, three stopped. An
// admin's keeper add fails at once, saying that the group cannot commit
// and what to do, with nothing proposed: not after the commit timeout
// with "not committed in time (does the group have a host?)".
func TestKeeperAddWhileMajorityAsleep(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 191, simnet.LinkConfig{Latency: time.Millisecond})
	c.formOf("kept", 5)
	c.stopMajority(0)
	start := time.Now()
	_, _, err := c.Node(0).AddKeeper(ctxT(t, 60*time.Second), c.GroupID, c.Member(5).ID.Public().String(), "")
	if !errors.Is(err, node.ErrUnreachable) || !strings.Contains(err.Error(), "the group cannot commit now (3 of 5 voters offline), and nothing was committed; run the same 'demes keeper add' again") {
		t.Fatalf("keeper add with 3 of 5 voters stopped: %v, want that the group cannot commit", err)
	}
	t.Logf("keeper add failed after %v", time.Since(start).Round(time.Millisecond))
	if list, err := c.Node(0).Invites(c.GroupID); err != nil || len(list) != 0 {
		t.Errorf("invites after the failed keeper add: %+v, %v; want none", list, err)
	}
}
