// Package store keeps a node's durable state in one bbolt file: per group the
// raft log, hard state, latest snapshot and metadata, and the outbox of
// messages not yet committed. Everything it holds is what travelled on the
// wire (signed envelopes with sealed payloads) or derived from it (the state
// machine's snapshot holds ids, keys and hashes; the board stored beside it
// is sealed by the node, see SaveBoardParts), so nothing in it is plaintext.
//
// The log is kept whole: a snapshot never deletes the entries it covers,
// because they are the group's history, which members catch up from and
// transcripts are exported from. The latest snapshot's index is the index
// up to which the node has applied the log and stored the result.
//
// Writes are bbolt transactions, fsynced on commit: when SaveRaft returns, the
// entries and hard state survive a kill -9 or power loss.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Store is a node's bbolt database. It is safe for concurrent use (bbolt
// serialises writers).
type Store struct {
	db      *bolt.DB
	release *releaser // drops the pages mapped into the process (release.go)
	// noList: the store was opened on a disk too full to write bbolt's
	// free-page list (see Open); its commits do not write it.
	noList bool
}

var (
	bucketGroups  = []byte("groups")
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	// bucketSnap holds a group's latest snapshot alone: bbolt rewrites a
	// whole leaf when one of its keys changes, and the snapshot, which
	// grows with the history, must not be rewritten with the hard state
	// at every raft Ready.
	bucketSnap = []byte("snap")
	// bucketIDs holds the chunks of accepted message ids an older store
	// kept beside the snapshots (snapids.go), by the snapshot's index.
	bucketIDs    = []byte("ids")
	bucketOutbox = []byte("outbox")
	keyHardState = []byte("hardstate")
	keyInfo      = []byte("info")
	keySnapshot  = []byte("snapshot")
	keyFork      = []byte("fork")
	keyHeads     = []byte("heads")
)

// Open opens (creating if needed) the store at path with mode 0600.
func Open(path string) (*Store, error) {
	// Every commit writes bbolt's free-page list (bbolt's default; etcd
	// does not, with NoFreelistSync). Without the list, an open after a
	// crash rebuilds it by reading every page of the file: 0.33 s for
	// 1,000,000 entries of 700 bytes in the page cache on this machine, a
	// read of the whole file from the disk in a cold one, and those pages
	// stayed mapped, and resident, for as long as the database was open
	// (735 MiB of a store of 1,000,000 messages after a kill -9). The list
	// costs a commit 8 bytes a free page; it stays small now that
	// snapshots no longer hold every message id (those rewrote 19 MB at
	// each snapshot, and the list was 51 to 102 KB at 1,000,000 messages):
	// at most about 1,000 pages, 8 KiB, in a throwaway test of 200,000
	// entries with runs of ids, and no difference in the time of a commit.
	// A longer list is left out (update, freeListSyncMax): a crash then
	// costs the next open a read of every page, as before.
	// A store that an older build, or a full disk, left without the list
	// is still opened once to have the list rebuilt and written, then
	// closed, which unmaps the pages that read, and opened again. With the
	// list written, that first open and close cost about a millisecond.
	// A disk too full to write the list does not keep the node from
	// starting: it opens without the list, as before. Any other error
	// (a failed fsync is reported once) is the open's.
	db, err := openBolt(path, false)
	if err == nil {
		err = db.Close()
	}
	if err == nil || errors.Is(err, syscall.ENOSPC) {
		db, err = openBolt(path, err != nil)
	}
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: it is locked by another process (is another demes serve running with this home?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketGroups)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, noList: db.NoFreelistSync}
	s.release = startReleaser(s)
	return s, nil
}

// openBolt opens the bbolt database at path, with commits that write its
// free-page list unless noFreelistSync is set (see Open).
func openBolt(path string, noFreelistSync bool) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        2 * time.Second,
		NoFreelistSync: noFreelistSync,
		FreelistType:   bolt.FreelistMapType,
	})
}

// Close closes the database, with its free-page list written (see Open; a
// commit leaves it out when it is long, or on a full disk: update).
func (s *Store) Close() error {
	s.release.halt()
	var err error
	if s.db.NoFreelistSync {
		s.db.NoFreelistSync = false // no transaction runs now: read at commit only
		err = s.db.Update(func(*bolt.Tx) error { return nil })
	}
	return errors.Join(err, s.db.Close())
}

// Abandon closes the database as a crash would leave it: without a last
// commit of its own (for tests and benchmarks that crash a node).
func (s *Store) Abandon() error {
	s.release.halt()
	return s.db.Close()
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// group returns (creating when create is set) the bucket of one group, with
// its sub-buckets.
// viewGroup runs fn in a read transaction with the bucket of an existing
// group.
func (s *Store) viewGroup(gid []byte, fn func(b *bolt.Bucket) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b, err := group(tx, gid, false)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// update runs fn in a write transaction (one fsync), whose commit writes
// bbolt's free-page list while the list is at most freeListSyncMax pages
// long (see Open). bbolt reads NoFreelistSync at commit only, and the
// writer holds bbolt's lock from here to the end of the commit, so the
// setting is each commit's own.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		// As the last commit left it: the pages it freed are pending
		// then, and free by now.
		st := s.db.Stats()
		s.db.NoFreelistSync = s.noList || st.FreePageN+st.PendingPageN > freeListSyncMax
		return fn(tx)
	})
}

// freeListSyncMax is the longest free-page list, in pages, that a commit
// writes: 16 KiB. A group whose stored board held 100,000 reactions (25 MB,
// written again whole at every snapshot before the board was stored in
// parts) kept about 22,000 pages free, and writing that list (176 KB) made
// a commit of 20 entries 40% slower in a throwaway test (790 against 560
// us); a merge of big parts of a board still frees that many at once. Such
// a store is opened after a crash as before, by reading every page.
const freeListSyncMax = 2048

// updateGroup runs fn in a write transaction (one fsync) with the bucket of
// an existing group.
func (s *Store) updateGroup(gid []byte, fn func(b *bolt.Bucket) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := group(tx, gid, false)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

func group(tx *bolt.Tx, gid []byte, create bool) (*bolt.Bucket, error) {
	root := tx.Bucket(bucketGroups)
	if !create {
		b := root.Bucket(gid)
		if b == nil {
			return nil, fmt.Errorf("group %x not in store", gid)
		}
		return b, nil
	}
	b, err := root.CreateBucketIfNotExists(gid)
	if err != nil {
		return nil, err
	}
	for _, name := range [][]byte{bucketEntries, bucketMeta, bucketOutbox} {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// CreateGroup records a group and its info blob (owned by the node).
func (s *Store) CreateGroup(gid []byte, info []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := group(tx, gid, true)
		if err != nil {
			return err
		}
		return b.Bucket(bucketMeta).Put(keyInfo, info)
	})
}

// DeleteGroup forgets a group entirely (after leaving or removal).
func (s *Store) DeleteGroup(gid []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketGroups).DeleteBucket(gid)
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// Groups returns the ids and info blobs of every group in the store.
func (s *Store) Groups() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).ForEachBucket(func(k []byte) error {
			info := tx.Bucket(bucketGroups).Bucket(k).Bucket(bucketMeta).Get(keyInfo)
			out[string(k)] = append([]byte(nil), info...)
			return nil
		})
	})
	return out, err
}

// OutboxItem is a message to write to the outbox: its id and its signed
// envelope with the sealed payload.
type OutboxItem struct {
	ID, Frame []byte
}

// SaveRaft persists what a raft Ready asks to persist, in one fsynced
// transaction: the hard state (if any) and the new entries, with the
// messages queued for sending since the last call (put) and those committed
// since then (done, dropped from the outbox; done wins over put). Entries
// at or after the first new index are replaced, as raft requires when a
// follower's uncommitted tail is overwritten by a new leader. One
// transaction for all of it means one fsync per Ready however many messages
// were sent meanwhile (group commit).
func (s *Store) SaveRaft(gid []byte, hs *pb.HardState, entries []*pb.Entry, put []OutboxItem, done [][]byte) error {
	return s.updateGroup(gid, func(b *bolt.Bucket) error {
		ob := b.Bucket(bucketOutbox)
		for _, m := range put {
			if err := ob.Put(m.ID, m.Frame); err != nil {
				return err
			}
		}
		for _, id := range done {
			if err := ob.Delete(id); err != nil {
				return err
			}
		}
		if hs != nil && (hs.GetTerm() != 0 || hs.GetVote() != 0 || hs.GetCommit() != 0) {
			data, err := proto.Marshal(hs)
			if err != nil {
				return err
			}
			if err := b.Bucket(bucketMeta).Put(keyHardState, data); err != nil {
				return err
			}
		}
		if len(entries) == 0 {
			return nil
		}
		eb := b.Bucket(bucketEntries)
		eb.FillPercent = 0.9
		if err := truncateEntries(eb, entries[0].GetIndex()); err != nil {
			return err
		}
		for _, e := range entries {
			data, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			if err := putEntry(eb, u64(e.GetIndex()), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// ErrMissing is wrapped by the errors of reads of log entries that the store
// does not hold.
var ErrMissing = errors.New("log entry not in the store")

// ErrCorrupt is wrapped by the error of reading a stored snapshot whose
// checksum does not match.
var ErrCorrupt = errors.New("corrupt value in the store")

// SaveSnapshot stores snap as the group's latest snapshot, in one fsynced
// transaction. Its index is the node's stored applied index: the state it
// carries is the result of applying the log up to there. A snapshot older
// than the stored one is refused, so the applied index never goes back
// (an unreadable stored one is replaced). The log entries it covers stay.
//
// The snapshot is stored with its SHA-256, which LoadSnapshot checks: bbolt
// checks its own page structure but not the values, and a state restored
// from a damaged snapshot would silently differ from the other members'.
func (s *Store) SaveSnapshot(gid []byte, snap *pb.Snapshot) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error { return putSnapshot(b, snap) })
	if err != nil {
		return fmt.Errorf("save snapshot of group %x at %d: %w", gid, snap.GetMetadata().GetIndex(), err)
	}
	return nil
}

func putSnapshot(b *bolt.Bucket, snap *pb.Snapshot) error {
	if prev, err := getSnapshot(b); err == nil && prev != nil && snap.GetMetadata().GetIndex() < prev.GetMetadata().GetIndex() {
		return fmt.Errorf("older than the stored snapshot at %d", prev.GetMetadata().GetIndex())
	}
	data, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	sb, err := b.CreateBucketIfNotExists(bucketSnap)
	if err != nil {
		return err
	}
	// Stores before the snapshot had a bucket of its own kept it in meta.
	if err := b.Bucket(bucketMeta).Delete(keySnapshot); err != nil {
		return err
	}
	return sb.Put(keySnapshot, withSum(data))
}

// withSum returns data followed by its SHA-256, as the store keeps the
// values it checks when it reads them (withoutSum): bbolt checks its own
// page structure but not the values.
func withSum(data []byte) []byte {
	sum := sha256.Sum256(data)
	return append(data[:len(data):len(data)], sum[:]...)
}

// withoutSum returns the data of v, a value withSum made, once its
// checksum matches; else an error wrapping [ErrCorrupt] that names what.
func withoutSum(v []byte, what string) ([]byte, error) {
	if len(v) < sha256.Size {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrCorrupt, what, len(v))
	}
	data, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
	if got := sha256.Sum256(data); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: %s does not match its checksum", ErrCorrupt, what)
	}
	return data, nil
}

// getSnapshot reads a group's stored snapshot (nil if none) and checks its
// checksum.
func getSnapshot(b *bolt.Bucket) (*pb.Snapshot, error) {
	var v []byte
	if sb := b.Bucket(bucketSnap); sb != nil {
		v = sb.Get(keySnapshot)
	}
	if v == nil {
		v = b.Bucket(bucketMeta).Get(keySnapshot) // a store from before bucketSnap
	}
	if v == nil {
		return nil, nil
	}
	data, err := withoutSum(v, "the snapshot")
	if err != nil {
		return nil, err
	}
	snap := &pb.Snapshot{}
	if err := proto.Unmarshal(data, snap); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	return snap, nil
}

// InstallSnapshot stores snap, a snapshot raft received from the group's
// leader, and discards the whole stored log, in one fsynced transaction.
// That is what installing a snapshot means in raft: the log before it is
// replaced by it, and the entries this node held may disagree with it. The
// history before the snapshot is then not available from this store. (DeMeS
// leaders never send snapshots; this is for a log that somehow needs one.)
func (s *Store) InstallSnapshot(gid []byte, snap *pb.Snapshot) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		if err := putSnapshot(b, snap); err != nil {
			return err
		}
		if err := b.DeleteBucket(bucketEntries); err != nil {
			return err
		}
		// The snapshot from the host holds its ids.
		if err := errors.Join(deleteBucket(b, bucketIDs), deleteBucket(b, bucketIDRuns)); err != nil {
			return err
		}
		_, err := b.CreateBucket(bucketEntries)
		return err
	})
	if err != nil {
		return fmt.Errorf("install snapshot of group %x at %d: %w", gid, snap.GetMetadata().GetIndex(), err)
	}
	return nil
}

// LoadSnapshot returns the group's latest snapshot, or nil if it has none.
// A damaged one is an error wrapping [ErrCorrupt].
func (s *Store) LoadSnapshot(gid []byte) (*pb.Snapshot, error) {
	var snap *pb.Snapshot
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		var err error
		snap, err = getSnapshot(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load snapshot of group %x: %w", gid, err)
	}
	return snap, nil
}

// HardState returns the group's stored raft hard state (empty if none).
func (s *Store) HardState(gid []byte) (*pb.HardState, error) {
	var hs *pb.HardState
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		var err error
		hs, err = getHardState(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load hard state of group %x: %w", gid, err)
	}
	return hs, nil
}

// getHardState reads a group's stored hard state (empty if none).
func getHardState(b *bolt.Bucket) (*pb.HardState, error) {
	hs := &pb.HardState{}
	if data := b.Bucket(bucketMeta).Get(keyHardState); data != nil {
		if err := proto.Unmarshal(data, hs); err != nil {
			return nil, fmt.Errorf("hard state: %w", err)
		}
	}
	return hs, nil
}

// Outbox returns a group's queued messages by id.
func (s *Store) Outbox(gid []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		return b.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// ForEachValue calls fn with every value stored, for tests that check that no
// plaintext reached the disk.
func (s *Store) ForEachValue(fn func(v []byte)) error {
	return s.db.View(func(tx *bolt.Tx) error {
		var walk func(b *bolt.Bucket) error
		walk = func(b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return walk(b.Bucket(k))
				}
				fn(v)
				return nil
			})
		}
		return walk(tx.Bucket(bucketGroups))
	})
}

// SaveFork records the proof that a group's history forked (see node's
// fork.go), so that the group stays halted across restarts.
func (s *Store) SaveFork(gid, proof []byte) error { return s.putMeta(gid, keyFork, proof) }

// Fork returns the proof SaveFork recorded for a group, nil if none.
func (s *Store) Fork(gid []byte) ([]byte, error) { return s.getMeta(gid, keyFork) }

// SaveHeads records the members' signed chain heads a node keeps for a
// group (see node's fork.go), replacing what was there.
func (s *Store) SaveHeads(gid, heads []byte) error { return s.putMeta(gid, keyHeads, heads) }

// Heads returns what SaveHeads recorded for a group, nil if nothing.
func (s *Store) Heads(gid []byte) ([]byte, error) { return s.getMeta(gid, keyHeads) }

// putMeta writes v under key in a group's metadata, in one transaction.
func (s *Store) putMeta(gid, key, v []byte) error {
	return s.updateGroup(gid, func(b *bolt.Bucket) error {
		return b.Bucket(bucketMeta).Put(key, v)
	})
}

// getMeta reads what is under key in a group's metadata, nil if nothing.
func (s *Store) getMeta(gid, key []byte) ([]byte, error) {
	var out []byte
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		if v := b.Bucket(bucketMeta).Get(key); len(v) > 0 {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}
