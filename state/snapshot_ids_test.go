package state

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// chunkOf packs records as FreshIDs gives them into a chunk as stores
// before the runs kept them (and a snapshot packs its list).
func chunkOf(recs []byte) []byte {
	var ids []idAt
	for i := 0; i < len(recs); i += IDRecordSize {
		ids = append(ids, idAt{binary.BigEndian.Uint64(recs[i:]), binary.BigEndian.Uint64(recs[i+8:]), binary.BigEndian.Uint64(recs[i+16:])})
	}
	return packIDAts(ids)
}

// fakeStore keeps ids as a node's store does (store.IDRuns), in a map.
type fakeStore map[[16]byte]uint64

func (f fakeStore) StoredID(id [16]byte) (uint64, bool) { at, ok := f[id]; return at, ok }
func (f fakeStore) StoredLen() int                      { return len(f) }

func (f fakeStore) save(recs []byte, replace bool) {
	if replace {
		clear(f)
	}
	for i := 0; i < len(recs); i += IDRecordSize {
		f[[16]byte(recs[i:i+16])] = binary.BigEndian.Uint64(recs[i+16:])
	}
}

// TestStoredIDsRestore: a state that keeps its ids in the node's store
// holds none of them in memory after a snapshot, and a state restored at
// any position of a busy log from its snapshot and the store as it is at
// the end (holding the ids of later entries too) is the state it was: the
// same snapshot, the same ids at the same indexes up to there, and the
// original's results for the rest of the log (a retried id is still a
// duplicate, and an id the store holds from a later entry is new).
func TestStoredIDsRestore(t *testing.T) {
	w := busyWorld(t)
	stored := fakeStore{}
	orig := New(w.group)
	orig.KeepIDsIn(stored)
	results := make([]Result, len(w.log))
	var datas [][]byte
	for i, e := range w.log {
		results[i] = e.apply(orig)
		data, err := orig.SnapshotWithoutIDs()
		if err != nil {
			t.Fatal(err)
		}
		recs, replace := orig.FreshIDs()
		if replace != (i == 0) {
			t.Fatalf("entry %d: replace %v", w.log[i].index, replace)
		}
		stored.save(recs, replace)
		orig.DropFreshIDs()
		if m := &orig.MsgIDs; len(m.sorted)+len(m.recent) != 0 {
			t.Fatalf("after the snapshot at entry %d: %d ids still in memory", w.log[i].index, len(m.sorted)+len(m.recent))
		}
		datas = append(datas, data)
	}
	if len(stored) < 10 || orig.MsgIDs.Len() != len(stored) {
		t.Fatalf("the busy log gave %d ids, the state counts %d", len(stored), orig.MsgIDs.Len())
	}
	if _, err := orig.Snapshot(); err == nil {
		t.Fatal("a full snapshot of a state whose ids are in the store holds none of them")
	}
	for k, data := range datas {
		at := w.log[k].index
		r, err := RestoreStored(w.group, data, stored)
		if err != nil {
			t.Fatalf("restore after entry %d: %v", at, err)
		}
		if again, _ := r.SnapshotWithoutIDs(); !bytes.Equal(again, data) {
			t.Fatalf("restored after entry %d: the state differs from the one stored", at)
		}
		for id, index := range stored {
			if got, ok := r.MsgIDs.Lookup(id); ok != (index <= at) || (ok && got != index) {
				t.Fatalf("restored after entry %d: id accepted at %d: found at %d (%v)", at, index, got, ok)
			}
		}
		c, err := r.Copy()
		if err != nil {
			t.Fatal(err)
		}
		for i := k + 1; i < len(w.log); i++ {
			if got := w.log[i].apply(r); !reflect.DeepEqual(got, results[i]) {
				t.Fatalf("restored after entry %d, entry %d: got %+v, want %+v", at, w.log[i].index, got, results[i])
			}
			if got := w.log[i].apply(c); !reflect.DeepEqual(got, results[i]) {
				t.Fatalf("a copy of the state restored after entry %d, entry %d: got %+v, want %+v", at, w.log[i].index, got, results[i])
			}
		}
	}
}

// TestSplitSnapshotRestores: a store written before the runs holds, with
// each snapshot (SnapshotVersionSplit), a chunk of the ids accepted since
// the last one. At every position of a busy log the state restored from
// them is the state it was (the same full snapshot, byte for byte), which
// then applies the rest of the log with the original's results: a retried
// id is still a duplicate.
func TestSplitSnapshotRestores(t *testing.T) {
	w := busyWorld(t)
	orig := New(w.group)
	var chunks [][]byte
	chunked := uint64(0) // the applied index of the last chunk
	results := make([]Result, len(w.log))
	type split struct {
		data   []byte
		chunks [][]byte
		full   []byte
	}
	var splits []split
	for i, e := range w.log {
		results[i] = e.apply(orig)
		data, err := orig.snapshot(SnapshotVersionSplit)
		if err != nil {
			t.Fatal(err)
		}
		// The ids accepted since the last snapshot, as an older build
		// stored them beside this one.
		var since []idAt
		for _, id := range orig.MsgIDs.inOrder() {
			if id.index > chunked {
				since = append(since, id)
			}
		}
		if len(since) > 0 {
			chunks = append(chunks, packIDAts(since))
		}
		chunked = orig.Applied
		full, err := orig.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		splits = append(splits, split{data, append([][]byte(nil), chunks...), full})
	}
	if orig.MsgIDs.Len() < 10 || len(chunks) < 5 {
		t.Fatalf("the busy log gave %d ids in %d chunks", orig.MsgIDs.Len(), len(chunks))
	}
	for k, sp := range splits {
		r, err := RestoreWithIDs(w.group, sp.data, sp.chunks)
		if err != nil {
			t.Fatalf("restore after entry %d: %v", w.log[k].index, err)
		}
		if got, _ := r.Snapshot(); !bytes.Equal(got, sp.full) {
			t.Fatalf("restored after entry %d: the state differs from the one stored", w.log[k].index)
		}
		for i := k + 1; i < len(w.log); i++ {
			if got := w.log[i].apply(r); !reflect.DeepEqual(got, results[i]) {
				t.Fatalf("restored after entry %d, entry %d: got %+v, want %+v", w.log[k].index, w.log[i].index, got, results[i])
			}
		}
	}
	// A snapshot that held its ids (a store from before the split) is
	// taken back with them, and the next save holds them all.
	full, _ := orig.Snapshot()
	r, err := RestoreWithIDs(w.group, full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Snapshot(); !bytes.Equal(again, full) {
		t.Fatal("a full snapshot restored with RestoreWithIDs differs")
	}
	if ids, replace := r.FreshIDs(); !replace || len(ids) != IDRecordSize*r.MsgIDs.Len() {
		t.Fatalf("after a full snapshot the next save is %d bytes, replace %v: want every id, replacing", len(ids), replace)
	}
	// Either, kept in the store from then on, gives all its ids at its
	// next snapshot, replacing what the store holds.
	r, err = RestoreWithIDs(w.group, splits[len(splits)-1].data, chunks)
	if err != nil {
		t.Fatal(err)
	}
	r.KeepIDsIn(fakeStore{})
	if ids, replace := r.FreshIDs(); !replace || len(ids) != IDRecordSize*r.MsgIDs.Len() {
		t.Fatalf("a state from chunks, kept in the store: the next save is %d bytes, replace %v: want every id, replacing", len(ids), replace)
	}
}

// TestSplitSnapshotRejects: the chunks are checked as a snapshot's own
// list is: an id stored twice, an index beyond the applied one, a split
// snapshot that holds ids, or one given to Restore, are refused.
func TestSplitSnapshotRejects(t *testing.T) {
	w := busyWorld(t)
	data, err := w.s.snapshot(SnapshotVersionSplit)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := w.s.FreshIDs()
	all := chunkOf(recs)
	ids := unpackIDs(all)
	if _, err := RestoreWithIDs(w.group, data, [][]byte{all}); err != nil {
		t.Fatalf("the good chunk: %v", err)
	}
	full, _ := w.s.Snapshot()
	cases := []struct {
		name   string
		data   []byte
		chunks [][]byte
	}{
		{"an id in two chunks", data, [][]byte{all, packIDs(ids[:1])}},
		{"an id of a full snapshot in a chunk", full, [][]byte{packIDs(ids[:1])}},
		{"an index beyond the applied one", data, [][]byte{packIDs([]packedID{{id: [16]byte{1}, index: w.s.Applied + 1}})}},
		{"a chunk out of order", data, [][]byte{packIDs(ids, 0, 1)}},
		{"a chunk cut short", data, [][]byte{all[:len(all)-3]}},
	}
	for _, c := range cases {
		if _, err := RestoreWithIDs(w.group, c.data, c.chunks); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", c.name, err)
		}
	}
	if _, err := Restore(w.group, data); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("Restore took a snapshot without its ids: %v", err)
	}
	stored, _ := w.s.SnapshotWithoutIDs()
	if _, err := RestoreWithIDs(w.group, stored, nil); !errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("RestoreWithIDs took a snapshot whose ids are in the store: %v", err)
	}
	if _, err := RestoreStored(w.group, data, fakeStore{}); !errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("RestoreStored took a snapshot whose ids are in chunks: %v", err)
	}
	for _, v := range []uint64{SnapshotVersionSplit, SnapshotVersionStored} {
		d, _ := w.s.snapshot(v)
		var sw snapshotWire
		if err := snapDecMode.Unmarshal(d, &sw); err != nil {
			t.Fatal(err)
		}
		sw.MsgIDs = all
		withIDs, err := encMode.Marshal(sw)
		if err != nil {
			t.Fatal(err)
		}
		_, err1 := RestoreWithIDs(w.group, withIDs, nil)
		_, err2 := RestoreStored(w.group, withIDs, fakeStore{})
		if !errors.Is(err1, ErrBadSnapshot) || !errors.Is(err2, ErrBadSnapshot) {
			t.Errorf("a snapshot of version %d holding ids: %v, %v, want ErrBadSnapshot", v, err1, err2)
		}
	}
}

// BenchmarkRestoreWithIDs measures a restart's restore of a group of
// 1,000,000 messages whose ids are stored in 100 chunks, as snapshots
// every 10,000 entries leave them.
func BenchmarkRestoreWithIDs(b *testing.B) {
	s := bigState(b, 1_000_000)
	data, err := s.snapshot(SnapshotVersionSplit)
	if err != nil {
		b.Fatal(err)
	}
	all := s.MsgIDs.inOrder()
	byIndex := slices.Clone(all)
	slices.SortFunc(byIndex, func(x, y idAt) int { return cmp.Compare(x.index, y.index) })
	var chunks [][]byte
	for i := 0; i < len(byIndex); i += 10_000 {
		c := slices.Clone(byIndex[i:min(i+10_000, len(byIndex))])
		slices.SortFunc(c, idAt.cmp)
		chunks = append(chunks, packIDAts(c))
	}
	for b.Loop() {
		if _, err := RestoreWithIDs(s.Group, data, chunks); err != nil {
			b.Fatal(err)
		}
	}
}
