package node

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// preCandidate returns a group whose raft (node 2 of voters 1 to 5, term 1)
// has just started an election on its own: the Ready that asks for
// pre-votes.
func preCandidate(t *testing.T) (*group, raft.Ready) {
	t.Helper()
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index: proto.Uint64(1), Term: proto.Uint64(1),
		ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3, 4, 5}},
	}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 2, ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 2, CheckQuorum: true, PreVote: true, Logger: raftLogger{zerolog.Nop()}})
	if err != nil {
		t.Fatal(err)
	}
	g := &group{n: &Node{log: zerolog.Nop()}, id: crypto.GroupID{7}, rn: rn, raftID: 2, timing: LAN, storage: &logStore{mem: ms}}
	return g, campaign(t, g)
}

// campaign starts an election on g's raft, as its timer does, and returns
// the Ready with its pre-vote requests, advanced.
func campaign(t *testing.T, g *group) raft.Ready {
	t.Helper()
	if err := g.rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	rd := g.rn.Ready()
	if preVotes(rd.Messages) != 4 {
		t.Fatalf("the election asks %d members for pre-votes: %v", preVotes(rd.Messages), rd.Messages)
	}
	g.rn.Advance(rd)
	return rd
}

func preVotes(msgs []*pb.Message) int {
	n := 0
	for _, m := range msgs {
		if m.GetType() == pb.MsgPreVote {
			n++
		}
	}
	return n
}

// TestRankedPreVotes: a follower whose election timer fires holds its
// pre-vote requests back for its place among the backups times the stagger
// (two heartbeats on a LAN without round trips measured), counted from the
// first time it asked in that term, and sends them then if it still runs
// that election; the best backup holds nothing; requests are dropped once
// raft has moved on (here: it voted for a better backup's election).
func TestRankedPreVotes(t *testing.T) {
	stagger := 2 * LAN.heartbeat()
	rank := func(r int) func() (int, bool) { return func() (int, bool) { return r, true } }
	t0 := time.Now()

	g, rd := preCandidate(t)
	if out := g.holdPreVotesRanked(rd.Messages, t0, rank(0)); preVotes(out) != 4 {
		t.Fatalf("the best backup held its pre-votes: %d of 4 go", preVotes(out))
	}

	g, rd = preCandidate(t)
	if out := g.holdPreVotesRanked(rd.Messages, t0, rank(2)); preVotes(out) != 0 {
		t.Fatalf("the third backup sent %d pre-votes at once", preVotes(out))
	}
	if due := g.preVotesDue(t0.Add(2*stagger - time.Millisecond)); len(due) != 0 {
		t.Fatalf("%d pre-votes went before two staggers", len(due))
	}
	// Its timer fires again in the same term: the wait runs from the first.
	rd = campaign(t, g)
	if out := g.holdPreVotesRanked(rd.Messages, t0.Add(stagger), rank(2)); preVotes(out) != 0 {
		t.Fatalf("the timer's second firing sent %d pre-votes", preVotes(out))
	}
	if due := g.preVotesDue(t0.Add(2 * stagger)); preVotes(due) != 4 {
		t.Fatalf("after two staggers %d pre-votes go, want 4", preVotes(due))
	}
	if due := g.preVotesDue(t0.Add(3 * stagger)); len(due) != 0 {
		t.Fatalf("the pre-votes went twice")
	}
	// Once the wait is over, the next firing in the term asks at once.
	rd = campaign(t, g)
	if out := g.holdPreVotesRanked(rd.Messages, t0.Add(3*stagger), rank(2)); preVotes(out) != 4 {
		t.Fatalf("after the wait the pre-votes were held again: %d go", preVotes(out))
	}

	// A better backup's vote request arrives while they are held: this
	// node votes for it, and its own requests are dropped.
	g, rd = preCandidate(t)
	g.holdPreVotesRanked(rd.Messages, t0, rank(1))
	if err := g.rn.Step(&pb.Message{Type: pb.MsgVote.Enum(), From: proto.Uint64(3), To: proto.Uint64(2),
		Term: proto.Uint64(2), Index: proto.Uint64(1), LogTerm: proto.Uint64(1)}); err != nil {
		t.Fatal(err)
	}
	if st := g.rn.BasicStatus(); st.RaftState != raft.StateFollower || st.GetVote() != 3 {
		t.Fatalf("raft is %s, voted for %d; want a follower that voted for 3", st.RaftState, st.GetVote())
	}
	if due := g.preVotesDue(t0.Add(stagger)); len(due) != 0 {
		t.Fatalf("%d pre-votes of an election raft gave up went anyway", len(due))
	}
}

// TestPreVotesSkipMembersBehind: a vote or pre-vote request from a log
// behind this node's names its sender among the members not waited for,
// from the term it asks for on; a later request from a log as long as this
// node's takes it back.
func TestPreVotesSkipMembersBehind(t *testing.T) {
	g, _ := preCandidate(t) // its log ends at index 1, term 1
	ids := seededIdentities(t, 5)
	g.st = state.New(g.id)
	for i, id := range ids {
		k := id.Public().Sign
		g.st.Members[k] = &state.Member{ID: id.Public(), RaftID: uint64(i + 1), Voter: true}
	}
	ask := func(typ pb.MessageType, from, term, logTerm, index uint64) {
		g.noteVoteRequest(&pb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(2),
			Term: proto.Uint64(term), LogTerm: proto.Uint64(logTerm), Index: proto.Uint64(index)})
	}
	name := func(raftID int) string { return ids[raftID-1].Public().String() }

	ask(pb.MsgPreVote, 3, 2, 0, 0) // behind
	ask(pb.MsgVote, 4, 3, 1, 0)    // behind: same term, shorter
	ask(pb.MsgVote, 5, 3, 1, 1)    // as long: not behind
	got := g.behindSince(2)
	if len(got) != 2 || !got[name(3)] || !got[name(4)] {
		t.Fatalf("behind since term 2: %v; want node3 and node4", got)
	}
	if got := g.behindSince(3); len(got) != 1 || !got[name(4)] {
		t.Fatalf("behind since term 3: %v; want node4 alone (node3 asked for term 2)", got)
	}
	ask(pb.MsgPreVote, 4, 4, 1, 1)
	ask(pb.MsgApp, 3, 4, 0, 0) // not a vote request: changes nothing
	if got := g.behindSince(2); len(got) != 1 || !got[name(3)] {
		t.Fatalf("after node4 caught up: %v; want node3 alone", got)
	}
}
