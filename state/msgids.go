package state

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
)

// MessageIDs is the set of accepted chat message ids, each with the index
// of the entry that carried it: what makes a retried message count once,
// and what a node resolves a reply, a reaction or a page's "before" with.
//
// It grows with the history (issue 16), so it is held compactly: most ids
// sit in one slice sorted by id, 24 bytes each, with a table of where each
// run of leading bits starts (half a byte an id), and the newest in a small
// map, merged into the slice once it holds an eighth as many. A Go map of
// all of them held 56 bytes an id (BenchmarkMessageIDs), and a snapshot
// sorted them all again each time; a snapshot now reads them in order, and
// a restart takes them back in order without a map insert each.
//
// Its methods but add and restore may be called from several goroutines at
// once, as a State's readers may.
type MessageIDs struct {
	sorted []idAt              // ascending by id
	starts []uint32            // sorted[starts[k]:starts[k+1]]: the ids whose top bits are k
	shift  uint                // 64 - the number of those bits
	recent map[[16]byte]uint64 // accepted since the last merge

	// The ids a node keeps in its store (stored_ids.go): those the store
	// holds up to storedTo; none when storedTo is 0. With a store, the
	// ids above are those accepted since storedTo, or all of them when it
	// is 0: what the node's next snapshot stores (State.FreshIDs).
	stored   StoredIDs
	storedTo uint64
}

// idAt is an accepted id, as two big-endian halves (so that comparing them
// in order compares the ids byte-wise), and the index of its entry.
type idAt struct {
	hi, lo uint64
	index  uint64
}

func idAtOf(id [16]byte, index uint64) idAt {
	return idAt{binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:]), index}
}

func (e idAt) id() (id [16]byte) {
	binary.BigEndian.PutUint64(id[:8], e.hi)
	binary.BigEndian.PutUint64(id[8:], e.lo)
	return id
}

func (e idAt) cmp(f idAt) int {
	if c := cmp.Compare(e.hi, f.hi); c != 0 {
		return c
	}
	return cmp.Compare(e.lo, f.lo)
}

// Lookup returns the index of the entry that carried the accepted message
// id, and whether there is one.
func (m *MessageIDs) Lookup(id [16]byte) (uint64, bool) {
	if at, ok := m.recent[id]; ok {
		return at, true
	}
	if len(m.sorted) == 0 {
		return m.storedLookup(id)
	}
	want := idAtOf(id, 0)
	run := m.sorted
	if m.starts != nil {
		k := want.hi >> m.shift
		run = m.sorted[m.starts[k]:m.starts[k+1]]
	}
	i, ok := slices.BinarySearchFunc(run, want, idAt.cmp)
	if !ok {
		return m.storedLookup(id)
	}
	return run[i].index, true
}

// Has reports whether id was accepted.
func (m *MessageIDs) Has(id [16]byte) bool {
	_, ok := m.Lookup(id)
	return ok
}

// Len returns how many ids were accepted.
func (m *MessageIDs) Len() int {
	n := len(m.sorted) + len(m.recent)
	if m.storedTo > 0 && m.stored != nil {
		n += m.stored.StoredLen()
	}
	return n
}

// add records id, which must not be in the set, as accepted at index, after
// every id already there.
func (m *MessageIDs) add(id [16]byte, index uint64) {
	if m.recent == nil {
		m.recent = map[[16]byte]uint64{}
	}
	m.recent[id] = index
	if len(m.recent) >= mergeAt(len(m.sorted)) {
		m.setSorted(m.inOrder())
		m.recent = nil
	}
}

// mergeAt is how many recent ids are merged into a sorted slice of n.
func mergeAt(n int) int { return max(1024, n/8) }

// recentOf is how many of n ids, added one at a time, are recent: the
// layout depends on the number of ids alone, so that a state restored from
// a snapshot is the same, field for field, as the one that wrote it.
func recentOf(n int) int {
	sorted := 0
	for sorted+mergeAt(sorted) <= n {
		sorted += mergeAt(sorted)
	}
	return n - sorted
}

// restore makes m, a new set, the set of ids, ascending, laid out as adding
// them one at a time in the order of their indexes would have. Two ids at
// one index cannot come from applying a log (one message an entry): it
// says so rather than lay them out otherwise.
func (m *MessageIDs) restore(ids []idAt) error {
	idx := make([]uint64, len(ids))
	for i, e := range ids {
		idx[i] = e.index
	}
	slices.Sort(idx)
	for i := 1; i < len(idx); i++ {
		if idx[i] == idx[i-1] {
			return bad("two messages accepted at %d", idx[i])
		}
	}
	r := recentOf(len(ids))
	if r == 0 {
		m.setSorted(ids)
		return nil
	}
	// The recent ones are the r added last: those of the r highest
	// indexes.
	from := idx[len(idx)-r]
	sorted := make([]idAt, 0, len(ids)-r)
	m.recent = make(map[[16]byte]uint64, r)
	for _, e := range ids {
		if e.index >= from {
			m.recent[e.id()] = e.index
		} else {
			sorted = append(sorted, e)
		}
	}
	if len(sorted) == 0 {
		sorted = nil // as before a first merge
	}
	m.setSorted(sorted)
	return nil
}

// setSorted makes sorted, ascending, the slice of ids, and indexes its runs
// of leading bits: about eight ids a run.
func (m *MessageIDs) setSorted(sorted []idAt) {
	m.sorted, m.starts, m.shift = sorted, nil, 0
	b := bits.Len(uint(len(sorted)/8)) - 1
	if b < 4 {
		return // a binary search of a few hundred ids at most
	}
	b = min(b, 24)
	m.shift = uint(64 - b)
	m.starts = make([]uint32, 1<<b+1)
	k := 0
	for i, e := range sorted {
		for top := int(e.hi >> m.shift); k <= top; k++ {
			m.starts[k] = uint32(i)
		}
	}
	for ; k < len(m.starts); k++ {
		m.starts[k] = uint32(len(sorted))
	}
}

// inOrder returns every id in ascending order, without changing m: the
// sorted slice itself when nothing is recent.
func (m *MessageIDs) inOrder() []idAt {
	if len(m.recent) == 0 {
		return m.sorted
	}
	news := make([]idAt, 0, len(m.recent))
	for id, at := range m.recent {
		news = append(news, idAtOf(id, at))
	}
	slices.SortFunc(news, idAt.cmp)
	return merge2(m.sorted, news)
}
