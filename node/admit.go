package node

import (
	"errors"
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Admission of peers' raft messages. The transport (handle.go) has checked
// the envelope around them (signature over the exact bytes, group,
// recipient, replay window, that the signer is a member); admit decides, for
// each raft message inside, whether raft may see it at all. It is a pure
// function of its inputs, so that every rule is a row of a table test
// (admit_test.go) rather than a scenario.

// The reasons admit gives, as logged and counted (Status.Rejected).
const (
	reasonRaftIDNotOwned     = "raft id not owned by the signer"
	reasonForAnotherNode     = "raft message for another node"
	reasonVoteNonVoter       = "vote from a non-voter"
	reasonStaleVote          = "stale-term vote"
	reasonMalformedProposal  = "malformed proposal"
	reasonNoTerm             = "raft message without a term"
	reasonLeaderNonVoter     = "leader message from a non-voter"
	reasonHigherTermNonVoter = "higher term from a non-voter"
	reasonHeartbeatBeyondLog = "heartbeat commits beyond the log"
	reasonLogUnreadable      = "the log's last index cannot be read"
	reasonTypeNotAccepted    = "raft message type not accepted from peers"
)

// admission is what admitting one raft message depends on.
type admission struct {
	view         *view                 // the group's published view
	self         [32]byte              // this node's identity key
	raftID       uint64                // this node's raft id in the group
	sender       [32]byte              // the envelope's signer, a member
	senderRaftID uint64                // the signer's raft id
	attested     map[[32]byte]raftView // what members last reported following (attest.go)
	lastIndex    uint64                // the last index of this node's log; read for heartbeats only
	lastIndexErr error                 // the error reading it, if any
}

// admit returns "" if raft may step m, or the reason it may not (with the
// underlying error, if any).
func admit(a admission, m *pb.Message) (reason string, err error) {
	v := a.view
	if m.GetFrom() != a.senderRaftID {
		return reasonRaftIDNotOwned, nil
	}
	if m.GetTo() != a.raftID {
		return reasonForAnotherNode, nil
	}
	switch m.GetType() {
	case pb.MsgVote, pb.MsgPreVote, pb.MsgTimeoutNow:
		// Only voters campaign, and only the leader (a voter) sends
		// MsgTimeoutNow. A joiner too counts only the voters of its
		// provisional list: its own vote does not count anywhere yet, and
		// a vote at a higher term from a learner would move its term.
		if !v.countsAsVoter(a.sender) {
			return reasonVoteNonVoter, nil
		}
		// raft ignores a vote from an older term, so refusing it changes
		// nothing but the log; and it would take a vote without a term for
		// a local message.
		if m.GetTerm() == 0 || (m.GetType() == pb.MsgVote && m.GetTerm() < v.term) {
			return reasonStaleVote, nil
		}
	case pb.MsgProp:
		// Followers forward their proposals to the host; raft panics on an
		// empty one or on a configuration change it cannot decode.
		if err := checkProposal(m); err != nil {
			return reasonMalformedProposal, err
		}
	case pb.MsgApp, pb.MsgAppResp, pb.MsgVoteResp, pb.MsgPreVoteResp, pb.MsgHeartbeat, pb.MsgHeartbeatResp:
		// Only proposals travel without a term; raft would take anything
		// else without one for a local message.
		if m.GetTerm() == 0 {
			return reasonNoTerm, nil
		}
		switch m.GetType() {
		case pb.MsgApp, pb.MsgHeartbeat:
			// raft follows whoever sends these at a higher term (and takes
			// its entries): only a leader may, and a leader is a voter, or
			// one a voter vouches for while this node has not applied its
			// promotion yet (attest.go).
			if !leaderAllowed(v, a.self, a.attested, a.sender, m.GetFrom(), m.GetTerm()) {
				return reasonLeaderNonVoter, nil
			}
		default:
			// Any message at a higher term makes raft step down to that
			// term, a leader included. Learners answer only the leader, at
			// its term; a response at a higher term from one can only
			// depose the host. (An honest learner answers a leader of an
			// older term that way, to hurry its step-down; the voters'
			// answers and CheckQuorum see to that anyway.)
			if !v.countsAsVoter(a.sender) && m.GetTerm() > v.term {
				return reasonHigherTermNonVoter, nil
			}
		}
		// raft panics when a heartbeat commits beyond its log. An honest
		// host never sends one: it commits at most what this node
		// acknowledged, which is on disk and so in storage.
		if m.GetType() == pb.MsgHeartbeat {
			if a.lastIndexErr != nil {
				// Not the host's doing: a reason of its own, which the
				// host is not told (lostlog.go acts on the other one).
				return reasonLogUnreadable, a.lastIndexErr
			}
			if m.GetCommit() > a.lastIndex {
				return reasonHeartbeatBeyondLog, nil
			}
		}
	default:
		// Local-only types, snapshots, read-index and leadership transfer
		// requests: DeMeS sends none of them between nodes, so a peer has
		// no business sending them.
		return reasonTypeNotAccepted, nil
	}
	return "", nil
}

// checkProposal accepts a forwarded proposal only in the shape DeMeS makes:
// at least one entry, each a normal entry or a configuration change with
// exactly one change (what proposeConfFrame builds). raft itself panics on an
// empty proposal or an undecodable configuration change.
func checkProposal(m *pb.Message) error {
	if len(m.GetEntries()) == 0 {
		return errors.New("no entries")
	}
	for _, e := range m.GetEntries() {
		switch e.GetType() {
		case pb.EntryNormal:
		case pb.EntryConfChangeV2:
			cc := &pb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("configuration change: %w", err)
			}
			if len(cc.GetChanges()) != 1 || cc.GetTransition() != pb.ConfChangeTransitionAuto {
				return errors.New("configuration change of another shape than one single change")
			}
		default:
			return fmt.Errorf("entry of type %v", e.GetType())
		}
	}
	return nil
}
