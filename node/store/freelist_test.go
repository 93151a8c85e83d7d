package store

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// freeListWritten reports whether the current meta page of the bbolt file
// at path names a written free-page list: bbolt's meta page is a 16-byte
// page header, then magic, version, page size and flags (4 bytes each),
// the root bucket (16), the free list's page id (8), the high-water page
// id (8), the transaction id (8); a list that was not written is page id
// 2^64-1, and bbolt then reads every page of the file at open to rebuild
// it.
func freeListWritten(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.LittleEndian.Uint32(f[16+8:]))
	var freelist, txid uint64
	for i := range 2 {
		m := f[i*pageSize+16:]
		if id := binary.LittleEndian.Uint64(m[48:]); id >= txid {
			txid, freelist = id, binary.LittleEndian.Uint64(m[32:])
		}
	}
	return freelist != ^uint64(0)
}

// TestStoreWritesItsFreeList: a clean Close writes bbolt's free-page list,
// so that the next open reads it instead of every page of a store that
// grows with the history (335 ms at 300,000 entries, and the whole file
// resident after every restart); commits do not write it, and neither does
// Abandon (a crash); a store written by the code before, which never wrote
// it, opens, reads back and gets it at its first clean close.
func TestStoreWritesItsFreeList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	gid := []byte("0123456789abcdef")
	data := bytes.Repeat([]byte{0xa5}, 700)
	next := uint64(1)
	save := func(s *Store, n int) { next = saveRun(t, s, gid, next, n, data) }
	// A store as the code before wrote it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucketGroups); return err }); err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db}
	if err := old.CreateGroup(gid, []byte("x")); err != nil {
		t.Fatal(err)
	}
	save(old, 100)
	db.Close() // as the code before closed it
	if freeListWritten(t, path) {
		t.Fatal("the old store's meta names a free list: the check reads the wrong field")
	}
	for round := range 2 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		save(s, 100)
		_, ents, err := s.LoadRaft(gid)
		if err != nil || uint64(len(ents)) != next-1 {
			t.Fatalf("round %d: %d entries read back (%v), want %d", round, len(ents), err, next-1)
		}
		s.Close()
		if !freeListWritten(t, path) {
			t.Fatalf("round %d: the store closed without its free list", round)
		}
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	save(s, 100)
	s.Abandon()
	if freeListWritten(t, path) {
		t.Fatal("a commit wrote the free list, or Abandon did")
	}
}
