package state

import (
	"sort"

	"github.com/demes/demes/crypto"
)

// The transcript chain heads a state keeps.
//
// Checkpoints, the signed head statements members exchange (node/fork.go)
// and chat records name the chain head through some index. Keeping the head
// after every entry made the state, and its snapshot, grow by about 40
// bytes an entry, so the state keeps only
//
//   - the heads after the last [HeadWindow] entries with a frame: enough
//     for checkpoints (a member checkpoints what it has just applied), for
//     a chat record's head (looked for among the 4096 heads before the
//     record) and for the statements of members not far behind; and
//   - an **anchor**: the head after the first entry with a frame in each
//     span of [AnchorEvery] indexes, [k·AnchorEvery, (k+1)·AnchorEvery).
//
// Which heads are kept is a function of the log alone, the same on every
// member and in an offline verifier. The head through an older index is
// still known to whoever holds the log: extend [State.ChainBase], the
// latest kept head at or before the index, with the log's entries after it
// (at most about 2·AnchorEvery of them, unless a long run of raft's empty
// entries lies in between). A node does that from its store
// (node/heads.go); a transcript verifier has every entry's head anyway.
//
// Anchors grow by 40 bytes every AnchorEvery indexes (about 10 KB for a
// million entries), which is what makes every old head recomputable at a
// bounded cost.

// HeadWindow is how many of the latest heads (one per entry with a frame)
// the state keeps: the 4096 a chat record's head is looked for among
// (node/fork.go), and about 160 KB of memory per group.
const HeadWindow = 4096

// AnchorEvery is the span of indexes the state keeps one anchor head for.
const AnchorEvery = 4096

// keepHead records c, the chain right after an entry with a frame.
func (s *State) keepHead(c crypto.Chain) {
	if n := len(s.anchors); n == 0 || c.Index/AnchorEvery > s.anchors[n-1].Index/AnchorEvery {
		s.anchors = append(s.anchors, c)
	}
	s.heads = append(s.heads, c)
	if len(s.heads) > HeadWindow {
		// The backing array is dropped whenever append grows it, so it
		// stays within a small multiple of the window.
		s.heads = s.heads[len(s.heads)-HeadWindow:]
	}
}

// headHints is how many found heads HeadBefore remembers.
const headHints = 8

// KeepsHeadsFrom returns the index from which the state keeps the head
// after every entry, or 0 when it still keeps them all (the group has had
// at most HeadWindow entries with a frame). The head through an index
// below it is known only at anchors: see [State.ChainBase].
func (s *State) KeepsHeadsFrom() uint64 {
	if len(s.heads) == 0 || s.heads[0] == s.anchors[0] {
		return 0
	}
	return s.heads[0].Index
}

// HeadAt returns the transcript chain head right after the entry at index,
// and whether the state knows that an entry with a frame sits at exactly
// that index. Below [State.KeepsHeadsFrom] it knows only anchors: found is
// false there for any other index, whatever the log holds.
func (s *State) HeadAt(index uint64) (head [32]byte, found bool) {
	if c, ok := exact(s.heads, index); ok {
		return c.Head, true
	}
	if c, ok := exact(s.anchors, index); ok {
		return c.Head, true
	}
	return [32]byte{}, false
}

// forgotten reports whether HeadAt cannot tell about index because the
// state no longer keeps the heads there.
func (s *State) forgotten(index uint64) bool {
	from := s.KeepsHeadsFrom()
	if from == 0 || index >= from {
		return false
	}
	_, anchor := exact(s.anchors, index)
	return !anchor
}

func exact(cs []crypto.Chain, index uint64) (crypto.Chain, bool) {
	i := sort.Search(len(cs), func(i int) bool { return cs[i].Index >= index })
	if i < len(cs) && cs[i].Index == index {
		return cs[i], true
	}
	return crypto.Chain{}, false
}

// HeadThrough returns the transcript chain head after every entry up to and
// including index: the head after the last entry with a frame at or before
// index. ok is false when the state has not applied that far (index is
// above [State.Applied]: the head through index is not known yet), and when
// index is below [State.KeepsHeadsFrom]: the head is then [State.ChainBase]
// extended with the log's entries up to index. Two members whose heads
// through the same index differ hold different logs up to it.
func (s *State) HeadThrough(index uint64) (head [32]byte, ok bool) {
	if index > s.Applied {
		return [32]byte{}, false
	}
	i := sort.Search(len(s.heads), func(i int) bool { return s.heads[i].Index > index })
	if i > 0 {
		return s.heads[i-1].Head, true
	}
	if s.KeepsHeadsFrom() != 0 {
		return [32]byte{}, false
	}
	return crypto.NewChain(s.Group).Head, true
}

// ChainBase returns the latest chain the state keeps at or before index (a
// recent head or an anchor), or the empty chain when it keeps none: the
// head through index is this chain extended, in order, with every entry
// with a frame after it up to index.
func (s *State) ChainBase(index uint64) crypto.Chain {
	base := crypto.NewChain(s.Group)
	for _, cs := range [][]crypto.Chain{s.anchors, s.heads} {
		i := sort.Search(len(cs), func(i int) bool { return cs[i].Index > index })
		if i > 0 && cs[i-1].Index > base.Index {
			base = cs[i-1]
		}
	}
	return base
}

// HeadBefore reports whether head is the transcript chain head after some
// entry before index, or the empty chain's: what a chat record's head must
// be, since its author sealed it after applying the log up to some point
// before the record's own index. It looks back at most limit heads, and
// no further than the heads the state keeps; known is false when it gave
// up without finding head (an author may seal a message long before it
// commits, from the outbox of a node that was offline), so that only a
// head known not to be there counts as a fork.
//
// It looks first where it found the last few heads: under load, the
// records applied together were sealed by their authors at a few heads,
// hundreds of entries back, and walking back to each cost about 2% of a
// loaded node's CPU. A head is the hash of the whole chain up to it, so it
// sits at one index only, and a hint gives the answer the walk would.
func (s *State) HeadBefore(head [32]byte, index uint64, limit int) (found, known bool) {
	i := sort.Search(len(s.heads), func(i int) bool { return s.heads[i].Index >= index })
	for _, h := range s.found {
		if h.Head != head {
			continue
		}
		if j := sort.Search(i, func(j int) bool { return s.heads[j].Index >= h.Index }); j < i && s.heads[j] == h && i-j <= limit {
			return true, true
		}
	}
	for j := i - 1; j >= 0 && i-j <= limit; j-- {
		if s.heads[j].Head == head {
			s.found[s.nextFound] = s.heads[j]
			s.nextFound = (s.nextFound + 1) % headHints
			return true, true
		}
	}
	if i > limit || s.KeepsHeadsFrom() != 0 {
		return false, false
	}
	return head == crypto.NewChain(s.Group).Head, true
}
