package node

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/node/store"
)

// logStore is a group's raft.Storage. It keeps the recent tail of the log in
// a raft.MemoryStorage and reads older entries back from the node's store,
// which keeps the whole log. So the memory a group takes for its log is
// bounded (the tail after the last compaction), yet raft never finds an
// entry compacted: FirstIndex stays at the first stored index (1 for a
// group this node created or joined), and a member that was offline for any
// length of time catches up by ordinary appends, receiving every message it
// missed. (Catching it up with a snapshot instead would leave it without
// the history: the chat messages before the snapshot.)
//
// raft calls the Storage methods from its own goroutine while the group's
// goroutine appends, compacts and snapshots. The memory storage has its own
// mutex and bbolt read transactions run beside a writer, so the only care
// needed is a compaction between deciding to read memory and reading it:
// such a read fails with ErrCompacted, and is done again from the store.
// An entry is written to the store before it is appended to memory (see
// handleReady), and only applied entries are compacted away, so every index
// below the memory's first one is in the store.
type logStore struct {
	mem   *raft.MemoryStorage
	store *store.Store
	gid   []byte
	// bounds is where the log raft may read starts. It is fixed, except
	// when a snapshot is installed (the log before it is gone then); the
	// store keeps every entry from there on.
	bounds atomic.Pointer[logBounds]

	// sizes holds the index and data size of each entry in the memory, in
	// order, and memBytes their sum: the group's goroutine, the only one
	// that appends to and compacts the memory, keeps them (append,
	// compact, trim).
	sizes    []memEntry
	memBytes int
}

// memEntry is the index and the data size of an entry in the memory.
type memEntry struct {
	index uint64
	size  int
}

// defaultMemLogBytes is Config.MemLogBytes's default. It bounds the data
// of a group's log held in memory: past it, trim drops the applied entries
// before the newest half of it, and raft reads them from the store, as for
// a member far behind. Without it the memory held every entry since the
// last snapshot, up to SnapshotEntries (10,000): 640 MB of 64 KiB messages
// (TestMemoryLogBounded).
const defaultMemLogBytes = 2 << 20

type logBounds struct {
	first uint64 // the first index raft may read
	// prevTerm is the term of the entry before first, which raft may ask
	// for; known tells whether it is known (it is for a log from index 1,
	// and right after a snapshot was installed).
	prevTerm uint64
	known    bool
}

var _ raft.Storage = (*logStore)(nil)

// newLogStore returns the storage of a group over mem, which holds the tail
// of the log (or all of it), and the store, which holds the log from its
// first stored index on.
func newLogStore(mem *raft.MemoryStorage, st *store.Store, gid []byte) (*logStore, error) {
	ls := &logStore{mem: mem, store: st, gid: gid}
	first, _, err := st.LogBounds(gid)
	if err != nil {
		return nil, err
	}
	memFirst, _ := mem.FirstIndex()
	b := &logBounds{first: first}
	switch {
	case first == 0 || first >= memFirst:
		// Nothing stored before the memory's entries: the log starts there.
		b.first = memFirst
		t, err := mem.Term(memFirst - 1)
		b.prevTerm, b.known = t, err == nil
	case first == 1:
		b.known = true // the term before index 1 is 0
	}
	ls.bounds.Store(b)
	if last, _ := mem.LastIndex(); last >= memFirst {
		ents, err := mem.Entries(memFirst, last+1, math.MaxUint64)
		if err != nil {
			return nil, err
		}
		ls.noteSizes(ents)
	}
	return ls, nil
}

// append appends ents, which the store holds already, to the memory; they
// replace any entries there from ents[0]'s index on.
func (ls *logStore) append(ents []*pb.Entry) error {
	if err := ls.mem.Append(ents); err != nil {
		return err
	}
	if len(ents) > 0 {
		first := ents[0].GetIndex()
		for len(ls.sizes) > 0 && ls.sizes[len(ls.sizes)-1].index >= first {
			ls.memBytes -= ls.sizes[len(ls.sizes)-1].size
			ls.sizes = ls.sizes[:len(ls.sizes)-1]
		}
	}
	ls.noteSizes(ents)
	return nil
}

func (ls *logStore) noteSizes(ents []*pb.Entry) {
	for _, e := range ents {
		ls.sizes = append(ls.sizes, memEntry{e.GetIndex(), len(e.GetData())})
		ls.memBytes += len(e.GetData())
	}
}

// compact drops the memory's entries through index to, which the group has
// applied.
func (ls *logStore) compact(to uint64) error {
	if err := ls.mem.Compact(to); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	k := 0
	for k < len(ls.sizes) && ls.sizes[k].index <= to {
		ls.memBytes -= ls.sizes[k].size
		k++
	}
	ls.sizes = ls.sizes[k:]
	return nil
}

// trim compacts the memory, when its entries' data exceed budget bytes, to
// the newest half of the budget, never past applied.
func (ls *logStore) trim(applied uint64, budget int) error {
	if ls.memBytes <= budget {
		return nil
	}
	left, to := ls.memBytes, uint64(0)
	for _, e := range ls.sizes {
		if left <= budget/2 || e.index > applied {
			break
		}
		left -= e.size
		to = e.index
	}
	if to == 0 {
		return nil
	}
	return ls.compact(to)
}

// InitialState implements raft.Storage: the hard state and the
// configuration of the latest snapshot (the entries after it carry the
// changes since).
func (ls *logStore) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return ls.mem.InitialState()
}

// FirstIndex implements raft.Storage.
func (ls *logStore) FirstIndex() (uint64, error) { return ls.bounds.Load().first, nil }

// LastIndex implements raft.Storage: the memory always holds the last entry.
func (ls *logStore) LastIndex() (uint64, error) { return ls.mem.LastIndex() }

// Snapshot implements raft.Storage. raft asks for one only to send it to a
// follower whose next entry is compacted, which never happens here, since
// nothing is compacted below FirstIndex.
func (ls *logStore) Snapshot() (*pb.Snapshot, error) { return ls.mem.Snapshot() }

// Term implements raft.Storage.
func (ls *logStore) Term(i uint64) (uint64, error) {
	for {
		memFirst, _ := ls.mem.FirstIndex()
		if i+1 >= memFirst {
			// In memory, or the index just before it, whose term the memory
			// keeps (after a snapshot, the snapshot's term).
			t, err := ls.mem.Term(i)
			if errors.Is(err, raft.ErrCompacted) {
				continue // compacted meanwhile: now in the store only
			}
			return t, err
		}
		b := ls.bounds.Load()
		switch {
		case i+1 < b.first:
			return 0, raft.ErrCompacted
		case i+1 == b.first && b.known:
			return b.prevTerm, nil
		case i+1 == b.first:
			// Not stored: raft then treats it as compacted.
			return 0, raft.ErrCompacted
		}
		t, err := ls.store.Term(ls.gid, i)
		if err != nil {
			return 0, ls.storeErr(err)
		}
		return t, nil
	}
}

// Entries implements raft.Storage: [lo, hi) within maxSize bytes, at least
// one entry. The part below the memory's first index comes from the store.
func (ls *logStore) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	if lo < ls.bounds.Load().first {
		return nil, raft.ErrCompacted
	}
	for {
		memFirst, _ := ls.mem.FirstIndex()
		if lo >= memFirst {
			ents, err := ls.mem.Entries(lo, hi, maxSize)
			if errors.Is(err, raft.ErrCompacted) {
				continue // compacted meanwhile: read it from the store
			}
			return ents, err
		}
		cut := min(hi, memFirst)
		ents, err := ls.store.Entries(ls.gid, lo, cut, maxSize)
		if err != nil {
			return nil, ls.storeErr(err)
		}
		if cut == hi || uint64(len(ents)) < cut-lo {
			return ents, nil // the whole range, or as much as fits
		}
		var size uint64
		for _, e := range ents {
			size += uint64(proto.Size(e))
		}
		if size >= maxSize {
			return ents, nil
		}
		// The rest from the memory (or, compacted meanwhile, the store),
		// within what is left of maxSize; its first entry comes only if it
		// fits, since ents already holds one.
		rest, err := ls.Entries(cut, hi, maxSize-size)
		if err != nil {
			return nil, err
		}
		if len(rest) > 0 && size+uint64(proto.Size(rest[0])) > maxSize {
			return ents, nil
		}
		// ents is ours (decoded for this call): appending to it is safe.
		return append(ents, rest...), nil
	}
}

// storeErr maps an error of the store to raft's: a missing entry is
// ErrUnavailable (raft panics on it: the store has lost a committed entry).
func (ls *logStore) storeErr(err error) error {
	if errors.Is(err, store.ErrMissing) {
		return fmt.Errorf("%w: %v", raft.ErrUnavailable, err)
	}
	return err
}

// install replaces the log with a snapshot received from the leader (raft's
// rd.Snapshot): the memory then starts after it, and so does the log raft
// may read.
func (ls *logStore) install(snap *pb.Snapshot) error {
	if err := ls.mem.ApplySnapshot(snap); err != nil {
		return err
	}
	ls.sizes, ls.memBytes = nil, 0
	md := snap.GetMetadata()
	ls.bounds.Store(&logBounds{first: md.GetIndex() + 1, prevTerm: md.GetTerm(), known: true})
	return nil
}
