package state

import (
	"encoding/binary"

	"github.com/demes/demes/crypto"
)

// The accepted message ids are most of a big group's snapshot (19 bytes a
// message), and a node took a snapshot every 10,000 entries: at 1,000,000
// messages each one encoded and stored 19 MB again, about 155 ms on the
// group's goroutine (BenchmarkSnapshot, store.BenchmarkSaveSnapshot), a
// seventh of a member's catch-up. So the node stores the ids apart, those
// accepted since the last snapshot with each one, and the snapshot itself
// only what does not grow with the history. Stores written before
// SnapshotVersionStored hold them in chunks (SnapshotVersionSplit), which
// [RestoreWithIDs] reads into memory; those written since keep them in the
// store (stored_ids.go).

// SnapshotWithoutIDs encodes the state as [State.Snapshot] does, in
// version [SnapshotVersionStored], without the accepted message ids:
// [RestoreStored] takes it back with the ids the node stored as
// [State.FreshIDs] gave them (stored_ids.go).
func (s *State) SnapshotWithoutIDs() ([]byte, error) {
	return s.snapshot(SnapshotVersionStored)
}

// FreshIDs returns the ids the state holds in memory, as records of
// [IDRecordSize] bytes ascending by id, for a state that keeps its ids in
// the node's store ([State.KeepIDsIn]): those accepted since the last
// [State.DropFreshIDs], or, when replace is set, every id, to replace what
// the store holds (a new state, or one restored from a snapshot that held
// its ids or from chunks). The state keeps them until DropFreshIDs, so
// that a snapshot that could not be stored loses none.
func (s *State) FreshIDs() (recs []byte, replace bool) {
	return records(s.MsgIDs.inOrder()), s.MsgIDs.storedTo == 0
}

// DropFreshIDs forgets the ids FreshIDs gave: they are stored, with the
// state at its applied index. A state that keeps its ids in the store
// ([State.KeepIDsIn]) then holds none of them in memory; one that does
// not (a copy, a test) keeps them all.
func (s *State) DropFreshIDs() {
	s.MsgIDs.dropStored(s.Applied)
}

// packIDAts packs ids as a snapshot does: each id, then its index as a
// uvarint.
func packIDAts(ids []idAt) []byte {
	if len(ids) == 0 {
		return nil
	}
	out := make([]byte, 0, (16+binary.MaxVarintLen64)*len(ids))
	for _, e := range ids {
		id := e.id()
		out = binary.AppendUvarint(append(out, id[:]...), e.index)
	}
	return out
}

// RestoreWithIDs restores the state from data, a snapshot in either
// version, and the chunks of ids stored with the snapshots of a split one,
// checked as [Restore] checks a snapshot's list (each chunk ascending by
// id, every index after the genesis and not beyond the applied index, no
// id twice, no two ids at one index). It holds them all in memory: kept in
// the node's store from then on ([State.KeepIDsIn]), it gives them all at
// its next snapshot.
func RestoreWithIDs(group crypto.GroupID, data []byte, chunks [][]byte) (*State, error) {
	s, err := restore(group, data, SnapshotVersion, SnapshotVersionSplit)
	if err != nil {
		return nil, err
	}
	if len(chunks) > 0 {
		runs := [][]idAt{s.MsgIDs.inOrder()}
		n := len(runs[0])
		for _, c := range chunks {
			run, err := idsIn(c, s.Applied)
			if err != nil {
				return nil, err
			}
			if n += len(run); n > MaxSnapshotItems {
				return nil, bad("more than %d message ids", MaxSnapshotItems)
			}
			runs = append(runs, run)
		}
		all := mergeRuns(runs)
		for i := 1; i < len(all); i++ {
			if all[i].cmp(all[i-1]) == 0 {
				return nil, bad("message id %x stored twice", all[i].id())
			}
		}
		s.MsgIDs = MessageIDs{}
		if err := s.MsgIDs.restore(all); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// mergeRuns merges runs, each ascending by id, into one, two at a time
// (about log2 of their number passes over the ids): a restart reads a
// chunk per snapshot, and sorting them all again took longer than reading
// them.
func mergeRuns(runs [][]idAt) []idAt {
	for len(runs) > 1 {
		next := make([][]idAt, 0, (len(runs)+1)/2)
		for i := 0; i+1 < len(runs); i += 2 {
			next = append(next, merge2(runs[i], runs[i+1]))
		}
		if len(runs)%2 == 1 {
			next = append(next, runs[len(runs)-1])
		}
		runs = next
	}
	if len(runs) == 0 {
		return nil
	}
	return runs[0]
}

// merge2 merges a and b, each ascending by id, into a new slice; of two
// equal ids, a's comes first.
func merge2(a, b []idAt) []idAt {
	out := make([]idAt, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].cmp(a[0]) < 0 {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}
