package node

import (
	"bytes"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ents(term uint64, from, to uint64, size int) []*pb.Entry {
	var out []*pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &pb.Entry{Term: new(term), Index: new(i), Type: pb.EntryNormal.Enum(), Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return out
}

func app(to, term, index, logTerm, commit uint64, e []*pb.Entry) *pb.Message {
	return &pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(1)), To: new(to), Term: new(term),
		Index: new(index), LogTerm: new(logTerm), Commit: new(commit), Entries: e}
}

func resp(to, term, index uint64, reject bool) *pb.Message {
	return &pb.Message{Type: pb.MsgAppResp.Enum(), From: new(uint64(2)), To: new(to), Term: new(term), Index: new(index), Reject: new(reject)}
}

func describe(msgs []*pb.Message) string {
	var b bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&b, "%v to %d index %d logterm %d commit %d reject %v entries", m.GetType(), m.GetTo(), m.GetIndex(), m.GetLogTerm(), m.GetCommit(), m.GetReject())
		for _, e := range m.GetEntries() {
			fmt.Fprintf(&b, " %d/%d", e.GetIndex(), e.GetTerm())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestCoalesce(t *testing.T) {
	hb := &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(3))}
	for _, tc := range []struct {
		name     string
		in, want []*pb.Message
	}{{
		name: "appends that continue each other become one, per peer, in order",
		in: []*pb.Message{
			app(2, 3, 10, 3, 9, ents(3, 11, 12, 10)),
			app(3, 3, 10, 3, 9, ents(3, 11, 12, 10)),
			app(2, 3, 12, 3, 9, ents(3, 13, 13, 10)),
			app(2, 3, 13, 3, 13, nil), // the commit index moved
			app(3, 3, 12, 3, 13, nil),
		},
		want: []*pb.Message{
			app(2, 3, 10, 3, 13, ents(3, 11, 13, 10)),
			app(3, 3, 10, 3, 13, ents(3, 11, 12, 10)),
		},
	}, {
		name: "a gap, another term, another previous term or something between is kept apart",
		in: []*pb.Message{
			app(2, 3, 10, 3, 9, ents(3, 11, 11, 10)),
			app(2, 3, 13, 3, 9, ents(3, 14, 14, 10)), // gap: 12, 13 missing
			app(2, 4, 14, 3, 9, ents(4, 15, 15, 10)), // new term
			app(3, 4, 10, 2, 9, ents(4, 11, 11, 10)),
			app(3, 4, 11, 3, 9, ents(4, 12, 12, 10)), // previous term is not 4
			app(4, 4, 10, 4, 9, ents(4, 11, 11, 10)),
			{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(4)), Term: new(uint64(4))},
			app(4, 4, 11, 4, 9, ents(4, 12, 12, 10)), // after a heartbeat
		},
		want: []*pb.Message{
			app(2, 3, 10, 3, 9, ents(3, 11, 11, 10)),
			app(2, 3, 13, 3, 9, ents(3, 14, 14, 10)),
			app(2, 4, 14, 3, 9, ents(4, 15, 15, 10)),
			app(3, 4, 10, 2, 9, ents(4, 11, 11, 10)),
			app(3, 4, 11, 3, 9, ents(4, 12, 12, 10)),
			app(4, 4, 10, 4, 9, ents(4, 11, 11, 10)),
			{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(4)), Term: new(uint64(4))},
			app(4, 4, 11, 4, 9, ents(4, 12, 12, 10)),
		},
	}, {
		name: "no merged append carries more than the limit of entry data",
		in: []*pb.Message{
			app(2, 3, 10, 3, 9, ents(3, 11, 12, 300)),
			app(2, 3, 12, 3, 9, ents(3, 13, 13, 300)),
			app(2, 3, 13, 3, 9, ents(3, 14, 14, 300)), // 1,200 bytes: over
			app(2, 3, 14, 3, 14, nil),                 // no entries: merges
		},
		want: []*pb.Message{
			app(2, 3, 10, 3, 9, ents(3, 11, 13, 300)),
			app(2, 3, 13, 3, 14, ents(3, 14, 14, 300)),
		},
	}, {
		name: "acknowledgements become the latest; rejections stay",
		in: []*pb.Message{
			resp(1, 3, 11, false),
			resp(1, 3, 12, false),
			resp(1, 3, 14, false),
			resp(1, 3, 14, true),
			resp(1, 3, 15, false),
			resp(1, 4, 16, false),
		},
		want: []*pb.Message{
			resp(1, 3, 14, false),
			resp(1, 3, 14, true),
			resp(1, 3, 15, false),
			resp(1, 4, 16, false),
		},
	}, {
		name: "others are kept",
		in:   []*pb.Message{hb, hb},
		want: []*pb.Message{hb, hb},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := coalesce(tc.in, 1000)
			if describe(got) != describe(tc.want) {
				t.Errorf("coalesce gave\n%swant\n%s", describe(got), describe(tc.want))
			}
		})
	}
}

// TestCoalesceLeavesRaftsSlices checks that a merged append does not write
// into the entry slice it started from, which raft may still hold (its
// unstable log).
func TestCoalesceLeavesRaftsSlices(t *testing.T) {
	held := make([]*pb.Entry, 2, 8)
	copy(held, ents(3, 11, 12, 10))
	coalesce([]*pb.Message{app(2, 3, 10, 3, 9, held), app(2, 3, 12, 3, 9, ents(3, 13, 13, 10))}, 1<<20)
	if spare := held[:3][2]; spare != nil {
		t.Fatalf("coalesce appended entry %d into raft's slice", spare.GetIndex())
	}
}

// TestCoalescedAppendAsRaftSeesIt steps a real raft follower once with the
// appends a leader sent and once with them coalesced: both end with the same
// log and commit index, and the coalesced appends are answered once, with
// the last index.
func TestCoalescedAppendAsRaftSeesIt(t *testing.T) {
	// A new copy each time: coalesce changes the messages it merges into.
	sent := func() []*pb.Message {
		return []*pb.Message{
			app(2, 1, 1, 1, 1, ents(1, 2, 3, 20)),
			app(2, 1, 3, 1, 1, ents(1, 4, 4, 20)),
			app(2, 1, 4, 1, 3, nil),
			app(2, 1, 4, 1, 3, ents(1, 5, 6, 20)),
		}
	}
	follower := func(msgs []*pb.Message) (last, commit uint64, answers []*pb.Message) {
		t.Helper()
		st := raft.NewMemoryStorage()
		if err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}},
		}}); err != nil {
			t.Fatal(err)
		}
		rn, err := raft.NewRawNode(&raft.Config{ID: 2, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: raftLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := rn.Step(m); err != nil {
				t.Fatal(err)
			}
		}
		rd := rn.Ready()
		if err := st.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		answers = rd.Messages
		rn.Advance(rd)
		last, _ = st.LastIndex()
		return last, rn.Status().GetCommit(), answers
	}
	merged := coalesce(sent(), 1<<20)
	if len(merged) != 1 {
		t.Fatalf("coalesce gave %d appends, want 1:\n%s", len(merged), describe(merged))
	}
	wantLast, wantCommit, separate := follower(sent())
	gotLast, gotCommit, once := follower(merged)
	if gotLast != wantLast || gotCommit != wantCommit || wantLast != 6 || wantCommit != 3 {
		t.Fatalf("coalesced: last index %d, commit %d; separate: %d, %d; want 6, 3", gotLast, gotCommit, wantLast, wantCommit)
	}
	if len(separate) != len(sent()) {
		t.Fatalf("the separate appends were answered %d times, want %d", len(separate), len(sent()))
	}
	if len(once) != 1 || once[0].GetType() != pb.MsgAppResp || once[0].GetReject() || once[0].GetIndex() != 6 {
		t.Fatalf("the coalesced append was answered with\n%swant one acknowledgement of index 6", describe(once))
	}
	if got := coalesce(separate, 1<<20); describe(got) != describe(once) {
		t.Fatalf("the separate answers coalesce to\n%snot to the coalesced append's answer\n%s", describe(got), describe(once))
	}
}
