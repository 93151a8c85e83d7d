package node

import (
	"errors"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestAdmit checks each admission rule for peers' raft messages, one row per
// rule: the message a malicious or confused member could send, and whether
// raft gets to see it.
func TestAdmit(t *testing.T) {
	var (
		self    = [32]byte{1}
		voter   = [32]byte{2}
		learner = [32]byte{3}
		joiner  = [32]byte{4} // a voter of a joiner's provisional list only
	)
	const (
		selfRaft    = 11
		voterRaft   = 12
		learnerRaft = 13
		joinerRaft  = 14
		term        = 5
	)
	base := func() *view {
		return &view{
			members: map[[32]byte]viewMember{
				self:    {raftID: selfRaft, voter: true},
				voter:   {raftID: voterRaft, voter: true},
				learner: {raftID: learnerRaft},
				joiner:  {raftID: joinerRaft},
			},
			provVoters: map[[32]byte]bool{joiner: true},
			leader:     voterRaft,
			term:       term,
		}
	}
	from := func(sender [32]byte, raftID uint64) admission {
		return admission{view: base(), self: self, raftID: selfRaft, sender: sender, senderRaftID: raftID, lastIndex: 100}
	}
	msg := func(typ pb.MessageType, from uint64, term uint64) *pb.Message {
		return &pb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(selfRaft), Term: proto.Uint64(term)}
	}
	confEntry := func(changes int) *pb.Entry {
		cc := &pb.ConfChangeV2{}
		for range changes {
			cc.Changes = append(cc.Changes, &pb.ConfChangeSingle{Type: pb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(9)})
		}
		data, err := proto.Marshal(cc)
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Entry{Type: pb.EntryConfChangeV2.Enum(), Data: data}
	}
	with := func(m *pb.Message, f func(*pb.Message)) *pb.Message { f(m); return m }

	tests := []struct {
		name string
		a    admission
		m    *pb.Message
		want string
	}{
		{"voter's append at its term", from(voter, voterRaft), msg(pb.MsgApp, voterRaft, term), ""},
		{"voter's heartbeat within the log", from(voter, voterRaft), with(msg(pb.MsgHeartbeat, voterRaft, term), func(m *pb.Message) { m.Commit = proto.Uint64(100) }), ""},
		{"voter's vote request", from(voter, voterRaft), msg(pb.MsgVote, voterRaft, term+1), ""},
		{"learner's answer at the leader's term", from(learner, learnerRaft), msg(pb.MsgAppResp, learnerRaft, term), ""},
		{"forwarded proposal", from(learner, learnerRaft), with(msg(pb.MsgProp, learnerRaft, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: []byte("frame")}}
		}), ""},
		{"forwarded membership change", from(learner, learnerRaft), with(msg(pb.MsgProp, learnerRaft, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{confEntry(1)}
		}), ""},
		{"provisional voter's vote at a joiner", from(joiner, joinerRaft), msg(pb.MsgPreVote, joinerRaft, term+1), ""},

		{"another member's raft id", from(learner, learnerRaft), msg(pb.MsgApp, voterRaft, term), reasonRaftIDNotOwned},
		{"addressed to another raft id", from(voter, voterRaft), with(msg(pb.MsgApp, voterRaft, term), func(m *pb.Message) { m.To = proto.Uint64(99) }), reasonForAnotherNode},
		{"vote request from a learner", from(learner, learnerRaft), msg(pb.MsgVote, learnerRaft, term+1), reasonVoteNonVoter},
		{"leadership transfer order from a learner", from(learner, learnerRaft), msg(pb.MsgTimeoutNow, learnerRaft, term), reasonVoteNonVoter},
		{"vote without a term", from(voter, voterRaft), msg(pb.MsgPreVote, voterRaft, 0), reasonStaleVote},
		{"vote from an older term", from(voter, voterRaft), msg(pb.MsgVote, voterRaft, term-1), reasonStaleVote},
		{"empty proposal", from(learner, learnerRaft), msg(pb.MsgProp, learnerRaft, 0), reasonMalformedProposal},
		{"proposal of two membership changes at once", from(learner, learnerRaft), with(msg(pb.MsgProp, learnerRaft, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{confEntry(2)}
		}), reasonMalformedProposal},
		{"proposal of an undecodable membership change", from(learner, learnerRaft), with(msg(pb.MsgProp, learnerRaft, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{{Type: pb.EntryConfChangeV2.Enum(), Data: []byte{0xff, 0xff}}}
		}), reasonMalformedProposal},
		{"proposal of an old-style membership change", from(learner, learnerRaft), with(msg(pb.MsgProp, learnerRaft, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{{Type: pb.EntryConfChange.Enum()}}
		}), reasonMalformedProposal},
		{"append without a term", from(voter, voterRaft), msg(pb.MsgApp, voterRaft, 0), reasonNoTerm},
		{"append from a learner nobody follows", from(learner, learnerRaft), msg(pb.MsgApp, learnerRaft, term+1), reasonLeaderNonVoter},
		{"heartbeat from a learner nobody follows", from(learner, learnerRaft), msg(pb.MsgHeartbeat, learnerRaft, term), reasonLeaderNonVoter},
		{"learner's answer at a higher term", from(learner, learnerRaft), msg(pb.MsgAppResp, learnerRaft, term+1), reasonHigherTermNonVoter},
		{"heartbeat committing beyond the log", from(voter, voterRaft), with(msg(pb.MsgHeartbeat, voterRaft, term), func(m *pb.Message) { m.Commit = proto.Uint64(101) }), reasonHeartbeatBeyondLog},
		{"snapshot", from(voter, voterRaft), msg(pb.MsgSnap, voterRaft, term), reasonTypeNotAccepted},
		{"local message type", from(voter, voterRaft), msg(pb.MsgHup, voterRaft, term), reasonTypeNotAccepted},
		{"read index request", from(voter, voterRaft), msg(pb.MsgReadIndex, voterRaft, term), reasonTypeNotAccepted},
		{"leadership transfer request", from(voter, voterRaft), msg(pb.MsgTransferLeader, voterRaft, term), reasonTypeNotAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := admit(tt.a, tt.m)
			if got != tt.want {
				t.Errorf("admit = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAdmitLeaderVouchedFor checks the one way a non-voter's leader messages
// get through: a member this node counts as a voter reported following it
// at exactly that term (it was promoted and elected before this node applied
// the promotion), or this node follows it already.
func TestAdmitLeaderVouchedFor(t *testing.T) {
	self, voter, promoted := [32]byte{1}, [32]byte{2}, [32]byte{3}
	v := &view{
		members: map[[32]byte]viewMember{
			self: {raftID: 1, voter: true}, voter: {raftID: 2, voter: true}, promoted: {raftID: 3},
		},
		term: 7,
	}
	app := &pb.Message{Type: pb.MsgApp.Enum(), From: proto.Uint64(3), To: proto.Uint64(1), Term: proto.Uint64(8)}
	a := admission{view: v, self: self, raftID: 1, sender: promoted, senderRaftID: 3}
	if got, _ := admit(a, app); got != reasonLeaderNonVoter {
		t.Fatalf("without a voucher: admit = %q, want %q", got, reasonLeaderNonVoter)
	}
	a.attested = map[[32]byte]raftView{voter: {term: 7, lead: 3}}
	if got, _ := admit(a, app); got != reasonLeaderNonVoter {
		t.Fatalf("vouched for at another term: admit = %q, want %q", got, reasonLeaderNonVoter)
	}
	a.attested = map[[32]byte]raftView{promoted: {term: 8, lead: 3}}
	if got, _ := admit(a, app); got != reasonLeaderNonVoter {
		t.Fatalf("vouched for by itself: admit = %q, want %q", got, reasonLeaderNonVoter)
	}
	a.attested = map[[32]byte]raftView{voter: {term: 8, lead: 3}}
	if got, _ := admit(a, app); got != "" {
		t.Fatalf("vouched for by a voter: admit = %q, want it admitted", got)
	}
	a.attested = nil
	a.view.leader, a.view.term = 3, 8
	if got, _ := admit(a, app); got != "" {
		t.Fatalf("already followed: admit = %q, want it admitted", got)
	}
}

func TestAdmitHeartbeatWithUnreadableLog(t *testing.T) {
	self, voter := [32]byte{1}, [32]byte{2}
	v := &view{members: map[[32]byte]viewMember{self: {raftID: 1, voter: true}, voter: {raftID: 2, voter: true}}, term: 3}
	broken := errors.New("disk on fire")
	a := admission{view: v, self: self, raftID: 1, sender: voter, senderRaftID: 2, lastIndex: 50, lastIndexErr: broken}
	hb := &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(3)}
	reason, err := admit(a, hb)
	if reason != reasonLogUnreadable || !errors.Is(err, broken) {
		t.Fatalf("admit = %q, %v; want %q with the storage error", reason, err, reasonLogUnreadable)
	}
}
