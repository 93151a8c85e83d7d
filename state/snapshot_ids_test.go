package state

import (
	"bytes"
	"cmp"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// TestSplitSnapshotRestores: a node that stores, at each snapshot, the
// snapshot without ids and a chunk of the ids accepted since the last one
// restores at every position of a busy log the state it had (the same
// full snapshot, byte for byte), which then applies the rest of the log
// with the original's results: a retried id is still a duplicate.
func TestSplitSnapshotRestores(t *testing.T) {
	w := busyWorld(t)
	orig := New(w.group)
	orig.TrackFreshIDs(true)
	var chunks [][]byte
	results := make([]Result, len(w.log))
	type split struct {
		data   []byte
		chunks [][]byte
		full   []byte
	}
	var splits []split
	for i, e := range w.log {
		results[i] = e.apply(orig)
		data, err := orig.SnapshotWithoutIDs()
		if err != nil {
			t.Fatal(err)
		}
		ids, replace := orig.FreshIDs()
		if replace {
			chunks = nil
		}
		if len(ids) > 0 {
			chunks = append(chunks, ids)
		}
		orig.DropFreshIDs()
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
	// taken back with them, and the next chunk holds them all.
	full, _ := orig.Snapshot()
	r, err := RestoreWithIDs(w.group, full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Snapshot(); !bytes.Equal(again, full) {
		t.Fatal("a full snapshot restored with RestoreWithIDs differs")
	}
	if ids, replace := r.FreshIDs(); !replace || len(ids) == 0 {
		t.Fatalf("after a full snapshot the next chunk is %d bytes, replace %v: want every id, replacing", len(ids), replace)
	}
}

// TestSplitSnapshotRejects: the chunks are checked as a snapshot's own
// list is: an id stored twice, an index beyond the applied one, a split
// snapshot that holds ids, or one given to Restore, are refused.
func TestSplitSnapshotRejects(t *testing.T) {
	w := busyWorld(t)
	data, err := w.s.SnapshotWithoutIDs()
	if err != nil {
		t.Fatal(err)
	}
	w.s.TrackFreshIDs(true)
	all, _ := w.s.FreshIDs()
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
	var sw snapshotWire
	if err := snapDecMode.Unmarshal(data, &sw); err != nil {
		t.Fatal(err)
	}
	sw.MsgIDs = all
	withIDs, err := encMode.Marshal(sw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreWithIDs(w.group, withIDs, nil); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("a split snapshot holding ids: %v, want ErrBadSnapshot", err)
	}
}

// BenchmarkRestoreWithIDs measures a restart's restore of a group of
// 1,000,000 messages whose ids are stored in 100 chunks, as snapshots
// every 10,000 entries leave them.
func BenchmarkRestoreWithIDs(b *testing.B) {
	s := bigState(b, 1_000_000)
	data, err := s.SnapshotWithoutIDs()
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
