package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func entry(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

func TestRaftLogSurvivesReopenAndTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	gid := []byte("0123456789abcdef")
	if err := s.CreateGroup(gid, []byte(`{"name":"g"}`)); err != nil {
		t.Fatal(err)
	}
	hs := &pb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(2)}
	if err := s.SaveRaft(gid, hs, []*pb.Entry{entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the uncommitted tail from index 3.
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(3, 2, "C")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Queued messages ride along with the next write; one sent and
	// committed within the same Ready is dropped.
	put := []OutboxItem{{ID: []byte("id1"), Frame: []byte("sealed")}, {ID: []byte("id2"), Frame: []byte("gone")}}
	if err := s.SaveRaft(gid, nil, nil, put, [][]byte{[]byte("id2")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gotHS, ents, err := s.LoadRaft(gid)
	if err != nil {
		t.Fatal(err)
	}
	if gotHS.GetTerm() != 2 || gotHS.GetCommit() != 2 || gotHS.GetVote() != 1 {
		t.Fatalf("hard state %v", gotHS)
	}
	var got string
	for _, e := range ents {
		got += string(e.GetData())
	}
	if got != "abC" || ents[2].GetTerm() != 2 {
		t.Fatalf("log %q", got)
	}
	ob, err := s.Outbox(gid)
	if err != nil || string(ob["id1"]) != "sealed" {
		t.Fatalf("outbox %v %v", ob, err)
	}
	groups, err := s.Groups()
	if err != nil || string(groups[string(gid)]) != `{"name":"g"}` {
		t.Fatalf("groups %v %v", groups, err)
	}
	if len(ob) != 1 {
		t.Fatalf("outbox holds %d messages, want only id1: %v", len(ob), ob)
	}
	if err := s.SaveRaft(gid, nil, nil, nil, [][]byte{[]byte("id1")}); err != nil {
		t.Fatal(err)
	}
	if ob, _ := s.Outbox(gid); len(ob) != 0 {
		t.Fatalf("outbox after delete: %v", ob)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a second process could open the same store")
	}
}

func openTestStore(t *testing.T) (*Store, string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	gid := []byte("0123456789abcdef")
	if err := s.CreateGroup(gid, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	return s, path, gid
}

func snapshotAt(index, term uint64, data string) *pb.Snapshot {
	return &pb.Snapshot{Data: []byte(data), Metadata: &pb.SnapshotMetadata{
		Index: proto.Uint64(index), Term: proto.Uint64(term),
		ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
	}}
}

// TestSnapshotKeepsTheLog: a snapshot survives a reopen, is the stored
// applied index (never going back), and leaves every entry it covers.
func TestSnapshotKeepsTheLog(t *testing.T) {
	s, path, gid := openTestStore(t)
	if snap, err := s.LoadSnapshot(gid); err != nil || snap != nil {
		t.Fatalf("a new group has snapshot %v (%v)", snap, err)
	}
	var ents []*pb.Entry
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, entry(i, 1+i/5, fmt.Sprint("e", i)))
	}
	hs := &pb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(9)}
	if err := s.SaveRaft(gid, hs, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(gid, snapshotAt(8, 2, "state at 8")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(gid, snapshotAt(7, 2, "state at 7")); err == nil {
		t.Fatal("an older snapshot replaced a newer one")
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.LoadSnapshot(gid)
	if err != nil || !proto.Equal(snap, snapshotAt(8, 2, "state at 8")) {
		t.Fatalf("snapshot after reopen: %v (%v)", snap, err)
	}
	if got, err := s.HardState(gid); err != nil || !proto.Equal(got, hs) {
		t.Fatalf("hard state %v (%v)", got, err)
	}
	if first, last, err := s.LogBounds(gid); err != nil || first != 1 || last != 10 {
		t.Fatalf("log bounds %d..%d (%v), want 1..10: the snapshot must not drop entries", first, last, err)
	}
	_, log, err := s.LoadRaft(gid)
	if err != nil || len(log) != 10 {
		t.Fatalf("whole log: %d entries (%v)", len(log), err)
	}
}

func TestEntriesLikeRaftStorage(t *testing.T) {
	s, _, gid := openTestStore(t)
	var ents []*pb.Entry
	for i := uint64(1); i <= 20; i++ {
		ents = append(ents, entry(i, 1+i/10, strings.Repeat("x", int(i))))
	}
	if err := s.SaveRaft(gid, nil, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	size := func(es []*pb.Entry) (n uint64) {
		for _, e := range es {
			n += uint64(proto.Size(e))
		}
		return n
	}
	for _, tc := range []struct {
		lo, hi, max uint64
		want        int // entries returned
	}{
		{1, 21, math.MaxUint64, 20},
		{5, 9, math.MaxUint64, 4},
		{5, 5, math.MaxUint64, 0},
		{3, 10, 0, 1},                   // at least one entry, whatever the limit
		{3, 10, size(ents[2:5]), 3},     // exactly three fit
		{3, 10, size(ents[2:5]) + 1, 3}, // not a byte more than three
		{3, 10, size(ents[2:5]) - 1, 2}, // one byte less: two
		{20, 21, 0, 1},
	} {
		got, err := s.Entries(gid, tc.lo, tc.hi, tc.max)
		if err != nil {
			t.Fatalf("Entries(%d, %d, %d): %v", tc.lo, tc.hi, tc.max, err)
		}
		if len(got) != tc.want {
			t.Fatalf("Entries(%d, %d, %d): %d entries, want %d", tc.lo, tc.hi, tc.max, len(got), tc.want)
		}
		for k, e := range got {
			if !proto.Equal(e, ents[tc.lo-1+uint64(k)]) {
				t.Fatalf("Entries(%d, %d, %d)[%d] = %v", tc.lo, tc.hi, tc.max, k, e)
			}
		}
	}
	if _, err := s.Entries(gid, 15, 22, math.MaxUint64); !errors.Is(err, ErrMissing) {
		t.Fatalf("a range past the end: %v, want ErrMissing", err)
	}
	if _, err := s.Entries(gid, 0, 3, math.MaxUint64); !errors.Is(err, ErrMissing) {
		t.Fatalf("a range from index 0: %v, want ErrMissing", err)
	}
	if term, err := s.Term(gid, 12); err != nil || term != 2 {
		t.Fatalf("Term(12) = %d (%v), want 2", term, err)
	}
	if _, err := s.Term(gid, 21); !errors.Is(err, ErrMissing) {
		t.Fatalf("Term(21): %v, want ErrMissing", err)
	}
}

// TestInstallSnapshotReplacesTheLog: a snapshot from the leader replaces the
// stored log, as raft requires.
func TestInstallSnapshotReplacesTheLog(t *testing.T) {
	s, _, gid := openTestStore(t)
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(1, 1, "a"), entry(2, 1, "b")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.InstallSnapshot(gid, snapshotAt(50, 4, "leader's")); err != nil {
		t.Fatal(err)
	}
	if first, last, err := s.LogBounds(gid); err != nil || first != 0 || last != 0 {
		t.Fatalf("log bounds after install: %d..%d (%v), want an empty log", first, last, err)
	}
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(51, 4, "c")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if first, last, _ := s.LogBounds(gid); first != 51 || last != 51 {
		t.Fatalf("log bounds %d..%d, want 51..51", first, last)
	}
	if snap, _ := s.LoadSnapshot(gid); snap.GetMetadata().GetIndex() != 50 {
		t.Fatalf("snapshot %v", snap)
	}
}

// TestDamagedSnapshot: a snapshot damaged on disk is reported, not
// returned, and the next snapshot replaces it.
func TestDamagedSnapshot(t *testing.T) {
	s, _, gid := openTestStore(t)
	if err := s.SaveSnapshot(gid, snapshotAt(8, 2, "state at 8")); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketSnap)
		v := append([]byte(nil), sb.Get(keySnapshot)...)
		v[len(v)/2] ^= 1
		return sb.Put(keySnapshot, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := s.LoadSnapshot(gid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged snapshot loads: %v, %v", snap, err)
	}
	if err := s.SaveSnapshot(gid, snapshotAt(5, 2, "state at 5")); err != nil {
		t.Fatalf("a new snapshot cannot replace a damaged one: %v", err)
	}
	if snap, err := s.LoadSnapshot(gid); err != nil || snap.GetMetadata().GetIndex() != 5 {
		t.Fatalf("snapshot %v, %v", snap, err)
	}
}

// TestForkAndHeadsSurviveReopen: what a node keeps of a fork and of the
// members' signed heads is there again after a restart, and nothing is
// there for a group that never had any.
func TestForkAndHeadsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	gid := []byte("g1g1g1g1g1g1g1g1")
	if err := s.CreateGroup(gid, []byte("info")); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Fork(gid); err != nil || p != nil {
		t.Fatalf("a fork proof before any: %x, %v", p, err)
	}
	if err := s.SaveFork(gid, []byte("proof")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveHeads(gid, []byte("heads")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err1 := s.Fork(gid)
	h, err2 := s.Heads(gid)
	if string(p) != "proof" || string(h) != "heads" || err1 != nil || err2 != nil {
		t.Fatalf("after reopening: fork %q (%v), heads %q (%v)", p, err1, h, err2)
	}
}

// TestHardStateDoesNotRewriteTheSnapshot: the hard state changes at nearly
// every raft Ready, the snapshot (which grows with the history) every few
// thousand entries. bbolt rewrites a whole leaf node when one of its keys
// changes, values included, so the two must not share one: 100 writes of
// a new commit index beside a 1 MiB snapshot must not write 100 MiB. (They
// did while both were in the meta bucket: each write of the hard state
// rewrote the snapshot, which is most of why a store took 2.3 KB per
// 100-byte message and writes slowed as the history grew.)
func TestHardStateDoesNotRewriteTheSnapshot(t *testing.T) {
	s, _, gid := openTestStore(t)
	if err := s.SaveSnapshot(gid, snapshotAt(8, 2, strings.Repeat("s", 1<<20))); err != nil {
		t.Fatal(err)
	}
	before := pageAlloc(s)
	for i := uint64(1); i <= 100; i++ {
		hs := &pb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(i)}
		if err := s.SaveRaft(gid, hs, []*pb.Entry{entry(i, 3, "x")}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	alloc := pageAlloc(s) - before
	if alloc > 10<<20 {
		t.Errorf("100 hard state writes allocated %d MiB of pages: the snapshot is rewritten with the hard state", alloc>>20)
	}
	snap, err := s.LoadSnapshot(gid)
	if err != nil || snap.GetMetadata().GetIndex() != 8 || len(snap.GetData()) != 1<<20 {
		t.Fatalf("snapshot after the writes: index %d, %d bytes (%v)", snap.GetMetadata().GetIndex(), len(snap.GetData()), err)
	}
}

// pageAlloc is how many bytes of pages s's transactions have allocated.
func pageAlloc(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}

// TestSnapshotOfAnOlderStore: a store written before the snapshot had a
// bucket of its own keeps it in the meta bucket; it loads from there, and
// the next snapshot moves it.
func TestSnapshotOfAnOlderStore(t *testing.T) {
	s, _, gid := openTestStore(t)
	data, err := proto.Marshal(snapshotAt(8, 2, "old layout"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketMeta).Put(keySnapshot, append(data, sum[:]...))
	}); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.LoadSnapshot(gid); err != nil || string(snap.GetData()) != "old layout" {
		t.Fatalf("old layout: %v (%v)", snap, err)
	}
	if err := s.SaveSnapshot(gid, snapshotAt(9, 2, "new layout")); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.LoadSnapshot(gid); err != nil || string(snap.GetData()) != "new layout" {
		t.Fatalf("after a new snapshot: %v (%v)", snap, err)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketMeta).Get(keySnapshot) != nil {
			t.Error("the old copy stays in the meta bucket")
		}
		return nil
	})
}
