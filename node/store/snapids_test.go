package store

import (
	"errors"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestIDChunks: each snapshot stores the message ids accepted since the
// last one beside it, in the same transaction; the chunks come back in
// the order of their snapshots; replace drops the older ones, as does a
// snapshot installed from the host; a damaged chunk is reported.
func TestIDChunks(t *testing.T) {
	s, _, gid := openTestStore(t)
	chunks := func() [][]byte {
		t.Helper()
		c, err := s.IDChunks(gid)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := chunks(); len(c) != 0 {
		t.Fatalf("a new group has chunks %q", c)
	}
	save := func(index uint64, ids string, replace bool) error {
		return s.SaveSnapshotWithIDs(gid, snapshotAt(index, 2, "state"), []byte(ids), replace)
	}
	for _, c := range []struct {
		index   uint64
		ids     string
		replace bool
	}{{10, "first", true}, {20, "", false}, {30, "second", false}, {300, "third", false}} {
		if err := save(c.index, c.ids, c.replace); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := chunks(), [][]byte{[]byte("first"), []byte("second"), []byte("third")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("chunks %q, want %q", got, want)
	}
	// A snapshot the store refuses (older than the stored one) stores no
	// chunk either.
	if err := save(25, "refused", false); err == nil {
		t.Fatal("an older snapshot was stored")
	}
	if got := chunks(); len(got) != 3 {
		t.Fatalf("a refused snapshot left chunks %q", got)
	}
	if err := save(310, "all", true); err != nil {
		t.Fatal(err)
	}
	if got, want := chunks(), [][]byte{[]byte("all")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after a replace: chunks %q, want %q", got, want)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketGroups).Bucket(gid).Bucket(bucketIDs)
		k, v := cb.Cursor().First()
		v = append([]byte(nil), v...)
		v[0] ^= 1
		return cb.Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.IDChunks(gid); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged chunk loads: %q, %v", c, err)
	}
	if err := s.InstallSnapshot(gid, snapshotAt(400, 3, "from the host")); err != nil {
		t.Fatal(err)
	}
	if c := chunks(); len(c) != 0 {
		t.Fatalf("a snapshot from the host left chunks %q", c)
	}
}
