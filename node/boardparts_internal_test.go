package node

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/keystore"
	"github.com/demes/demes/node/store"
)

// mapSecrets is a key store in memory, for tests of what the node asks of
// it.
type mapSecrets map[string][]byte

func (m mapSecrets) Put(name string, secret []byte, _ time.Time) error {
	m[name] = append([]byte(nil), secret...)
	return nil
}
func (m mapSecrets) PutMany(items []keystore.Item) error {
	for _, it := range items {
		m[it.Name] = append([]byte(nil), it.Secret...)
	}
	return nil
}
func (m mapSecrets) Get(name string) ([]byte, bool) {
	v, ok := m[name]
	return append([]byte(nil), v...), ok
}
func (m mapSecrets) List(string) []keystore.Entry  { return nil }
func (m mapSecrets) Delete(name string) error      { delete(m, name); return nil }
func (m mapSecrets) Expire(time.Time) (int, error) { return 0, nil }
func (m mapSecrets) Close() error                  { return nil }

// partsGroup is a group with a real store and a key book in memory, enough
// to store boards (boardparts.go): records under the sender keys it holds.
func partsGroup(t testing.TB) (*group, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gid := crypto.GroupID{7}
	if err := st.CreateGroup(gid[:], []byte("info")); err != nil {
		t.Fatal(err)
	}
	n := &Node{store: st, log: zerolog.Nop()}
	n.keys = &keyBook{n: n, store: mapSecrets{}, kept: map[string]bool{}, marks: map[keyName][]keyMark{}, floors: map[keyName]uint64{}}
	return &group{n: n, id: gid}, st
}

// partRecord is the record of a reaction at index, stored in a page of
// notes, or with file set of a file message, stored in a part.
func partRecord(index uint64, ref crypto.KeyRef, counter uint64, file bool) boardRecord {
	r := boardRecord{Index: index, ID: [16]byte{byte(index)}, Sender: ref.Sender, Epoch: ref.Epoch, KeyID: ref.ID, Counter: counter, Kind: 2, Emoji: "👍"}
	if file {
		r.Kind, r.Emoji, r.File = 0, "", []byte("a file message's body")
	}
	return r
}

// inPartsAndPages runs test for records of file messages, which parts
// store, and of changes, which pages of notes store.
func inPartsAndPages(t *testing.T, test func(t *testing.T, file bool)) {
	for _, file := range []bool{true, false} {
		t.Run(map[bool]string{true: "parts", false: "pages"}[file], func(t *testing.T) { test(t, file) })
	}
}

// storedRecords reads every record of g's board stored at index.
func storedRecords(t *testing.T, g *group, index uint64) []boardRecord {
	t.Helper()
	sb, plain, err := openBoard(g.n.store, g.n.keys.store, g.id, index)
	clear(plain)
	if err != nil {
		t.Fatal(err)
	}
	out, err := storedBoardRecords(g.n.store, g.id, sb, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFailedForgetIsRetried: when writing the board again without the
// records of a deleted sender key fails (forgetDeleted), the next board
// written, at the next snapshot, leaves them out all the same. Before, the
// parts were looked at only when forgetDeleted asked, and a failure left
// the records on disk, openable with the board's key, until the policy
// deleted another key.
func TestFailedForgetIsRetried(t *testing.T) { inPartsAndPages(t, testFailedForgetIsRetried) }

func testFailedForgetIsRetried(t *testing.T, file bool) {
	g, st := partsGroup(t)
	k1, k2 := crypto.KeyRef{Epoch: 1}, crypto.KeyRef{Epoch: 2}
	for _, k := range []crypto.KeyRef{k1, k2} {
		g.n.keys.kept[senderName("sender", g.id, k)] = true
	}
	g.blog.records = []boardRecord{partRecord(1, k1, 1, file), partRecord(2, k1, 2, file), partRecord(3, k1, 3, file)}
	if err := g.writeBoard(3); err != nil {
		t.Fatal(err)
	}
	g.snapIndex = 3
	delete(g.n.keys.kept, senderName("sender", g.id, k1))
	// The store fails this write: a store without the group.
	other, err := store.Open(filepath.Join(t.TempDir(), "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	g.n.store = other
	g.forgetDeleted()
	g.n.store = st
	if rs := storedRecords(t, g, 3); len(rs) != 3 {
		t.Fatalf("%d records stored after the failed write, want the 3 stored before it", len(rs))
	}
	// The next snapshot stores one record more, under a key still held.
	g.blog.records = append(g.blog.records, partRecord(5, k2, 1, file))
	if err := g.writeBoard(5); err != nil {
		t.Fatal(err)
	}
	for _, r := range storedRecords(t, g, 5) {
		if !g.keeps(&r) {
			t.Errorf("record %d, of the deleted key, is still in the board stored after the next snapshot", r.Index)
		}
	}
}

// TestRecordWithoutCounterHidesNoFloor: a part holding, under one sender
// key, a record without a counter (a sealed version without one) and one
// with counter+1 5 is written again without the second once the key's
// floor passes 5: the part's summary of its keys must not take the first
// for the lowest counter, which no floor passes.
func TestRecordWithoutCounterHidesNoFloor(t *testing.T) {
	inPartsAndPages(t, testRecordWithoutCounterHidesNoFloor)
}

func testRecordWithoutCounterHidesNoFloor(t *testing.T, file bool) {
	g, _ := partsGroup(t)
	k := crypto.KeyRef{Epoch: 1}
	g.n.keys.kept[senderName("sender", g.id, k)] = true
	g.blog.records = []boardRecord{partRecord(1, k, 0, file), partRecord(2, k, 5, file)}
	if err := g.writeBoard(2); err != nil {
		t.Fatal(err)
	}
	g.snapIndex = 2
	g.n.keys.floors[keyName{g.id, k}] = 10
	g.forgetDeleted()
	rs := storedRecords(t, g, 2)
	for _, r := range rs {
		if r.Index == 2 {
			t.Fatal("record 2 (counter+1 5) is below its key's floor of 10, yet still in the stored board")
		}
	}
	if len(rs) != 1 {
		t.Fatalf("%d records stored, want record 1, which has no counter, kept", len(rs))
	}
}
