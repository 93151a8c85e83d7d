package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Chunks of message ids. A group's accepted message ids grow with its
// history, and a snapshot that held them all was encoded and written again
// whole every time (19 MB at 1,000,000 messages). The node stores with each
// snapshot only the ids accepted since the last one, as a chunk keyed by
// the snapshot's index, in the same transaction (state.FreshIDs), and
// reads them all back with the snapshot at a restart.

// SaveSnapshotWithIDs stores snap as [Store.SaveSnapshot] does and, in the
// same fsynced transaction, ids (a packed chunk of message ids; none if
// empty) under the snapshot's index. With replace, every chunk stored
// before is deleted first: ids are then all of them.
func (s *Store) SaveSnapshotWithIDs(gid []byte, snap *pb.Snapshot, ids []byte, replace bool) error {
	index := snap.GetMetadata().GetIndex()
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		if err := putSnapshot(b, snap); err != nil {
			return err
		}
		if replace {
			if err := deleteIDChunks(b); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		cb, err := b.CreateBucketIfNotExists(bucketIDs)
		if err != nil {
			return err
		}
		return cb.Put(binary.BigEndian.AppendUint64(nil, index), withSum(ids))
	})
	if err != nil {
		return fmt.Errorf("save snapshot of group %x at %d: %w", gid, index, err)
	}
	return nil
}

// IDChunks returns the group's chunks of message ids, in the order of their
// snapshots' indexes; a damaged one is an error wrapping [ErrCorrupt].
func (s *Store) IDChunks(gid []byte) ([][]byte, error) {
	var out [][]byte
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		cb := b.Bucket(bucketIDs)
		if cb == nil {
			return nil
		}
		return cb.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: a chunk of message ids at key %x", ErrCorrupt, k)
			}
			data, err := withoutSum(v, fmt.Sprintf("the chunk of message ids at %d", binary.BigEndian.Uint64(k)))
			if err != nil {
				return err
			}
			out = append(out, bytes.Clone(data))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load the message ids of group %x: %w", gid, err)
	}
	return out, nil
}

func deleteIDChunks(b *bolt.Bucket) error {
	if err := b.DeleteBucket(bucketIDs); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return nil
}
