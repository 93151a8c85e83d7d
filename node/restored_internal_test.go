package node

import (
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// TestRestoredHoldIgnoresStaleHosts: an append or heartbeat of a term below
// the restored node's own is one raft ignores (a deposed host's, late):
// that host is no host this node follows, and its commit index, which can
// lag the group's, is no target that says the node caught up. Noted, it
// would end the hold early and open the node's vote to that host.
func TestRestoredHoldIgnoresStaleHosts(t *testing.T) {
	// Three voters, so that no vote is granted as the other voter's of a
	// group of two (onlyOtherVoter).
	st := state.New(crypto.GroupID{})
	for i := range 3 {
		st.Members[[32]byte{byte(i + 1)}] = &state.Member{Voter: true}
	}
	g := &group{fromBackup: true, term: 7, st: st, n: &Node{}}
	msg := func(typ pb.MessageType, from, term, commit uint64) *pb.Message {
		return &pb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(9), Term: proto.Uint64(term), Commit: proto.Uint64(commit)}
	}
	if g.restoredHoldsElections(msg(pb.MsgApp, 2, 5, 3)) {
		t.Fatal("an append is held")
	}
	if g.restoredHoldsElections(msg(pb.MsgHeartbeat, 2, 6, 3)) {
		t.Fatal("a heartbeat is held")
	}
	if g.restoredTarget != 0 || g.restoredHost != 0 {
		t.Errorf("a stale host's append set the target %d and the host %d", g.restoredTarget, g.restoredHost)
	}
	if !g.restoredHoldsElections(msg(pb.MsgVote, 2, 8, 0)) {
		t.Error("the vote request of a stale host is granted")
	}
	// The host of the node's term or a later one counts.
	if g.restoredHoldsElections(msg(pb.MsgApp, 3, 7, 40)) {
		t.Fatal("an append is held")
	}
	if g.restoredTarget != 40 || g.restoredHost != 3 {
		t.Errorf("the current host's append set the target %d and the host %d, want 40 and 3", g.restoredTarget, g.restoredHost)
	}
	if g.restoredHoldsElections(msg(pb.MsgVote, 3, 8, 0)) {
		t.Error("the vote request of the host followed is dropped")
	}
}

// TestRestoredCaughtUpNeedsAnEntryOfTheTerm: the hold ends once the commit
// index reaches the target and the entry there is of the current term: a
// new host's first commit index can lag entries committed in an earlier
// term, which the restored node may have acknowledged before it was lost.
func TestRestoredCaughtUpNeedsAnEntryOfTheTerm(t *testing.T) {
	for _, c := range []struct {
		name                           string
		commit, target, commitTerm, tm uint64
		want                           bool
	}{
		{"below the target", 9, 10, 5, 5, false},
		{"at the target, an entry of an earlier term", 10, 10, 4, 5, false},
		{"past the target, an entry of an earlier term", 12, 10, 4, 5, false},
		{"at the target, an entry of the term", 10, 10, 5, 5, true},
		{"past the target, an entry of the term", 14, 10, 5, 5, true},
	} {
		if got := restoredCaughtUp(c.commit, c.target, c.commitTerm, c.tm); got != c.want {
			t.Errorf("%s: caught up = %v, want %v", c.name, got, c.want)
		}
	}
}
