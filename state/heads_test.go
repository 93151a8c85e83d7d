package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/demes/demes/crypto"
)

// longWorld builds a log of n entries after the genesis and a join, most of
// them cheap rejected frames (the chain covers them all), with raft's empty
// entries and a few real ones among them, and returns the world and the
// chain head after every index (from the first; the empty chain's below
// the first frame), as a node that kept them all would know them.
func longWorld(t testing.TB, n int) (*world, []crypto.Chain) {
	w := newWorld(t, 2)
	w.genesis()
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	for i := range n {
		switch {
		case i%1000 == 500:
			w.entry(w.ids[1], crypto.TypeAddress, &AddressBody{URL: "http://b"})
		case i%97 == 0:
			w.raw(nil)
		default:
			w.raw([]byte{0xff, byte(i), byte(i >> 8)}) // not an envelope: rejected, chained
		}
	}
	// The chain through every index, from a replay of the log.
	c := crypto.NewChain(w.group)
	through := []crypto.Chain{c}
	for _, e := range w.log {
		if len(e.frame) > 0 {
			if err := c.Append(e.index, e.frame); err != nil {
				t.Fatal(err)
			}
		}
		through = append(through, c)
	}
	if c != w.s.Chain {
		t.Fatal("the replayed chain is not the state's")
	}
	return w, through
}

// extend extends base with the entries of w's log up to index: what a node
// does from its stored log.
func extend(t testing.TB, w *world, base crypto.Chain, index uint64) (crypto.Chain, int) {
	read := 0
	for _, e := range w.log[base.Index:index] { // w.log[i] is the entry at i+1
		read++
		if len(e.frame) > 0 {
			if err := base.Append(e.index, e.frame); err != nil {
				t.Fatal(err)
			}
		}
	}
	return base, read
}

// TestHeadsKeptAndRecomputed: the state keeps the heads of the last
// HeadWindow entries and an anchor every AnchorEvery indexes, and the head
// through every index is either one it returns, equal to the head a node
// keeping every head would know, or the one its ChainBase extended with at
// most about 2·AnchorEvery entries of the log gives.
func TestHeadsKeptAndRecomputed(t *testing.T) {
	w, through := longWorld(t, 3*HeadWindow)
	from := w.s.KeepsHeadsFrom()
	if from == 0 || len(w.s.heads) != HeadWindow {
		t.Fatalf("keeps %d heads from %d after %d entries", len(w.s.heads), from, w.index)
	}
	if want := int(w.index/AnchorEvery) + 1; len(w.s.anchors) != want {
		t.Fatalf("%d anchors, want %d", len(w.s.anchors), want)
	}
	for idx := uint64(0); idx <= w.index; idx++ {
		head, ok := w.s.HeadThrough(idx)
		if ok != (idx >= from) {
			t.Fatalf("through %d: ok %v, the state keeps every head from %d", idx, ok, from)
		}
		if ok && head != through[idx].Head {
			t.Fatalf("through %d: a head the chain did not have", idx)
		}
		if idx%61 != 0 && idx%AnchorEvery > 2 && idx+2 < from {
			continue // recomputing is slow: a sample, and around each anchor
		}
		base := w.s.ChainBase(idx)
		got, read := extend(t, w, base, idx)
		if got.Head != through[idx].Head {
			t.Fatalf("through %d: the base at %d extended gives another head", idx, base.Index)
		}
		if read > 2*AnchorEvery {
			t.Fatalf("through %d: %d entries to read from the base at %d", idx, read, base.Index)
		}
	}
	if _, ok := w.s.HeadThrough(w.index + 1); ok {
		t.Fatal("a head through an index not applied yet")
	}
}

// TestCheckpointOfAForgottenIndex: a checkpoint of an index whose head the
// state no longer keeps is rejected as too old to check (not as a
// mismatch), one of an anchor or a recent index is checked as always.
func TestCheckpointOfAForgottenIndex(t *testing.T) {
	w, through := longWorld(t, 3*HeadWindow)
	from := w.s.KeepsHeadsFrom()
	old := from - 10
	if _, found := w.s.HeadAt(old); found || w.log[old-1].frame == nil {
		t.Fatalf("the test needs a forgotten frame at %d", old)
	}
	h := through[old].Head
	wantRejected(t, w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: old, Head: h[:]}), "older than the transcript heads")
	anchor := w.s.anchors[1]
	if anchor.Index >= from {
		t.Fatal("the test needs an anchor before the window")
	}
	if r := w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: anchor.Index, Head: anchor.Head[:]}); r.Err != nil {
		t.Fatalf("a checkpoint of the anchor at %d: %v", anchor.Index, r.Err)
	}
	recent := w.index - 5
	h = through[recent].Head
	if r := w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: recent, Head: h[:]}); r.Err != nil {
		t.Fatalf("a checkpoint of the recent %d: %v", recent, r.Err)
	}
	h[0] ^= 1
	wantRejected(t, w.entry(w.ids[1], crypto.TypeCheckpoint, &CheckpointBody{Index: recent, Head: h[:]}), "does not match")
}

// TestSnapshotSizeDoesNotGrowWithHeads: the heads a snapshot holds are the
// window and the anchors, so a group four times as long has a snapshot
// longer only by its anchors (its message ids aside).
func TestSnapshotSizeDoesNotGrowWithHeads(t *testing.T) {
	sizes := map[int]int{}
	for _, n := range []int{2 * HeadWindow, 8 * HeadWindow} {
		w, _ := longWorld(t, n)
		b, err := w.s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sizes[n] = len(b)
	}
	grew := sizes[8*HeadWindow] - sizes[2*HeadWindow]
	anchors := 6 * HeadWindow / AnchorEvery * 50 // a head is 45 bytes on the wire
	if grew > anchors {
		t.Fatalf("the snapshot grew by %d bytes (%d -> %d), more than the %d of the anchors", grew, sizes[2*HeadWindow], sizes[8*HeadWindow], anchors)
	}
	t.Logf("snapshot %d bytes at %d entries, %d at %d", sizes[2*HeadWindow], 2*HeadWindow, sizes[8*HeadWindow], 8*HeadWindow)
}

// TestHeadsDeterministic: two states that apply the same log, one of them
// restored from a snapshot taken in the middle (before and after the window
// first fills), keep the same heads and write the same snapshot bytes.
func TestHeadsDeterministic(t *testing.T) {
	w, _ := longWorld(t, 3*HeadWindow)
	want, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{HeadWindow / 2, HeadWindow + 3, 2*HeadWindow + AnchorEvery/2} {
		s := New(w.group)
		for _, e := range w.log[:cut] {
			e.apply(s)
		}
		mid, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if s, err = Restore(w.group, mid); err != nil {
			t.Fatalf("restore at %d: %v", cut, err)
		}
		for _, e := range w.log[cut:] {
			e.apply(s)
		}
		got, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("restored at entry %d and applied the rest: another snapshot", cut)
		}
	}
}

// TestRestoreRejectsHeads: a snapshot whose kept heads are not those the
// rule keeps is refused.
func TestRestoreRejectsHeads(t *testing.T) {
	w, _ := longWorld(t, 2*HeadWindow)
	good, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(w *snapshotWire)) []byte {
		var c snapshotWire
		if err := snapDecMode.Unmarshal(good, &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		b, err := encMode.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a head dropped from the window", edit(func(s *snapshotWire) { s.Heads = s.Heads[1:] })},
		{"an anchor missing", edit(func(s *snapshotWire) { s.Anchors = append(s.Anchors[:1], s.Anchors[2:]...) })},
		{"an extra anchor", edit(func(s *snapshotWire) {
			s.Anchors = append(s.Anchors, s.Heads[len(s.Heads)-1])
		})},
		{"an anchor with another head", edit(func(s *snapshotWire) {
			s.Anchors[len(s.Anchors)-1].Head = s.Heads[0].Head
		})},
		{"anchors out of order", edit(func(s *snapshotWire) { s.Anchors[0], s.Anchors[1] = s.Anchors[1], s.Anchors[0] })},
		{"no anchors", edit(func(s *snapshotWire) { s.Anchors = nil })},
	} {
		if _, err := Restore(w.group, tc.data); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: got %v, want ErrBadSnapshot", tc.name, err)
		}
	}
	if _, err := Restore(w.group, good); err != nil {
		t.Fatalf("the good snapshot: %v", err)
	}
}

// TestHeadBeforeForgotten: a record's head older than the kept heads is
// unknown, never "not in this history".
func TestHeadBeforeForgotten(t *testing.T) {
	w, through := longWorld(t, 2*HeadWindow)
	old := through[w.s.KeepsHeadsFrom()-3].Head
	if found, known := w.s.HeadBefore(old, w.index+1, 1<<20); found || known {
		t.Fatalf("a forgotten head: found %v, known %v", found, known)
	}
	recent := through[w.index-3].Head
	if found, known := w.s.HeadBefore(recent, w.index+1, 4096); !found || !known {
		t.Fatalf("a recent head: found %v, known %v", found, known)
	}
	empty := crypto.NewChain(w.group).Head
	if found, known := w.s.HeadBefore(empty, w.index+1, 1<<20); found || known {
		t.Fatalf("the empty chain's head, long after: found %v, known %v", found, known)
	}
}

// TestHeadBeforeHints: where HeadBefore found the last heads changes none
// of its answers. The same queries, about heads before and after the
// index asked about, near and beyond the limit, and forgotten ones, get the
// answers of a state that never found one (the walk alone), asked in an
// order that makes the hints hit and miss; and once the log grew past the
// heads they name.
func TestHeadBeforeHints(t *testing.T) {
	w, through := longWorld(t, HeadWindow+500)
	walk := func(head [32]byte, index uint64, limit int) (bool, bool) {
		clear(w.s.found[:])
		return w.s.HeadBefore(head, index, limit)
	}
	type query struct {
		head  [32]byte
		index uint64
		limit int
	}
	var qs []query
	last := w.index
	for k := uint64(0); k < 400; k++ {
		at := last - (k*37)%uint64(HeadWindow+300)
		head := through[at].Head
		for _, d := range []uint64{0, 1, 5, 300} {
			for _, limit := range []int{1, 10, 4096} {
				qs = append(qs, query{head, at + d, limit})
			}
		}
	}
	want := make([][2]bool, len(qs))
	for i, q := range qs {
		want[i][0], want[i][1] = walk(q.head, q.index, q.limit)
	}
	if !slicesHaveTrue(want) {
		t.Fatal("no query found its head: the test asks nothing")
	}
	clear(w.s.found[:])
	hits := 0
	for i, q := range qs {
		before := w.s.found
		found, known := w.s.HeadBefore(q.head, q.index, q.limit)
		if found != want[i][0] || known != want[i][1] {
			t.Fatalf("query %d (index %d, limit %d): found %v known %v with hints, %v %v without", i, q.index, q.limit, found, known, want[i][0], want[i][1])
		}
		if found && before == w.s.found {
			hits++
		}
	}
	if hits == 0 {
		t.Fatal("no answer came from a hint")
	}

	// The log grows past the heads the hints name: they are forgotten,
	// and a hint must not answer for them.
	hinted := w.s.found
	for i := range HeadWindow + 10 {
		w.raw([]byte{0xfe, byte(i), byte(i >> 8)})
	}
	for _, h := range hinted {
		w.s.found = hinted
		found, known := w.s.HeadBefore(h.Head, w.index+1, 1<<20)
		wf, wk := walk(h.Head, w.index+1, 1<<20)
		if found != wf || known != wk || found {
			t.Fatalf("a head the log grew past (at %d): found %v known %v with its hint, %v %v without", h.Index, found, known, wf, wk)
		}
	}
}

func slicesHaveTrue(v [][2]bool) bool {
	for _, x := range v {
		if x[0] {
			return true
		}
	}
	return false
}
