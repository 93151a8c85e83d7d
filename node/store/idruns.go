package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Runs of message ids. A group's accepted message ids grow with its
// history, and a node that held them all in memory held 25.6 bytes a
// message (issue 16). The store keeps them instead, as the snapshots store
// them (state.FreshIDs): sorted runs of records of IDRecordSize bytes (the
// id, then the index of the entry that carried it, big-endian), each run
// under the index of the newest snapshot it holds ids of, with its SHA-256.
//
// A lookup searches every run, newest first. So that they stay few, a new
// run is merged with the one before it while that one is at most twice its
// size: the runs shrink by more than half from the oldest to the newest,
// about log2 of (ids / ids a snapshot) of them (7 at 1,000,000 messages and
// a snapshot every 10,000), and an id is written again about as many times
// over the history. An id keyed B+tree would rewrite most of its leaves at
// each snapshot instead: 10,000 random ids land in most of them.
//
// In memory a run keeps the first 8 bytes of every idStride-th id (an
// eighth of a byte an id), so that a lookup reads one or two pages of
// each run.

// IDRecordSize is the size of one record of a run: a 16-byte message id,
// then the index of the entry that carried it, big-endian.
const IDRecordSize = 16 + 8

// idStride is how many records a run's sample in memory stands for.
const idStride = 64

// bucketIDRuns holds a group's runs of message ids, by the index of the
// newest snapshot each holds ids of.
var bucketIDRuns = []byte("idruns")

// IDRuns is a group's stored message ids. It is safe for concurrent use.
type IDRuns struct {
	s   *Store
	gid []byte

	mu   sync.RWMutex // held across a save, so that no lookup sees a run go
	runs []idRun      // oldest first
	n    int          // records in all of them

	errMu sync.Mutex
	err   error // the first failed lookup, for Err
}

// idRun is what memory keeps of a stored run.
type idRun struct {
	key  uint64   // its key in bucketIDRuns
	n    int      // records
	tops []uint64 // the first 8 bytes of the ids of records 0, idStride, 2 idStride...
}

// IDRuns returns the group's stored message ids, checking each run (its
// checksum; ids ascending; every index from 1 to its run's key): a damaged
// one is an error wrapping [ErrCorrupt]. A group without any has none.
func (s *Store) IDRuns(gid []byte) (*IDRuns, error) {
	r := &IDRuns{s: s, gid: bytes.Clone(gid)}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := group(tx, gid, false)
		if err != nil || b.Bucket(bucketIDRuns) == nil {
			return nil // none yet
		}
		return b.Bucket(bucketIDRuns).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: a run of message ids at key %x", ErrCorrupt, k)
			}
			key := binary.BigEndian.Uint64(k)
			recs, err := withoutSum(v, fmt.Sprintf("the run of message ids at %d", key))
			if err != nil {
				return err
			}
			if err := checkRun(recs, key); err != nil {
				return fmt.Errorf("%w: the run of message ids at %d: %v", ErrCorrupt, key, err)
			}
			r.runs = append(r.runs, newIDRun(key, recs))
			r.n += len(recs) / IDRecordSize
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load the message ids of group %x: %w", gid, err)
	}
	return r, nil
}

// IDRunsToReplace returns an [IDRuns] of the group that holds no ids: for
// a state that stores every id it holds at its next snapshot, replacing
// what the store holds (a new group, a state applied again from the start
// of its log, one installed from a snapshot or read from an older store).
func (s *Store) IDRunsToReplace(gid []byte) *IDRuns {
	return &IDRuns{s: s, gid: bytes.Clone(gid)}
}

// checkRun checks that recs are whole records, ascending by id, with
// indexes from 1 to upto.
func checkRun(recs []byte, upto uint64) error {
	if len(recs)%IDRecordSize != 0 {
		return fmt.Errorf("%d bytes, not whole records", len(recs))
	}
	for i := 0; i < len(recs); i += IDRecordSize {
		if i > 0 && bytes.Compare(recs[i-IDRecordSize:i-8], recs[i:i+16]) >= 0 {
			return errors.New("ids out of order or repeated")
		}
		if at := binary.BigEndian.Uint64(recs[i+16:]); at == 0 || at > upto {
			return fmt.Errorf("an id accepted at %d", at)
		}
	}
	return nil
}

func newIDRun(key uint64, recs []byte) idRun {
	n := len(recs) / IDRecordSize
	run := idRun{key: key, n: n, tops: make([]uint64, 0, (n+idStride-1)/idStride)}
	for i := 0; i < n; i += idStride {
		run.tops = append(run.tops, binary.BigEndian.Uint64(recs[i*IDRecordSize:]))
	}
	return run
}

// find returns the index of id in recs, this run's records, if there.
func (run idRun) find(recs []byte, id [16]byte) (uint64, bool) {
	hi := binary.BigEndian.Uint64(id[:8])
	// The records whose first 8 bytes are hi lie after the sample before
	// the first sample of hi or more, and before the first sample above.
	from := max(sort.Search(len(run.tops), func(j int) bool { return run.tops[j] >= hi })-1, 0) * idStride
	to := min(sort.Search(len(run.tops), func(j int) bool { return run.tops[j] > hi })*idStride, run.n)
	i := from + sort.Search(to-from, func(i int) bool {
		return bytes.Compare(recs[(from+i)*IDRecordSize:(from+i)*IDRecordSize+16], id[:]) >= 0
	})
	if i >= to || !bytes.Equal(recs[i*IDRecordSize:i*IDRecordSize+16], id[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(recs[i*IDRecordSize+16:]), true
}

// StoredID returns the index of the entry that carried id, and whether the
// store holds id. A failed read says no, and Err then reports it.
func (r *IDRuns) StoredID(id [16]byte) (uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.runs) == 0 {
		return 0, false
	}
	var at uint64
	var found bool
	err := r.s.db.View(func(tx *bolt.Tx) error {
		b, err := group(tx, r.gid, false)
		if err != nil {
			return err
		}
		rb := b.Bucket(bucketIDRuns)
		if rb == nil {
			return fmt.Errorf("%w: the runs of message ids are gone", ErrCorrupt)
		}
		for i := len(r.runs) - 1; i >= 0 && !found; i-- {
			run := r.runs[i]
			v := rb.Get(u64(run.key))
			if len(v) < run.n*IDRecordSize {
				return fmt.Errorf("%w: the run of message ids at %d is shorter than it was", ErrCorrupt, run.key)
			}
			at, found = run.find(v, id)
		}
		return nil
	})
	if err != nil {
		r.failed(fmt.Errorf("look up a message id of group %x: %w", r.gid, err))
		return 0, false
	}
	return at, found
}

// StoredLen returns how many ids the store holds.
func (r *IDRuns) StoredLen() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Runs returns how many runs hold the ids.
func (r *IDRuns) Runs() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.runs)
}

func (r *IDRuns) failed(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// Err returns the first lookup that failed, if any: the node must stop the
// group, whose state may then have taken a retried message for a new one.
func (r *IDRuns) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// SaveSnapshot stores snap as [Store.SaveSnapshot] does and, in the same
// fsynced transaction, recs (records of ids ascending by id, as
// state.FreshIDs gives them; none if empty) as a new run, merged with the
// runs before it as the package comment says. With replace, every id stored
// before is deleted first (in runs, or in the chunks of an older store):
// recs are then all of them.
func (r *IDRuns) SaveSnapshot(snap *pb.Snapshot, recs []byte, replace bool) error {
	index := snap.GetMetadata().GetIndex()
	r.mu.Lock()
	defer r.mu.Unlock()
	runs := slices.Clone(r.runs)
	err := r.s.updateGroup(r.gid, func(b *bolt.Bucket) error {
		if err := putSnapshot(b, snap); err != nil {
			return err
		}
		if replace {
			runs = nil
			if err := errors.Join(deleteBucket(b, bucketIDs), deleteBucket(b, bucketIDRuns)); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			return nil
		}
		rb, err := b.CreateBucketIfNotExists(bucketIDRuns)
		if err != nil {
			return err
		}
		cur := recs
		for len(runs) > 0 && runs[len(runs)-1].n <= 2*len(cur)/IDRecordSize {
			prev := runs[len(runs)-1]
			v := rb.Get(u64(prev.key))
			if len(v) < prev.n*IDRecordSize {
				return fmt.Errorf("%w: the run of message ids at %d is shorter than it was", ErrCorrupt, prev.key)
			}
			cur = mergeRecords(v[:prev.n*IDRecordSize], cur)
			if err := rb.Delete(u64(prev.key)); err != nil {
				return err
			}
			runs = runs[:len(runs)-1]
		}
		runs = append(runs, newIDRun(index, cur))
		return rb.Put(u64(index), withSum(cur))
	})
	if err != nil {
		return fmt.Errorf("save snapshot of group %x at %d: %w", r.gid, index, err)
	}
	r.runs, r.n = runs, 0
	for _, run := range runs {
		r.n += run.n
	}
	return nil
}

// mergeRecords merges a and b, each ascending by id, into a new slice.
func mergeRecords(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if bytes.Compare(b[:16], a[:16]) < 0 {
			out, b = append(out, b[:IDRecordSize]...), b[IDRecordSize:]
		} else {
			out, a = append(out, a[:IDRecordSize]...), a[IDRecordSize:]
		}
	}
	return append(append(out, a...), b...)
}

func deleteBucket(b *bolt.Bucket, name []byte) error {
	if err := b.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return nil
}
