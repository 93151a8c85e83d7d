package node

import (
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/node/store"
)

// testLog writes entries 1..n (of growing size and term) to a new store and
// returns them with the store.
func testLog(t *testing.T, n uint64) (*store.Store, []byte, []*pb.Entry) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gid := []byte("0123456789abcdef")
	if err := st.CreateGroup(gid, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var ents []*pb.Entry
	for i := uint64(1); i <= n; i++ {
		ents = append(ents, &pb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1 + i/7), Type: pb.EntryNormal.Enum(),
			Data: []byte(strings.Repeat("x", int(i%13)))})
	}
	if err := st.SaveRaft(gid, nil, ents, nil, nil); err != nil {
		t.Fatal(err)
	}
	return st, gid, ents
}

// TestLogStoreIsTheWholeLog compares a logStore whose memory holds only a
// tail with a MemoryStorage holding the whole log: the same answers to
// every Entries and Term question raft may ask, size limits included.
func TestLogStoreIsTheWholeLog(t *testing.T) {
	const n = 60
	st, gid, ents := testLog(t, n)
	whole := raft.NewMemoryStorage()
	if err := whole.Append(ents); err != nil {
		t.Fatal(err)
	}
	// As after a restart from a snapshot at 30, then a compaction to 40.
	mem := raft.NewMemoryStorage()
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(30), Term: proto.Uint64(ents[29].GetTerm()), ConfState: &pb.ConfState{Voters: []uint64{1}}}}
	if err := mem.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := mem.Append(ents[30:]); err != nil {
		t.Fatal(err)
	}
	if err := mem.Compact(40); err != nil {
		t.Fatal(err)
	}
	ls, err := newLogStore(mem, st, gid)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := ls.FirstIndex(); first != 1 {
		t.Fatalf("FirstIndex = %d, want 1", first)
	}
	if last, _ := ls.LastIndex(); last != n {
		t.Fatalf("LastIndex = %d, want %d", last, n)
	}
	for i := uint64(0); i <= n; i++ {
		want, _ := whole.Term(i)
		if got, err := ls.Term(i); err != nil || got != want {
			t.Fatalf("Term(%d) = %d, %v; want %d", i, got, err, want)
		}
	}
	sizes := []uint64{0, 1, 20, 50, 100, 333, 1 << 20}
	for lo := uint64(1); lo <= n; lo++ {
		for hi := lo + 1; hi <= n+1; hi++ {
			for _, limit := range sizes {
				want, _ := whole.Entries(lo, hi, limit)
				got, err := ls.Entries(lo, hi, limit)
				if err != nil {
					t.Fatalf("Entries(%d, %d, %d): %v", lo, hi, limit, err)
				}
				if len(got) != len(want) {
					t.Fatalf("Entries(%d, %d, %d): %d entries, want %d", lo, hi, limit, len(got), len(want))
				}
				for k := range got {
					if !proto.Equal(got[k], want[k]) {
						t.Fatalf("Entries(%d, %d, %d)[%d] = %v, want %v", lo, hi, limit, k, got[k], want[k])
					}
				}
			}
		}
	}
	if _, err := ls.Entries(0, 3, 1<<20); err != raft.ErrCompacted {
		t.Fatalf("Entries from 0: %v, want ErrCompacted", err)
	}
}

// TestLogStoreInstalled: after a snapshot from the leader, the log starts
// after it, and the snapshot's term is the term before the first entry.
func TestLogStoreInstalled(t *testing.T) {
	st, gid, _ := testLog(t, 0)
	ls, err := newLogStore(raft.NewMemoryStorage(), st, gid)
	if err != nil {
		t.Fatal(err)
	}
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(50), Term: proto.Uint64(4), ConfState: &pb.ConfState{Voters: []uint64{1}}}}
	if err := st.InstallSnapshot(gid, snap); err != nil {
		t.Fatal(err)
	}
	if err := ls.install(snap); err != nil {
		t.Fatal(err)
	}
	e := &pb.Entry{Index: proto.Uint64(51), Term: proto.Uint64(4)}
	if err := st.SaveRaft(gid, nil, []*pb.Entry{e}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ls.mem.Append([]*pb.Entry{e}); err != nil {
		t.Fatal(err)
	}
	check := func(ls *logStore) {
		t.Helper()
		if first, _ := ls.FirstIndex(); first != 51 {
			t.Fatalf("FirstIndex = %d, want 51", first)
		}
		if term, err := ls.Term(50); err != nil || term != 4 {
			t.Fatalf("Term(50) = %d, %v; want 4", term, err)
		}
		if _, err := ls.Term(49); err != raft.ErrCompacted {
			t.Fatalf("Term(49): %v, want ErrCompacted", err)
		}
		if _, err := ls.Entries(50, 52, 1<<20); err != raft.ErrCompacted {
			t.Fatalf("Entries from 50: %v, want ErrCompacted", err)
		}
	}
	check(ls)
	// As a restart finds it: the snapshot, and the log after it.
	mem := raft.NewMemoryStorage()
	if err := mem.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := mem.Append([]*pb.Entry{e}); err != nil {
		t.Fatal(err)
	}
	ls, err = newLogStore(mem, st, gid)
	if err != nil {
		t.Fatal(err)
	}
	check(ls)
}

// TestLogStoreReadsDuringCompaction reads the whole log over and over while
// the memory is compacted under the reads, as raft's goroutine does while
// the group's goroutine snapshots: every read sees every entry.
func TestLogStoreReadsDuringCompaction(t *testing.T) {
	const n = 400
	st, gid, ents := testLog(t, n)
	mem := raft.NewMemoryStorage()
	if err := mem.Append(ents); err != nil {
		t.Fatal(err)
	}
	ls, err := newLogStore(mem, st, gid)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		reads atomic.Int64
	)
	errc := make(chan error, 2)
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for lo := uint64(1); lo <= n; {
					got, err := ls.Entries(lo, n+1, 512)
					reads.Add(1)
					if err == nil && (len(got) == 0 || got[0].GetIndex() != lo) {
						err = fmt.Errorf("Entries(%d) starts with %v", lo, got)
					}
					if err == nil {
						_, err = ls.Term(lo)
					}
					if err != nil {
						errc <- err
						return
					}
					lo += uint64(len(got))
				}
			}
		}()
	}
	// Compact one entry at a time, with a few reads between compactions.
	for i := uint64(2); i < n; i++ {
		for r := reads.Load(); reads.Load() < r+3 && len(errc) == 0; {
			runtime.Gosched()
		}
		if err := mem.Compact(i); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// TestLogStoreCountsMemory: the sizes the logStore keeps of the memory's
// entries match the memory through appends that replace a tail, and trim
// bounds it, compacting only applied entries.
func TestLogStoreCountsMemory(t *testing.T) {
	st, gid, _ := testLog(t, 0)
	ls, err := newLogStore(raft.NewMemoryStorage(), st, gid)
	if err != nil {
		t.Fatal(err)
	}
	ent := func(i, term uint64, size int) *pb.Entry {
		return &pb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term), Type: pb.EntryNormal.Enum(), Data: make([]byte, size)}
	}
	check := func(when string) {
		t.Helper()
		first, _ := ls.mem.FirstIndex()
		last, _ := ls.mem.LastIndex()
		sum := 0
		if last >= first {
			ents, err := ls.mem.Entries(first, last+1, math.MaxUint64)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				sum += len(e.GetData())
			}
		}
		if sum != ls.memBytes {
			t.Fatalf("%s: the memory holds %d bytes, the logStore counts %d", when, sum, ls.memBytes)
		}
	}
	var ents []*pb.Entry
	for i := uint64(1); i <= 40; i++ {
		ents = append(ents, ent(i, 1, 100_000))
	}
	if err := ls.append(ents); err != nil {
		t.Fatal(err)
	}
	check("appended")
	// A new leader's entries from 31 on replace the tail.
	if err := ls.append([]*pb.Entry{ent(31, 2, 10), ent(32, 2, 20)}); err != nil {
		t.Fatal(err)
	}
	check("tail replaced")
	if err := ls.trim(10, defaultMemLogBytes); err != nil {
		t.Fatal(err)
	}
	check("trimmed to what is applied")
	if first, _ := ls.mem.FirstIndex(); first != 11 {
		t.Fatalf("after trim with 10 applied the memory starts at %d, want 11", first)
	}
	ents = ents[:0]
	for i := uint64(33); i <= 40; i++ {
		ents = append(ents, ent(i, 2, 100_000))
	}
	if err := ls.append(ents); err != nil {
		t.Fatal(err)
	}
	if err := ls.trim(40, defaultMemLogBytes); err != nil {
		t.Fatal(err)
	}
	check("trimmed")
	if ls.memBytes > defaultMemLogBytes/2 {
		t.Fatalf("after trim the memory holds %d bytes, want at most %d", ls.memBytes, defaultMemLogBytes/2)
	}
	if err := ls.compact(25); err != nil {
		t.Fatal(err)
	}
	check("compacted")
}
