package node

import (
	"context"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Remove removes a member from the group. Only admins may remove other
// members (everyone may remove themselves: see Leave); the rule is checked
// by every member when the change is applied. It returns once the
// removal is committed: from the next message on, the removed member is no
// longer a recipient.
func (n *Node) Remove(ctx context.Context, groupID, publicID string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	target, err := identity.ParsePublicID(publicID)
	if err != nil {
		return fmt.Errorf("remove: %v: %w", err, ErrInvalid)
	}
	t := crypto.TypeRemove
	if target == n.self {
		t = crypto.TypeLeave
	} else if !g.view.Load().admin {
		return fmt.Errorf("remove: only admins may remove members; ask an admin, or leave the group yourself: %w", ErrForbidden)
	}
	return n.removeMember(ctx, g, target, t)
}

// Leave removes this node from the group.
func (n *Node) Leave(ctx context.Context, groupID string) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	return n.removeMember(ctx, g, n.self, crypto.TypeLeave)
}

func (n *Node) removeMember(ctx context.Context, g *group, target identity.PublicID, t crypto.Type) error {
	v := g.view.Load()
	tm, ok := v.members[target.Sign]
	if !ok {
		return fmt.Errorf("remove: %s is not a member: %w", target.Fingerprint(), ErrNotFound)
	}
	// The state machine refuses to remove the last voter (nobody would be
	// left to commit anything); proposed anyway, the change was refused
	// again every second until the request timed out, 30 s later.
	if err := lastVoter(v, tm, t == crypto.TypeLeave); err != nil {
		return err
	}
	var body any = &state.TargetBody{Target: target.Sign[:]}
	if t == crypto.TypeLeave {
		body = &struct{}{}
	}
	gone := func(v *view) bool { _, ok := v.members[target.Sign]; return !ok }
	return n.commitUntil(ctx, g, "remove", refusedWhy, gone, func() error {
		return g.proposeConf(t, body, pb.ConfChangeRemoveNode, state.RaftID(target.Sign))
	})
}

// lastVoter returns why the member m of the group in view v cannot be
// removed (or leave, with leave set) when it is the group's last voter, or
// nil.
func lastVoter(v *view, m viewMember, leave bool) error {
	if !m.voter {
		return nil
	}
	for k, o := range v.members {
		if o.voter && k != m.id.Sign {
			return nil
		}
	}
	switch {
	case leave && len(v.members) == 1:
		return fmt.Errorf("this node is the only member of group %q, and a group needs one, so it stays (invite someone first if others should keep it): %w", v.name, ErrInvalid)
	case leave:
		return fmt.Errorf("this node is the last voter of group %q, and a group needs one (the group makes other members voters as they come online: try again once one is): %w", v.name, ErrInvalid)
	default:
		return fmt.Errorf("%s is the last voter of group %q, and a group needs one (try again once another member is a voter): %w", m.name, v.name, ErrInvalid)
	}
}
