package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestBigEntryNotRewritten: a key header of 121 KB (a new sender key in a
// group of 100) is written once, not again with each of the next commits.
// bbolt splits a leaf only when it holds more than four keys, so while the
// header sat in the newest leaf, each of the next four one-entry commits
// wrote 143 KB of pages instead of 20 KB.
func TestBigEntryNotRewritten(t *testing.T) {
	s, _, gid := openTestStore(t)
	i := uint64(0)
	put := func(data string) int64 {
		i++
		before := pageAlloc(s)
		hs := &pb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(i)}
		if err := s.SaveRaft(gid, hs, []*pb.Entry{entry(i, 1, data)}, nil, nil); err != nil {
			t.Fatal(err)
		}
		return pageAlloc(s) - before
	}
	small := strings.Repeat("m", 600)
	for range 50 {
		put(small)
	}
	const big = 121_000
	put(strings.Repeat("h", big))
	for k := range 6 {
		if alloc := put(small); alloc > big/2 {
			t.Errorf("commit %d after the big entry allocated %d bytes of pages: the big entry was written again", k+1, alloc)
		}
	}
}

// TestBigEntriesReadAndTruncate: big entries (in buckets of their own) and
// small ones read back in order, through LoadRaft and Entries, after a
// reopen; a conflicting tail is replaced whether its entries are big or
// small; and a big entry a store from before kept inline still reads.
func TestBigEntriesReadAndTruncate(t *testing.T) {
	s, path, gid := openTestStore(t)
	big := func(c string) string { return strings.Repeat(c, 3*bigEntry) }
	want := []string{"a", big("b"), "c", big("d"), big("e"), "f"}
	var ents []*pb.Entry
	for k, d := range want {
		ents = append(ents, entry(uint64(k+1), 1, d))
	}
	if err := s.SaveRaft(gid, nil, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader replaces the tail from index 4 (big) on, then another
	// from 2 (big, with small and big ones after it) on.
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(4, 2, "D"), entry(5, 2, big("E"))}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(2, 3, big("B"))}, nil, nil); err != nil {
		t.Fatal(err)
	}
	want = []string{"a", big("B")}
	// An entry at 3 as a store from before this layout kept a big one:
	// inline in the entries' leaf.
	old, err := proto.Marshal(entry(3, 3, big("c")))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketEntries).Put(u64(3), old)
	}); err != nil {
		t.Fatal(err)
	}
	want = append(want, big("c"))
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(4, 3, "g")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, "g")
	check := func(s *Store, when string) {
		t.Helper()
		_, loaded, err := s.LoadRaft(gid)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		got, err := s.Entries(gid, 1, uint64(len(want)+1), 1<<30)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for _, list := range [][]*pb.Entry{loaded, got} {
			if len(list) != len(want) {
				t.Fatalf("%s: %d entries, want %d", when, len(list), len(want))
			}
			for k, e := range list {
				if e.GetIndex() != uint64(k+1) || !bytes.Equal(e.GetData(), []byte(want[k])) {
					t.Fatalf("%s: entry %d is index %d with %d bytes %.8q, want %.8q", when, k+1, e.GetIndex(), len(e.GetData()), e.GetData(), want[k])
				}
			}
		}
		if first, last, err := s.LogBounds(gid); err != nil || first != 1 || last != uint64(len(want)) {
			t.Fatalf("%s: bounds %d, %d (%v)", when, first, last, err)
		}
	}
	check(s, "written")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "reopened")
}

// TestTermReadsTheField: Term, which reads the term field of a stored
// entry without decoding it, agrees with the decoded entry for small and
// big entries, a term of 0 (no field) and a missing index, and a damaged
// value is an error.
func TestTermReadsTheField(t *testing.T) {
	s, _, gid := openTestStore(t)
	var ents []*pb.Entry
	for i := uint64(1); i <= 12; i++ {
		e := entry(i, i/3, strings.Repeat("t", int(i%4)*bigEntry/2))
		if i == 5 {
			e.Data = nil
		}
		ents = append(ents, e)
	}
	if err := s.SaveRaft(gid, nil, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		got, err := s.Term(gid, e.GetIndex())
		if err != nil || got != e.GetTerm() {
			t.Fatalf("Term(%d) = %d (%v), want %d", e.GetIndex(), got, err, e.GetTerm())
		}
	}
	if _, err := s.Term(gid, 13); !errors.Is(err, ErrMissing) {
		t.Fatalf("Term of a missing index: %v, want ErrMissing", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketEntries).Put(u64(13), []byte{0x0a, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Term(gid, 13); err == nil {
		t.Fatal("Term of a damaged entry: no error")
	}
	// A big entry's bucket without its value.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketEntries).CreateBucket(u64(14))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Term(gid, 14); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Term of a big entry without its value: %v, want ErrCorrupt", err)
	}
	if _, err := s.Entries(gid, 14, 15, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Entries of a big entry without its value: %v, want ErrCorrupt", err)
	}
}
