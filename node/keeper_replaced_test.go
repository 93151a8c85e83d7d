package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestKeeperInviteNotReplacedByAMember: an admin adds a keeper by its
// public id (the code goes to the keeper's operator); before the keeper
// joins, a member who is no admin, in a group where every member may invite,
// invites the keeper's identity as an ordinary member, which replaces the
// open invite of that identity. The keeper's node then joins with the
// admin's keeper code. It must join as a keeper, or not at all: as an
// ordinary member it would be sealed every sender key, and its home (an
// always-on machine its owner may rent) would hold the keys to every
// message, which a keeper never does. A member's node refuses to make an
// invite that would replace an open invite of the other kind.
//
// Watched to fail without that refusal in Node.invite: the keeper joined as
// an ordinary member, and its identity opened the key of Ana's message.
// Not covered: a member's own build that commits such an invite anyway
// still turns the keeper into an ordinary member (the state machine replaces
// an open invite whatever its kind); that member reads the group already.
func TestKeeperInviteNotReplacedByAMember(t *testing.T) {
	t.Parallel()
	c := friends(t, 293, false)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Node(0).SetSettings(ctx, c.GroupID, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "ben to be allowed to invite", func() bool {
		g, ok := c.Status(1)
		return ok && g.CanInvite
	})
	keeper := c.Member(2).ID.Public().String()
	code, _, err := c.Node(0).AddKeeper(ctx, c.GroupID, keeper, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Eventually(t, 30*time.Second, "ben to see the keeper's invite", func() bool {
		invs, err := c.Node(1).Invites(c.GroupID)
		return err == nil && len(invs) == 1
	})
	// Ben's invite of the same identity, as a member, is refused: it would
	// replace the keeper's.
	if _, err := c.Node(1).Invite(ctx, c.GroupID, keeper); !errors.Is(err, node.ErrInvalid) || !strings.Contains(err.Error(), "revoke it first") {
		t.Errorf("ben's invite of the keeper as a member: %v, want refused", err)
	}
	// So is Ana's own (revoking the keeper's first lets her).
	if _, err := c.Node(0).Invite(ctx, c.GroupID, keeper); !errors.Is(err, node.ErrInvalid) {
		t.Errorf("ana's invite of the keeper as a member: %v, want refused", err)
	}
	_, jerr := c.Node(2).Join(ctx, code)
	if jerr != nil {
		t.Logf("the keeper's join refused: %v", jerr)
	}
	if jerr == nil {
		c.Eventually(t, 30*time.Second, "node0 to list the keeper", func() bool {
			g, ok := c.Status(0)
			return ok && len(g.Members) == 3
		})
		g, _ := c.Status(0)
		for _, m := range g.Members {
			if m.PublicID == keeper && !m.Keeper {
				t.Errorf("the keeper joined with its keeper code as an ordinary member")
			}
		}
	}
	// Whatever the group did, no key of Ana's is sealed to the keeper.
	if m := c.send(0, "for ben only", 20*time.Second); m.State != node.StateCommitted {
		t.Fatalf("ana's message: %s", m.State)
	}
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Node(0).LogFrames(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		env, err := crypto.Verify(e.Frame)
		if err != nil || env.Type != crypto.TypeChat {
			continue
		}
		var b state.ChatBody
		if err := state.Decode(env.Payload, &b); err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.OpenSenderKey(c.Member(2).ID, gid, b.Sealed, env.Sender); err == nil {
			t.Errorf("the keeper's identity opens the key of the message at %d", e.Index)
		}
	}
}
