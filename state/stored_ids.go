package state

import (
	"encoding/binary"
	"errors"

	"github.com/demes/demes/crypto"
)

// Message ids kept in the node's store. Even held compactly (25.6 bytes an
// id, [MessageIDs]) the accepted ids were half of a node's live heap at
// 1,000,000 messages (issue 16: memory must not grow with the history). A
// node that keeps its state's ids in its store ([State.KeepIDsIn]) holds in
// memory only those accepted since its last snapshot; older ones it looks
// up in the store, which holds, for each id, the index of the entry that
// carried it. Since an id's index is a function of the committed log,
// which never changes, a state uses what the store says of an id only up
// to the snapshot it was stored with (storedTo): a state that applies the
// log again from further back does not see the ids of entries it has yet
// to apply.

// SnapshotVersionStored is the version [State.SnapshotWithoutIDs] writes:
// the encoding of [SnapshotVersion] without the accepted message ids, which
// the node keeps in its store ([StoredIDs]); [RestoreStored] reads it. A
// build that reads [SnapshotVersionSplit] and looks for its ids in chunks
// refuses it, and applies the log again.
const SnapshotVersionStored = 7

// IDRecordSize is the size of one id in [State.FreshIDs]: the id, then
// the index of the entry that carried it, big-endian.
const IDRecordSize = 16 + 8

// StoredIDs is where a node keeps the message ids its snapshots stored.
// Its methods may be called from several goroutines at once. A store that
// cannot read an id must report it to its node, which must stop the group:
// an id reported missing could let a retried message in twice on this
// node alone.
type StoredIDs interface {
	// StoredID returns the index of the entry that carried id, and
	// whether the store holds id.
	StoredID(id [16]byte) (index uint64, ok bool)
	// StoredLen returns how many ids the store holds.
	StoredLen() int
}

// errIDsStored is the error of [State.Snapshot] of a state whose older
// ids are in the store.
var errIDsStored = errors.New("take a full snapshot: the state's older message ids are in the node's store")

// KeepIDsIn makes the state keep its accepted message ids in st once they
// are stored: from the next [State.DropFreshIDs] on it holds in memory
// only the ids accepted since, and looks older ones up in st. Until then
// it trusts nothing st holds, and the next [State.FreshIDs] gives every id
// it holds, to replace what st holds.
func (s *State) KeepIDsIn(st StoredIDs) {
	s.MsgIDs.stored = st
}

// RestoreStored restores the state from data, a snapshot of version
// [SnapshotVersionStored], whose message ids up to its applied index are
// in st, as [State.KeepIDsIn] keeps them.
func RestoreStored(group crypto.GroupID, data []byte, st StoredIDs) (*State, error) {
	s, err := restore(group, data, SnapshotVersionStored)
	if err != nil {
		return nil, err
	}
	s.MsgIDs.stored, s.MsgIDs.storedTo = st, s.Applied
	return s, nil
}

// Copy returns a copy of the state that shares the ids stored in the
// node's store, if any.
func (s *State) Copy() (*State, error) {
	data, err := s.snapshot(SnapshotVersion)
	if err != nil {
		return nil, err
	}
	c, err := Restore(s.Group, data)
	if err != nil {
		return nil, err
	}
	c.MsgIDs.stored, c.MsgIDs.storedTo = s.MsgIDs.stored, s.MsgIDs.storedTo
	return c, nil
}

// storedLookup returns what the store holds of id, when the state trusts
// it.
func (m *MessageIDs) storedLookup(id [16]byte) (uint64, bool) {
	if m.storedTo == 0 || m.stored == nil {
		return 0, false
	}
	at, ok := m.stored.StoredID(id)
	if !ok || at > m.storedTo {
		return 0, false
	}
	return at, true
}

// dropStored forgets the ids held in memory once they are stored, up to
// applied.
func (m *MessageIDs) dropStored(applied uint64) {
	if m.stored == nil {
		return
	}
	m.sorted, m.starts, m.shift, m.recent = nil, nil, 0, nil
	m.storedTo = applied
}

// records returns ids as FreshIDs gives them.
func records(ids []idAt) []byte {
	if len(ids) == 0 {
		return nil
	}
	out := make([]byte, 0, IDRecordSize*len(ids))
	for _, e := range ids {
		out = binary.BigEndian.AppendUint64(out, e.hi)
		out = binary.BigEndian.AppendUint64(out, e.lo)
		out = binary.BigEndian.AppendUint64(out, e.index)
	}
	return out
}
