package node

import (
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// TestHeadThroughFromTheLog: the state keeps only recent transcript heads
// and anchors; a node answers the head through any index it has applied
// (what a member far behind states in its pings) from its stored log, equal
// to the true head, and tells which old indexes hold an entry (what an old
// invite names).
func TestHeadThroughFromTheLog(t *testing.T) {
	alice, bob, carol := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2), transcripttest.Identity(t, 3)
	tg := transcripttest.New(t, transcripttest.GroupID(11), "long", alice, "alice")
	tg.Add(alice, bob, "bob")
	for i := range state.HeadWindow + 5*state.AnchorEvery/2 {
		if i%301 == 0 {
			tg.Skip(1 + i%3) // raft's empty entries
		}
		if i == 2000 {
			tg.Add(alice, carol, "carol") // a membership change: its frame is the context
		}
		tg.Append([]byte{0xff, byte(i), byte(i >> 8)}) // not an envelope: rejected, chained
	}
	st := tg.State
	if st.KeepsHeadsFrom() < 2*state.AnchorEvery {
		t.Fatalf("the state keeps every head from %d: the test needs more forgotten", st.KeepsHeadsFrom())
	}

	// The log as raft holds it: every index, the skipped ones empty.
	var ents []*pb.Entry
	frameAt := map[uint64]bool{}
	for _, e := range tg.Entries {
		for uint64(len(ents))+1 < e.Index {
			ents = append(ents, &pb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(uint64(len(ents)) + 1), Type: pb.EntryNormal.Enum()})
		}
		pe := &pb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(e.Index), Type: pb.EntryNormal.Enum(), Data: e.Frame}
		if e.Kind == transcript.KindConf {
			typ := pb.ConfChangeAddLearnerNode
			if e.Change == state.AddVoter {
				typ = pb.ConfChangeAddNode
			}
			cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(e.NodeID)}}, Context: e.Frame}
			data, err := proto.Marshal(cc)
			if err != nil {
				t.Fatal(err)
			}
			pe.Type, pe.Data = pb.EntryConfChangeV2.Enum(), data
		}
		frameAt[e.Index] = true
		ents = append(ents, pe)
	}
	// The store holds the whole log, the memory its tail.
	s, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	gid := tg.ID[:]
	if err := s.CreateGroup(gid, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRaft(gid, &pb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(st.Applied)}, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	mem := raft.NewMemoryStorage()
	tail := len(ents) - 100
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(uint64(tail)), Term: proto.Uint64(1), ConfState: &pb.ConfState{}}}
	if err := mem.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := mem.Append(ents[tail:]); err != nil {
		t.Fatal(err)
	}
	ls, err := newLogStore(mem, s, gid)
	if err != nil {
		t.Fatal(err)
	}
	g := &group{st: st, storage: ls}

	for idx := uint64(0); idx <= st.Applied; idx++ {
		if idx%97 != 0 && idx%state.AnchorEvery > 3 && idx+3 < st.KeepsHeadsFrom() {
			continue // a sample, and around each anchor and the window's start
		}
		got, ok := g.headThrough(idx)
		if want := tg.HeadThrough(idx); !ok || got != want {
			t.Fatalf("head through %d: %x (ok %v), want %x", idx, got[:4], ok, want[:4])
		}
		if has := g.hasFrameAt(idx); has != frameAt[idx] {
			t.Fatalf("an entry with a frame at %d: %v, want %v", idx, has, frameAt[idx])
		}
	}
	if _, ok := g.headThrough(st.Applied + 1); ok {
		t.Fatal("a head through an index not applied yet")
	}
}
