package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Runs of message ids. A group's accepted message ids grow with its
// history, and a node that held them all in memory held 25.6 bytes a
// message (issue 16). The store keeps them instead, as the snapshots store
// them (state.FreshIDs): sorted runs of records of IDRecordSize bytes (the
// id, then the index of the entry that carried it, big-endian), each run
// under the index of the newest snapshot it holds ids of.
//
// Each run is a bucket of its own, under bucketIDRuns, holding its records
// in blocks of idBlock records (3 KiB: one page each), keyed by their
// number, and the SHA-256 of all of them under keySum. Not one value a
// run: bbolt keeps a leaf's values inline and does not split a leaf of up
// to four keys, so every run in one leaf was written again whenever a
// snapshot added a run (about 24 MB at 1,000,000 messages), and a run of
// many megabytes needs as many contiguous pages.
//
// A lookup searches every run, newest first. So that they stay few, a new
// run is merged with the one before it while that one is at most twice its
// size: the runs shrink by more than half from the oldest to the newest,
// about log2 of (ids / ids a snapshot) of them (7 at 1,000,000 messages and
// a snapshot every 10,000), and an id is written again about as many times
// over the history. An id keyed B+tree would rewrite most of its leaves at
// each snapshot instead: 10,000 random ids land in most of them.
//
// In memory a run keeps the first 8 bytes of the first id of each block
// (a sixteenth of a byte an id), so that a lookup reads one block, and a
// Bloom filter of its ids (bloomBits bits an id, about 0.8% false
// positives), so that a lookup of an id the store does not hold (a new
// message: most lookups) mostly reads nothing at all. Without the filters
// a host filling a group touched about 32 MiB of runs a second, which
// stayed resident until the next release (release.go).

// IDRecordSize is the size of one record of a run: a 16-byte message id,
// then the index of the entry that carried it, big-endian.
const IDRecordSize = 16 + 8

// idBlock is how many records a block of a run holds (3 KiB, one page).
const idBlock = 128

// keySum is the key of a run's checksum in its bucket, beside the blocks'
// 4-byte keys.
var keySum = []byte("s")

// bloomBits and bloomHashes size the Bloom filter of a run: 10 bits and 7
// hashes an id give about 0.8% false positives.
const (
	bloomBits   = 10
	bloomHashes = 7
)

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

	reads atomic.Int64 // lookups that read the store (for tests)
}

// idRun is what memory keeps of a stored run.
type idRun struct {
	key   uint64   // its key in bucketIDRuns
	n     int      // records
	tops  []uint64 // the first 8 bytes of the first id of each block
	bloom []uint64 // a Bloom filter of its ids (mayHold)
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
		return b.Bucket(bucketIDRuns).ForEachBucket(func(k []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: a run of message ids at key %x", ErrCorrupt, k)
			}
			key := binary.BigEndian.Uint64(k)
			run, err := loadRun(b.Bucket(bucketIDRuns).Bucket(k), key)
			if err != nil {
				return fmt.Errorf("%w: the run of message ids at %d: %v", ErrCorrupt, key, err)
			}
			r.runs = append(r.runs, run)
			r.n += run.n
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load the message ids of group %x: %w", gid, err)
	}
	return r, nil
}

// loadRun reads the run in rb, whose key is key, block by block, and
// returns what memory keeps of it once it is checked as checkRun checks a
// run, every block but the last is full (a lookup finds block j by the
// records before it), and the blocks match the run's checksum. Not the
// whole run in memory: 24 MB at 1,000,000 ids, at every restart.
func loadRun(rb *bolt.Bucket, key uint64) (idRun, error) {
	n := 0
	c := rb.Cursor()
	k, v := c.Last()
	if bytes.Equal(k, keySum) {
		k, v = c.Prev()
	}
	if k != nil {
		if len(k) != 4 {
			return idRun{}, fmt.Errorf("a block at key %x", k)
		}
		n = int(binary.BigEndian.Uint32(k))*idBlock + len(v)/IDRecordSize
	}
	b := newRunBuilder(key, n)
	var prev []byte
	seen := 0
	err := eachBlock(rb, func(j uint32, v []byte) error {
		if len(v) == 0 || len(v)%IDRecordSize != 0 || len(v) > idBlock*IDRecordSize || (seen+len(v)/IDRecordSize < n && len(v) != idBlock*IDRecordSize) {
			return fmt.Errorf("block %d of %d bytes", j, len(v))
		}
		seen += len(v) / IDRecordSize
		for i := 0; i < len(v); i += IDRecordSize {
			rec := v[i : i+IDRecordSize]
			if err := checkRecord(prev, rec, key); err != nil {
				return err
			}
			b.add(rec)
			prev = rec
		}
		return nil
	})
	if err == nil && seen != n {
		err = fmt.Errorf("%d records where its last block says %d", seen, n)
	}
	if err != nil {
		return idRun{}, err
	}
	return b.run, nil
}

// readRun returns the records of the run in rb, its blocks in order, once
// they match its checksum: the run to merge with a new one (loadRun has
// checked it at the start).
func readRun(rb *bolt.Bucket) ([]byte, error) {
	var recs []byte
	err := eachBlock(rb, func(_ uint32, v []byte) error {
		recs = append(recs, v...)
		return nil
	})
	return recs, err
}

// eachBlock calls fn with each block of the run in rb and its number, in
// order, checking that none is missing, and then checks the blocks against
// the run's checksum.
func eachBlock(rb *bolt.Bucket, fn func(j uint32, block []byte) error) error {
	h := sha256.New()
	next := uint32(0)
	c := rb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if bytes.Equal(k, keySum) {
			continue
		}
		if len(k) != 4 || binary.BigEndian.Uint32(k) != next {
			return fmt.Errorf("block %x where block %d was due", k, next)
		}
		if err := fn(next, v); err != nil {
			return err
		}
		h.Write(v)
		next++
	}
	if !bytes.Equal(rb.Get(keySum), h.Sum(nil)) {
		return errors.New("its blocks do not match its checksum")
	}
	return nil
}

// putRun stores recs as a run in a new bucket key of parent: blocks, then
// the checksum.
func putRun(parent *bolt.Bucket, key uint64, recs []byte) error {
	rb, err := parent.CreateBucket(u64(key))
	if err != nil {
		return err
	}
	rb.FillPercent = 1 // appended in order, never changed
	for i := 0; i*idBlock*IDRecordSize < len(recs); i++ {
		block := recs[i*idBlock*IDRecordSize : min((i+1)*idBlock*IDRecordSize, len(recs))]
		if err := rb.Put(binary.BigEndian.AppendUint32(nil, uint32(i)), block); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(recs)
	return rb.Put(keySum, sum[:])
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
	var prev []byte
	for i := 0; i < len(recs); i += IDRecordSize {
		if err := checkRecord(prev, recs[i:i+IDRecordSize], upto); err != nil {
			return err
		}
		prev = recs[i : i+IDRecordSize]
	}
	return nil
}

// checkRecord checks that rec's id comes after prev's (none if nil), and
// that its index is from 1 to upto.
func checkRecord(prev, rec []byte, upto uint64) error {
	if prev != nil && bytes.Compare(prev[:16], rec[:16]) >= 0 {
		return errors.New("ids out of order or repeated")
	}
	if at := binary.BigEndian.Uint64(rec[16:]); at == 0 || at > upto {
		return fmt.Errorf("an id accepted at %d", at)
	}
	return nil
}

// runBuilder builds what memory keeps of a run of n records, given one at
// a time in order.
type runBuilder struct {
	run idRun
	i   int // records added
}

func newRunBuilder(key uint64, n int) *runBuilder {
	return &runBuilder{run: idRun{key: key, n: n, tops: make([]uint64, 0, (n+idBlock-1)/idBlock), bloom: make([]uint64, (n*bloomBits+63)/64)}}
}

// add adds rec, the next record, when the builder has room for it.
func (b *runBuilder) add(rec []byte) {
	if b.i >= b.run.n {
		return
	}
	if b.i%idBlock == 0 {
		b.run.tops = append(b.run.tops, binary.BigEndian.Uint64(rec))
	}
	b.run.bloomEach([16]byte(rec), func(w int, bit uint64) { b.run.bloom[w] |= bit })
	b.i++
}

func newIDRun(key uint64, recs []byte) idRun {
	b := newRunBuilder(key, len(recs)/IDRecordSize)
	for i := 0; i+IDRecordSize <= len(recs); i += IDRecordSize {
		b.add(recs[i : i+IDRecordSize])
	}
	return b.run
}

// bloomEach calls f with the word and bit of each of the filter's bits for
// id (double hashing of its two halves: ids are random, and one a member
// chose to collide costs a read, nothing more).
func (run idRun) bloomEach(id [16]byte, f func(w int, bit uint64)) {
	m := uint64(len(run.bloom)) * 64
	if m == 0 {
		return
	}
	h1, h2 := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:])|1
	for i := range uint64(bloomHashes) {
		b := (h1 + i*h2) % m
		f(int(b/64), 1<<(b%64))
	}
}

// mayHold reports whether the run may hold id: false only if it does not.
func (run idRun) mayHold(id [16]byte) bool {
	all := run.n > 0
	run.bloomEach(id, func(w int, bit uint64) { all = all && run.bloom[w]&bit != 0 })
	return all
}

// find returns the index of id in the run, whose bucket is rb, if there.
func (run idRun) find(rb *bolt.Bucket, id [16]byte) (uint64, bool, error) {
	hi := binary.BigEndian.Uint64(id[:8])
	// The records whose first 8 bytes are hi lie in the blocks from the
	// one before the first block that starts with hi or more, to the one
	// before the first that starts above it.
	from := max(sort.Search(len(run.tops), func(j int) bool { return run.tops[j] >= hi })-1, 0)
	to := max(sort.Search(len(run.tops), func(j int) bool { return run.tops[j] > hi }), from+1)
	for j := from; j < to; j++ {
		block := rb.Get(binary.BigEndian.AppendUint32(nil, uint32(j)))
		if len(block) == 0 || len(block)%IDRecordSize != 0 {
			return 0, false, fmt.Errorf("%w: block %d of the run of message ids at %d is gone or cut", ErrCorrupt, j, run.key)
		}
		n := len(block) / IDRecordSize
		i := sort.Search(n, func(i int) bool { return bytes.Compare(block[i*IDRecordSize:i*IDRecordSize+16], id[:]) >= 0 })
		if i < n && bytes.Equal(block[i*IDRecordSize:i*IDRecordSize+16], id[:]) {
			return binary.BigEndian.Uint64(block[i*IDRecordSize+16:]), true, nil
		}
	}
	return 0, false, nil
}

// StoredID returns the index of the entry that carried id, and whether the
// store holds id. A failed read says no, and Err then reports it.
func (r *IDRuns) StoredID(id [16]byte) (uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	maybe := false
	for _, run := range r.runs {
		maybe = maybe || run.mayHold(id)
	}
	if !maybe {
		return 0, false
	}
	r.reads.Add(1)
	var at uint64
	var found bool
	err := r.s.db.View(func(tx *bolt.Tx) error {
		b, err := group(tx, r.gid, false)
		if err != nil {
			return err
		}
		parent := b.Bucket(bucketIDRuns)
		if parent == nil {
			return fmt.Errorf("%w: the runs of message ids are gone", ErrCorrupt)
		}
		for i := len(r.runs) - 1; i >= 0 && !found; i-- {
			run := r.runs[i]
			if !run.mayHold(id) {
				continue
			}
			rb := parent.Bucket(u64(run.key))
			if rb == nil {
				return fmt.Errorf("%w: the run of message ids at %d is gone", ErrCorrupt, run.key)
			}
			if at, found, err = run.find(rb, id); err != nil {
				return err
			}
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
		parent, err := b.CreateBucketIfNotExists(bucketIDRuns)
		if err != nil {
			return err
		}
		cur := recs
		for len(runs) > 0 && runs[len(runs)-1].n <= 2*len(cur)/IDRecordSize {
			prev := runs[len(runs)-1]
			rb := parent.Bucket(u64(prev.key))
			if rb == nil {
				return fmt.Errorf("%w: the run of message ids at %d is gone", ErrCorrupt, prev.key)
			}
			old, err := readRun(rb)
			if err != nil {
				return fmt.Errorf("%w: the run of message ids at %d: %v", ErrCorrupt, prev.key, err)
			}
			cur = mergeRecords(old, cur)
			if err := parent.DeleteBucket(u64(prev.key)); err != nil {
				return err
			}
			runs = runs[:len(runs)-1]
		}
		runs = append(runs, newIDRun(index, cur))
		return putRun(parent, index, cur)
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
