package node

import (
	"context"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// TrimAppendsAfterChange has n's group gid send member to only the entries
// up to the first membership change it appends from now on: an append
// that carries later ones is cut short, or dropped if nothing is left, as
// if each were lost on the way. Heartbeats and every other member's
// appends go as before. It lasts until n stops.
func TrimAppendsAfterChange(ctx context.Context, n *Node, gid string, member identity.PublicID) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	to := state.RaftID(member.Sign)
	var change uint64
	return g.do(ctx, func() {
		g.sendFilter = func(m *pb.Message) *pb.Message {
			if m.GetType() != pb.MsgApp {
				return m
			}
			for _, e := range m.GetEntries() {
				if change == 0 && e.GetType() != pb.EntryNormal {
					change = e.GetIndex()
				}
			}
			if m.GetTo() != to || change == 0 {
				return m
			}
			var keep []*pb.Entry
			for _, e := range m.GetEntries() {
				if e.GetIndex() <= change {
					keep = append(keep, e)
				}
			}
			if len(keep) == len(m.GetEntries()) {
				return m
			}
			if len(keep) == 0 {
				return nil
			}
			m = proto.Clone(m).(*pb.Message)
			m.Entries = keep
			return m
		}
	})
}

// ChangeVoterAndSend has n, the host, propose that member of group gid
// vote (or no longer vote) and, in the same turn of the group's loop, send
// text if it is not empty: raft appends both before anything is sent or
// applied, as it does with a message that arrives while a voter change is
// on its way. A voter change keeps the membership epoch, so the message,
// sealed before it, is taken after it. From now on n's placement proposes
// no voter change of its own. It returns the message's id.
func ChangeVoterAndSend(ctx context.Context, n *Node, gid string, member identity.PublicID, voter bool, text string) (string, error) {
	g, err := n.groupByText(gid)
	if err != nil {
		return "", err
	}
	var body []byte
	if text != "" {
		if body, err = content.Encode(content.Content{Kind: content.Text, Text: text}); err != nil {
			return "", err
		}
	}
	ct := pb.ConfChangeAddNode
	if !voter {
		ct = pb.ConfChangeAddLearnerNode
	}
	var (
		msg  Message
		serr error
	)
	if err := g.do(ctx, func() {
		g.pl.keepVoters = true
		if serr = g.proposeConf(crypto.TypePromote, &state.TargetBody{Target: member.Sign[:], Voter: voter}, ct, state.RaftID(member.Sign)); serr != nil || text == "" {
			return
		}
		msg, _, _, _, serr = g.enqueue(string(body))
	}); err != nil {
		return "", err
	}
	if serr != nil {
		return "", fmt.Errorf("change a voter and send: %w", serr)
	}
	return msg.ID, nil
}

// RemoveAndTake has n, the host, propose the removal of member from group
// gid and, in the same turn of the group's loop, take frame as a proposal
// that from forwarded: it arrives while the removal is on its way.
func RemoveAndTake(ctx context.Context, n *Node, gid string, member, from identity.PublicID, frame []byte) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	var perr error
	if err := g.do(ctx, func() {
		if perr = g.proposeConf(crypto.TypeRemove, &state.TargetBody{Target: member.Sign[:]}, pb.ConfChangeRemoveNode, state.RaftID(member.Sign)); perr != nil {
			return
		}
		g.stepAll([]*pb.Message{{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(from.Sign)), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: frame}}}})
	}); err != nil {
		return err
	}
	return perr
}

// LeaveAndTake has member sign its leave of group gid, and n, the host,
// take it and then frame, member's too, as proposals member forwarded in
// one batch: the message arrives right behind the leave.
func LeaveAndTake(ctx context.Context, n, member *Node, gid string, frame []byte) error {
	mg, err := member.groupByText(gid)
	if err != nil {
		return err
	}
	leave, err := mg.signEntry(crypto.TypeLeave, &struct{}{})
	if err != nil {
		return err
	}
	from := state.RaftID(member.self.Sign)
	cc, err := proto.Marshal(&pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(from)}},
		Context: leave,
	})
	if err != nil {
		return err
	}
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	return g.do(ctx, func() {
		g.stepAll([]*pb.Message{
			{Type: pb.MsgProp.Enum(), From: proto.Uint64(from), Entries: []*pb.Entry{{Type: pb.EntryConfChangeV2.Enum(), Data: cc}}},
			{Type: pb.MsgProp.Enum(), From: proto.Uint64(from), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: frame}}},
		})
	})
}

// FloodHoldAndTake has n, the host of group gid, propose a voter change
// for target (refused or not, it is a membership change in the log) and,
// in the same turn of the group's loop, take flood junk proposals that
// rogue forwarded, then frame as author's: all arrive while the change is
// unapplied, so the hold (confhold.go) keeps them.
func FloodHoldAndTake(ctx context.Context, n *Node, gid string, target, rogue, author identity.PublicID, flood int, frame []byte) error {
	return promoteAndTake(ctx, n, gid, target, rogue, author, flood, func(i int) *pb.Entry {
		return &pb.Entry{Type: pb.EntryNormal.Enum(), Data: []byte(fmt.Sprintf("junk %d", i))}
	}, frame)
}

// StreamChangesAndTake is FloodHoldAndTake with membership changes: rogue
// forwards changes removals of target authorised by removal, count of
// them, while the host's voter change is unapplied.
func StreamChangesAndTake(ctx context.Context, n *Node, gid string, target, rogue, author identity.PublicID, changes int, removal, frame []byte) error {
	cc, err := proto.Marshal(&pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(state.RaftID(target.Sign))}},
		Context: removal,
	})
	if err != nil {
		return err
	}
	return promoteAndTake(ctx, n, gid, target, rogue, author, changes, func(int) *pb.Entry {
		return &pb.Entry{Type: pb.EntryConfChangeV2.Enum(), Data: cc}
	}, frame)
}

// promoteAndTake has n, the host of group gid, propose the promotion of
// target and, in the same turn of the group's loop, take count proposals
// rogue forwarded, the i-th holding entry(i), then frame as author's.
func promoteAndTake(ctx context.Context, n *Node, gid string, target, rogue, author identity.PublicID, count int, entry func(i int) *pb.Entry, frame []byte) error {
	g, err := n.groupByText(gid)
	if err != nil {
		return err
	}
	var perr error
	if err := g.do(ctx, func() {
		if perr = g.proposeConf(crypto.TypePromote, &state.TargetBody{Target: target.Sign[:], Voter: true}, pb.ConfChangeAddNode, state.RaftID(target.Sign)); perr != nil {
			return
		}
		ms := make([]*pb.Message, 0, count+1)
		for i := range count {
			ms = append(ms, &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(rogue.Sign)), Entries: []*pb.Entry{entry(i)}})
		}
		ms = append(ms, &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(author.Sign)), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: frame}}})
		g.stepAll(ms)
	}); err != nil {
		return err
	}
	return perr
}
