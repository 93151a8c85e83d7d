package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// idRecords returns n random ids accepted at the indexes from first on, as
// records ascending by id (as state.FreshIDs gives them).
func idRecords(t testing.TB, first uint64, n int) []byte {
	t.Helper()
	recs := make([][]byte, n)
	for i := range recs {
		rec := make([]byte, IDRecordSize)
		rand.Read(rec[:16])
		binary.BigEndian.PutUint64(rec[16:], first+uint64(i))
		recs[i] = rec
	}
	slices.SortFunc(recs, bytes.Compare)
	return bytes.Join(recs, nil)
}

// TestIDRuns: each snapshot stores the ids accepted since the last one in
// the same transaction; every stored id is found with its index, from a
// reopened store too, and no other; the runs stay few (merged while the one
// before is at most twice the new one's size); replace drops every id
// stored before, as does a snapshot installed from the host; a damaged run
// is reported when the store is read.
func TestIDRuns(t *testing.T) {
	s, path, gid := openTestStore(t)
	runs, err := s.IDRuns(gid)
	if err != nil || runs.StoredLen() != 0 {
		t.Fatalf("a new group: %d ids stored (%v)", runs.StoredLen(), err)
	}
	var all [][]byte
	index := uint64(0)
	for k := range 40 {
		n := 100
		if k%7 == 3 {
			n = 0 // a snapshot without new messages
		}
		recs := idRecords(t, index+1, n)
		index += 150
		if err := runs.SaveSnapshot(snapshotAt(index, 2, "state"), recs, k == 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(recs); i += IDRecordSize {
			all = append(all, recs[i:i+IDRecordSize])
		}
	}
	check := func(r *IDRuns, want [][]byte) {
		t.Helper()
		if r.StoredLen() != len(want) {
			t.Fatalf("%d ids stored, want %d", r.StoredLen(), len(want))
		}
		for _, rec := range want {
			at, ok := r.StoredID([16]byte(rec[:16]))
			if !ok || at != binary.BigEndian.Uint64(rec[16:]) {
				t.Fatalf("id %x: at %d (%v), want %d", rec[:4], at, ok, binary.BigEndian.Uint64(rec[16:]))
			}
		}
		for range 200 {
			var id [16]byte
			rand.Read(id[:])
			if _, ok := r.StoredID(id); ok {
				t.Fatalf("an id never stored is found: %x", id[:4])
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
	}
	check(runs, all)
	// 34 snapshots with ids: at most log2(34)+1 runs.
	if got := runs.Runs(); got > 6 {
		t.Fatalf("%d runs after 34 snapshots with ids, want at most 6", got)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again, err := s.IDRuns(gid)
	if err != nil {
		t.Fatal(err)
	}
	check(again, all)
	// A snapshot the store refuses (older than the stored one) stores no
	// ids either.
	if err := again.SaveSnapshot(snapshotAt(index-1, 2, "state"), idRecords(t, index, 5), false); err == nil {
		t.Fatal("an older snapshot was stored")
	}
	check(again, all)
	fresh := idRecords(t, 1, 30)
	if err := again.SaveSnapshot(snapshotAt(index+10, 2, "state"), fresh, true); err != nil {
		t.Fatal(err)
	}
	var replaced [][]byte
	for i := 0; i < len(fresh); i += IDRecordSize {
		replaced = append(replaced, fresh[i:i+IDRecordSize])
	}
	check(again, replaced)
	if _, ok := again.StoredID([16]byte(all[0][:16])); ok {
		t.Fatal("an id stored before the replace is still found")
	}
	// A damaged run.
	err = s.db.Update(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketIDRuns)
		k, _ := parent.Cursor().First()
		rb := parent.Bucket(k)
		bk, v := rb.Cursor().First()
		v = bytes.Clone(v)
		v[3] ^= 1
		return rb.Put(bk, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IDRuns(gid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged run loads: %v", err)
	}
	if err := s.InstallSnapshot(gid, snapshotAt(index+20, 3, "from the host")); err != nil {
		t.Fatal(err)
	}
	if r, err := s.IDRuns(gid); err != nil || r.StoredLen() != 0 {
		t.Fatalf("a snapshot from the host left %d ids (%v)", r.StoredLen(), err)
	}
}

// TestCheckRun: a run whose records are not whole, out of order, repeated,
// or name an index of 0 or beyond its snapshot is refused.
func TestCheckRun(t *testing.T) {
	good := idRecords(t, 1, 10)
	if err := checkRun(good, 10); err != nil {
		t.Fatal(err)
	}
	swapped := bytes.Clone(good)
	copy(swapped[:IDRecordSize], good[IDRecordSize:2*IDRecordSize])
	copy(swapped[IDRecordSize:], good[:IDRecordSize])
	zero := bytes.Clone(good)
	binary.BigEndian.PutUint64(zero[16:], 0)
	for name, recs := range map[string][]byte{
		"cut short":        good[:len(good)-1],
		"out of order":     swapped,
		"an id twice":      append(bytes.Clone(good[:IDRecordSize]), good[:IDRecordSize]...),
		"index 0":          zero,
		"beyond its run's": good,
	} {
		upto := uint64(10)
		if name == "beyond its run's" {
			upto = 9
		}
		if err := checkRun(recs, upto); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestIDChunksOfAnOlderStore: the chunks of ids an older store kept come
// back in the order of their snapshots, a damaged one is reported, and a
// replacing save or a snapshot from the host drops them.
func TestIDChunksOfAnOlderStore(t *testing.T) {
	s, _, gid := openTestStore(t)
	putChunk := func(index uint64, ids string) {
		t.Helper()
		err := s.updateGroup(gid, func(b *bolt.Bucket) error {
			cb, err := b.CreateBucketIfNotExists(bucketIDs)
			if err != nil {
				return err
			}
			return cb.Put(u64(index), withSum([]byte(ids)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	putChunk(30, "second")
	putChunk(10, "first")
	if got, err := s.IDChunks(gid); err != nil || !reflect.DeepEqual(got, [][]byte{[]byte("first"), []byte("second")}) {
		t.Fatalf("chunks %q (%v)", got, err)
	}
	runs, err := s.IDRuns(gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := runs.SaveSnapshot(snapshotAt(40, 2, "state"), idRecords(t, 1, 3), true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.IDChunks(gid); err != nil || len(got) != 0 {
		t.Fatalf("a replacing save left chunks %q (%v)", got, err)
	}
	putChunk(50, "third")
	err = s.db.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketIDs)
		k, v := cb.Cursor().First()
		v = bytes.Clone(v)
		v[0] ^= 1
		return cb.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.IDChunks(gid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged chunk loads: %q, %v", c, err)
	}
	if err := s.InstallSnapshot(gid, snapshotAt(60, 3, "from the host")); err != nil {
		t.Fatal(err)
	}
	if c, err := s.IDChunks(gid); err != nil || len(c) != 0 {
		t.Fatalf("a snapshot from the host left chunks %q (%v)", c, err)
	}
}

// TestIDRunFindsSharedPrefixes: ids whose first 8 bytes are equal (which a
// member can choose) span several blocks of a run, and are all found.
func TestIDRunFindsSharedPrefixes(t *testing.T) {
	s, _, gid := openTestStore(t)
	recs := idRecords(t, 1, 1000)
	var ids [][]byte
	for i := 0; i < len(recs); i += IDRecordSize {
		ids = append(ids, bytes.Clone(recs[i:i+IDRecordSize]))
	}
	for _, rec := range ids[100:700] {
		copy(rec[:8], "samehead")
	}
	slices.SortFunc(ids, bytes.Compare)
	recs = bytes.Join(ids, nil)
	runs := s.IDRunsToReplace(gid)
	if err := runs.SaveSnapshot(snapshotAt(1000, 2, "state"), recs, true); err != nil {
		t.Fatal(err)
	}
	for _, rec := range ids {
		if at, ok := runs.StoredID([16]byte(rec[:16])); !ok || at != binary.BigEndian.Uint64(rec[16:]) {
			t.Fatalf("id %x: at %d (%v)", rec[:16], at, ok)
		}
	}
	var other [16]byte
	copy(other[:], "sameheadsameheax")
	if _, ok := runs.StoredID(other); ok {
		t.Fatal("an id not in the run is found")
	}
	if err := runs.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestIDRunsFilterMisses: a lookup of an id the store does not hold (a new
// message: most lookups) reads the store only when a run's Bloom filter
// errs, about 1% of the time a run; one of a stored id always does.
func TestIDRunsFilterMisses(t *testing.T) {
	s, _, gid := openTestStore(t)
	runs, err := s.IDRuns(gid)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for k := range 20 {
		recs := idRecords(t, uint64(k)*1000+1, 500)
		if err := runs.SaveSnapshot(snapshotAt(uint64(k+1)*1000, 2, "state"), recs, k == 0); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	for i := 0; i < len(all); i += IDRecordSize {
		if _, ok := runs.StoredID([16]byte(all[i:])); !ok {
			t.Fatalf("stored id %x not found", all[i:i+4])
		}
	}
	if got, want := runs.reads.Load(), int64(len(all)/IDRecordSize); got != want {
		t.Fatalf("%d lookups of stored ids read the store %d times", want, got)
	}
	runs.reads.Store(0)
	const misses = 2000
	for range misses {
		var id [16]byte
		rand.Read(id[:])
		if _, ok := runs.StoredID(id); ok {
			t.Fatalf("an id never stored is found: %x", id[:4])
		}
	}
	// At most 5 runs of 10 bits an id: about 4% of lookups err somewhere.
	if got := runs.reads.Load(); got > misses/10 {
		t.Fatalf("%d of %d lookups of ids never stored read the store (%d runs), want at most a tenth", got, misses, runs.Runs())
	}
}

// TestIDRunsWriteOnlyTheNewRun: a snapshot that adds a small run writes
// that run, not the big ones stored before it (bbolt rewrites a leaf's
// values whole: with the runs as values of one bucket, each snapshot wrote
// them all again).
func TestIDRunsWriteOnlyTheNewRun(t *testing.T) {
	s, _, gid := openTestStore(t)
	runs := s.IDRunsToReplace(gid)
	if err := runs.SaveSnapshot(snapshotAt(50_000, 2, "state"), idRecords(t, 1, 50_000), true); err != nil {
		t.Fatal(err)
	}
	big := int64(50_000 * IDRecordSize)
	alloc := func() int64 { st := s.db.Stats(); return st.TxStats.GetPageAlloc() }
	for k := range 3 {
		before := alloc()
		index := uint64(50_000 + (k+1)*100)
		if err := runs.SaveSnapshot(snapshotAt(index, 2, "state"), idRecords(t, index-99, 100), false); err != nil {
			t.Fatal(err)
		}
		if wrote := alloc() - before; wrote > big/10 {
			t.Fatalf("a snapshot adding 100 ids allocated %d bytes of pages beside a run of %d bytes", wrote, big)
		}
	}
	if runs.Runs() != 2 {
		t.Fatalf("%d runs, want the big one and one of the small ones merged", runs.Runs())
	}
}

// TestIDRunsRefuseBadBlocks: a run whose blocks hold its records and
// checksum but not in full blocks (a lookup finds block j by the records
// before it), or that lacks a block, is refused when the store is read.
func TestIDRunsRefuseBadBlocks(t *testing.T) {
	recs := idRecords(t, 1, 3*idBlock+5)
	for name, reblock := range map[string]func(rb *bolt.Bucket) error{
		"a short block before the last": func(rb *bolt.Bucket) error {
			// The same records and checksum, the first block one short.
			var all []byte
			for i := range 4 {
				all = append(all, rb.Get([]byte{0, 0, 0, byte(i)})...)
			}
			for i, size := range []int{idBlock - 1, idBlock, idBlock, 6} {
				if err := rb.Put([]byte{0, 0, 0, byte(i)}, bytes.Clone(all[:size*IDRecordSize])); err != nil {
					return err
				}
				all = all[size*IDRecordSize:]
			}
			return nil
		},
		"a block missing": func(rb *bolt.Bucket) error { return rb.Delete([]byte{0, 0, 0, 1}) },
		"the last block cut": func(rb *bolt.Bucket) error {
			last := rb.Get([]byte{0, 0, 0, 3})
			return rb.Put([]byte{0, 0, 0, 3}, bytes.Clone(last[:len(last)-1]))
		},
	} {
		s, _, gid := openTestStore(t)
		if err := s.IDRunsToReplace(gid).SaveSnapshot(snapshotAt(uint64(len(recs)/IDRecordSize), 2, "state"), recs, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.IDRuns(gid); err != nil {
			t.Fatalf("%s: the good run: %v", name, err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			parent := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketIDRuns)
			k, _ := parent.Cursor().First()
			return reblock(parent.Bucket(k))
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.IDRuns(gid); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: loads: %v", name, err)
		}
	}
}
