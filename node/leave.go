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
	if _, ok := g.view.Load().members[target.Sign]; !ok {
		return fmt.Errorf("remove: %s is not a member: %w", target.Fingerprint(), ErrNotFound)
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
