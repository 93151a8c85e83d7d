package store

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSaveRaft measures one Ready's write as a follower under load
// makes it: a hard state and a run of appended entries of the size of a
// sealed chat message, fsynced. The figure that matters is CPU per write
// (run with -cpuprofile, or compare user+sys time): fsync waits are the
// disk's.
func BenchmarkSaveRaft(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s, gid := benchStore(b)
			data := bytes.Repeat([]byte{0xa5}, 600)
			next := uint64(1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				next = saveRun(b, s, gid, next, n, data)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkTerm measures Store.Term on entries of 64 KiB, as raft asks for
// them one index after another when a follower rejects an append.
func BenchmarkTerm(b *testing.B) {
	s, gid := benchStore(b)
	const n = 100
	var ents []*pb.Entry
	for i := uint64(1); i <= n; i++ {
		ents = append(ents, &pb.Entry{Term: new(uint64(2)), Index: new(i), Data: bytes.Repeat([]byte{0xa5}, 64<<10)})
	}
	if err := s.SaveRaft(gid, nil, ents, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		if _, err := s.Term(gid, 1+i%n); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchStore opens a new store with one group, closed when b ends.
func benchStore(b *testing.B) (*Store, []byte) {
	s, err := Open(filepath.Join(b.TempDir(), "demes.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	gid := bytes.Repeat([]byte{7}, 16)
	if err := s.CreateGroup(gid, []byte("info")); err != nil {
		b.Fatal(err)
	}
	return s, gid
}

// saveRun writes, in one SaveRaft, n entries of term 2 holding data from
// index next on, with a hard state that commits them, and returns the index
// after them.
func saveRun(tb testing.TB, s *Store, gid []byte, next uint64, n int, data []byte) uint64 {
	ents := make([]*pb.Entry, n)
	for j := range ents {
		ents[j] = &pb.Entry{Term: new(uint64(2)), Index: new(next), Data: data}
		next++
	}
	hs := &pb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(next - 1)}
	if err := s.SaveRaft(gid, hs, ents, nil, nil); err != nil {
		tb.Fatal(err)
	}
	return next
}

// BenchmarkSaveSnapshot measures storing a group's snapshot (fsynced) of
// the size the state's snapshot has at 100,000 and 1,000,000 messages
// (about 19 bytes an accepted message id).
func BenchmarkSaveSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			s, gid := benchStore(b)
			data := bytes.Repeat([]byte{0xa5}, 19*n)
			index := uint64(0)
			for b.Loop() {
				index++
				snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(index), Term: new(uint64(1))}, Data: data}
				if err := s.SaveSnapshot(gid, snap); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
	}
}

// BenchmarkStoredID measures a lookup in the runs of 1,000,000 message ids
// stored by snapshots every 10,000 (7 runs): of an id not stored (a new
// message) and of one stored (a retry).
func BenchmarkStoredID(b *testing.B) {
	s, gid := benchStore(b)
	runs := s.IDRunsToReplace(gid)
	var some [][16]byte
	for k := range 100 {
		first := uint64(k)*10_000 + 1
		recs := idRecords(b, first, 10_000)
		some = append(some, [16]byte(recs[(k*97)*IDRecordSize:]))
		if err := runs.SaveSnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(first + 9_999), Term: new(uint64(1))}}, recs, k == 0); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d ids in %d runs", runs.StoredLen(), runs.Runs())
	b.Run("new", func(b *testing.B) {
		var id [16]byte
		for b.Loop() {
			rand.Read(id[:])
			if _, ok := runs.StoredID(id); ok {
				b.Fatal("found")
			}
		}
	})
	b.Run("stored", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := runs.StoredID(some[i%len(some)]); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
}
