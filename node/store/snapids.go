package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Chunks of message ids, as stores written before the runs (idruns.go)
// hold them: with each snapshot the ids accepted since the last one, as
// state.RestoreWithIDs reads them. The node reads them once, and its next
// snapshot replaces them with a run of them all.

// IDChunks returns the group's chunks of message ids (an older store's), in
// the order of their snapshots' indexes; a damaged one is an error wrapping
// [ErrCorrupt].
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
