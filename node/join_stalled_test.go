package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/node/simnet"
)

// TestJoinWhileGroupCannotCommit: a member of the invite answers the join
// but cannot commit it (the other voter of a group of two, the inviter, is
// down). The join used to ask again until its caller gave up, and the CLI
// then said that the joiner's own node "did not answer in time". It now
// gives up after Config.JoinGiveUp, saying why.
func TestJoinWhileGroupCannotCommit(t *testing.T) {
	t.Parallel()
	const giveUp = 3 * time.Second
	c, code := stalledJoinCluster(t, nodetest.Options{Seed: 373, Link: simnet.LinkConfig{Latency: time.Millisecond}}, giveUp)
	ctx := ctxT(t, 60*time.Second)
	start := time.Now()
	_, err := c.Node(2).Join(ctx, code)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("join while the group cannot commit: %v (context: %v), want a reason before the context ends", err, ctx.Err())
	}
	if took := time.Since(start); took > giveUp+25*time.Second {
		t.Errorf("the join gave up after %v, with JoinGiveUp %v", took, giveUp)
	}
	if !errors.Is(err, node.ErrUnreachable) || !strings.Contains(err.Error(), "the group cannot commit now") {
		t.Errorf("join error %q: want ErrUnreachable saying the group cannot commit now", err)
	}
}

// stalledJoinCluster is a group of two (nodes 0 and 1) that invited node 2
// and cannot commit: node 0, the inviter, has crashed. It returns the
// invite code. Node 1 answers node 2's join and waits for a commit that
// does not come; node 2 gives up a join after giveUp (Config.JoinGiveUp).
func stalledJoinCluster(t *testing.T, o nodetest.Options, giveUp time.Duration) (*nodetest.Cluster, string) {
	t.Helper()
	o.Size = 3
	c := newClusterOf(t, o, func(c *cluster) {
		c.Member(2).Tweak = func(cfg *node.Config) { cfg.JoinGiveUp = giveUp }
	})
	c.formOf("g", 2)
	ctx := ctxT(t, 60*time.Second)
	code, err := c.Node(0).Invite(ctx, c.GroupID, c.Member(2).ID.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	// The invite names node 1 too (it knows node 1's address), which
	// answers but cannot commit without node 0.
	if inv, err := node.ParseInvite(code); err != nil || len(inv.URLs) < 2 {
		t.Fatalf("the invite names %v (%v), want both members", inv, err)
	}
	c.Eventually(t, 30*time.Second, "node 1 holds the invite", func() bool {
		invs, _ := c.Node(1).Invites(c.GroupID)
		return len(invs) == 1
	})
	c.Crash(0)
	return c.Cluster, code
}
