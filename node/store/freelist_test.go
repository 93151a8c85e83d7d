package store

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// TestStoreWritesItsFreeList: every commit writes bbolt's free-page list,
// so that an open after a crash (Abandon) reads it instead of every page of
// a store that grows with the history (0.33 s at 1,000,000 entries in the
// page cache, the whole file from a cold disk); a store written by the
// code before, which never wrote it, opens, reads back and gets it at once.
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
	old := &Store{db: db, noList: true} // its commits do not write the list
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
		if !freeListWritten(t, path) {
			t.Fatalf("round %d: a commit left the store without its free list", round)
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
	if !freeListWritten(t, path) {
		t.Fatal("a store left as a crash leaves it has no free list: its next open reads every page")
	}
}

// TestOpenAfterCrashKeepsNoPagesResident: after a crash of a build whose
// commits did not write bbolt's free-page list (before 2026-12-06), or of a
// node on a full disk, bbolt's open reads every page of the store to
// rebuild the list. A node must not
// keep those pages mapped and resident for as long as it runs (735 MiB of a
// store of 1,000,000 messages after a kill -9): Open writes the list and
// opens the database again. Measured as the growth of this process's
// file-backed resident memory (RssFile, Linux) across Open of a store of
// about 50 MiB of small entries that Abandon left without its list.
func TestOpenAfterCrashKeepsNoPagesResident(t *testing.T) {
	if _, ok := rssFile(t); !ok {
		t.Skip("no RssFile in /proc/self/status: not Linux")
	}
	s, path, gid, next, data := storeOf50MiB(t)
	s.noList = true // as those commits were
	next = saveRun(t, s, gid, next, 1, data)
	s.Abandon()
	if freeListWritten(t, path) {
		t.Fatal("the store has its free list: this is not the crash of such a build")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := rssFile(t)
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := rssFile(t)
	if grown := after - before; grown > fi.Size()/4 {
		t.Fatalf("opening a store of %d MiB after a crash left %d MiB more of files resident, want at most a quarter of it", fi.Size()>>20, grown>>20)
	}
	if _, ents, err := s.LoadRaft(gid); err != nil || uint64(len(ents)) != next-1 {
		t.Fatalf("%d entries read back (%v), want %d", len(ents), err, next-1)
	}
}

// rssFile returns this process's file-backed resident memory in bytes,
// and whether /proc/self/status says it.
func rssFile(t *testing.T) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "RssFile:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// TestReleaseMappedPages: the pages a node reads stay mapped into its
// process, and counted in its resident memory, until it drops them
// (ReleaseMapped, which the store runs every second): 207 to 218 MiB at
// 1,000,000 messages before. Reading a store of about 50 MiB whole maps
// most of it; after the release at most an eighth of it is still resident,
// and every entry reads back unchanged.
func TestReleaseMappedPages(t *testing.T) {
	if _, ok := rssFile(t); !ok {
		t.Skip("no RssFile in /proc/self/status: not Linux")
	}
	s, path, gid, next, data := storeOf50MiB(t)
	defer s.Close()
	s.release.halt() // the test releases by hand
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	before, _ := rssFile(t)
	read := func() {
		t.Helper()
		_, ents, err := s.LoadRaft(gid)
		if err != nil || uint64(len(ents)) != next-1 {
			t.Fatalf("%d entries read back (%v), want %d", len(ents), err, next-1)
		}
		for _, e := range ents {
			if !bytes.Equal(e.GetData(), data) {
				t.Fatalf("entry %d reads back changed", e.GetIndex())
			}
		}
	}
	read()
	mapped, _ := rssFile(t)
	if mapped-before < fi.Size()/2 {
		t.Skipf("reading a store of %d MiB mapped only %d MiB more: this kernel does not count it, nothing to release", fi.Size()>>20, (mapped-before)>>20)
	}
	if err := s.ReleaseMapped(); err != nil {
		t.Fatal(err)
	}
	after, _ := rssFile(t)
	if left := after - before; left > fi.Size()/8 {
		t.Fatalf("after the release %d MiB of a store of %d MiB are still resident (%d MiB after reading it), want at most an eighth", left>>20, fi.Size()>>20, (mapped-before)>>20)
	}
	read()
}

// storeOf50MiB returns an open store at path holding one group gid of
// 70,000 entries of data (700 bytes), and the next index.
func storeOf50MiB(t *testing.T) (s *Store, path string, gid []byte, next uint64, data []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "store.db")
	gid = []byte("0123456789abcdef")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(gid, []byte("x")); err != nil {
		t.Fatal(err)
	}
	data = bytes.Repeat([]byte{0x5a}, 700)
	next = 1
	for range 7 {
		next = saveRun(t, s, gid, next, 10000, data)
	}
	return s, path, gid, next, data
}

// TestLongFreeListIsNotWritten: a commit leaves out a free-page list longer
// than freeListSyncMax pages (a group's stored board of 100,000 reactions
// rewritten at each snapshot kept about 22,000 pages free, and writing that
// list at every commit made commits 40% slower); the next open after a
// crash then reads every page, as before, and a clean Close still writes
// it. Once the free pages are used again, commits write it again. (The
// commit that frees the pages writes the list once: bbolt frees them as it
// commits, after the choice.)
func TestLongFreeListIsNotWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	gid := []byte("0123456789abcdef")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(gid, []byte("x")); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, 700)
	next := saveRun(t, s, gid, 1, 10, data)
	big := bytes.Repeat([]byte{0x5a}, (freeListSyncMax+512)*4096)
	if err := s.SaveBoardParts(gid, big, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveBoardParts(gid, []byte("small"), nil, nil); err != nil { // frees the big one's pages
		t.Fatal(err)
	}
	next = saveRun(t, s, gid, next, 10, data)
	if n := s.db.Stats().FreePageN; n <= freeListSyncMax {
		t.Fatalf("%d pages free, want more than %d for this test", n, freeListSyncMax)
	}
	if freeListWritten(t, path) {
		t.Fatalf("a commit wrote a list of %d free pages", s.db.Stats().FreePageN)
	}
	// Entries use the free pages again.
	for s.db.Stats().FreePageN > freeListSyncMax/2 {
		next = saveRun(t, s, gid, next, 200, data)
	}
	next = saveRun(t, s, gid, next, 1, data)
	if !freeListWritten(t, path) {
		t.Fatalf("with %d pages free, a commit did not write the list", s.db.Stats().FreePageN)
	}
	if err := s.SaveBoardParts(gid, big, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveBoardParts(gid, []byte("small again"), nil, nil); err != nil {
		t.Fatal(err)
	}
	// That commit wrote the list with the pages it freed, since it
	// could not know them beforehand; the next does not.
	next = saveRun(t, s, gid, next, 1, data)
	if freeListWritten(t, path) {
		t.Fatal("a commit wrote a long list")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !freeListWritten(t, path) {
		t.Fatal("Close left the list out")
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ents, err := s.LoadRaft(gid); err != nil || uint64(len(ents)) != next-1 {
		t.Fatalf("%d entries read back (%v), want %d", len(ents), err, next-1)
	}
}
