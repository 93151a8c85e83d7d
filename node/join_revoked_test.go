package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// A revoked invite does not let its invitee in (the members refuse its join
// challenge), and the joiner says so and stops, rather than asking again
// until its context ends: the inviter, which committed the invite before it
// made the code, refusing the challenge is final.
func TestJoinWithRevokedInvite(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 15, simnet.LinkConfig{Latency: time.Millisecond})
	ctx := ctxT(t, 60*time.Second)
	gi, err := c.Node(0).CreateGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	joiner := c.Member(1).ID.Public().String()
	code, err := c.Node(0).Invite(ctx, gi.GroupID, joiner)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node(0).RevokeInvite(ctx, gi.GroupID, code); err != nil {
		t.Fatal(err)
	}
	_, err = c.Node(1).Join(ctx, code)
	if !errors.Is(err, node.ErrForbidden) || ctx.Err() != nil {
		t.Fatalf("join with a revoked invite: %v (context: %v), want a refusal before the context ends", err, ctx.Err())
	}
	if invs, _ := c.Node(0).Invites(gi.GroupID); len(invs) != 0 {
		t.Errorf("open invites after the revocation: %v", invs)
	}
	// A new invite lets it in.
	code, err = c.Node(0).Invite(ctx, gi.GroupID, joiner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Join(ctx, code); err != nil {
		t.Fatalf("join with a fresh invite after a revoked one: %v", err)
	}
}
