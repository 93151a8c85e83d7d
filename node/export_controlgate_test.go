package node

import (
	"context"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// ElectAndTake has n, a voter of group gid, campaign and take, in one
// turn of the group's loop, voter's grants of its pre-vote and its vote
// and then proposals voter forwarded, one for each of frames: what one
// frame from voter carries when it sends its vote, the one that decides
// the election, with proposals behind it. It reports whether n leads
// after the proposals.
func ElectAndTake(ctx context.Context, n *Node, gid string, voter identity.PublicID, frames [][]byte) (bool, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return false, err
	}
	from, to := state.RaftID(voter.Sign), g.raftID
	if err := g.do(ctx, func() {
		if g.rn.Campaign() == nil {
			st := g.rn.BasicStatus()
			g.stepAll([]*pb.Message{{Type: pb.MsgPreVoteResp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(st.GetTerm() + 1)}})
		}
	}); err != nil {
		return false, err
	}
	// This node's own pre-vote and vote count once its Ready has
	// written them: a turn of the loop each.
	for turns := 0; turns < 2; {
		var candidate bool
		if err := g.do(ctx, func() { candidate = g.rn.BasicStatus().RaftState == raft.StateCandidate }); err != nil {
			return false, err
		}
		if candidate {
			turns++
		}
	}
	var leads bool
	err = g.do(ctx, func() {
		ms := []*pb.Message{{Type: pb.MsgVoteResp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(g.rn.BasicStatus().GetTerm())}}
		for _, f := range frames {
			ms = append(ms, &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: f}}})
		}
		g.stepAll(ms)
		leads = g.rn.BasicStatus().RaftState == raft.StateLeader
	})
	return leads, err
}
