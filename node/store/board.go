package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// keyBoard is where a group's stored board is, in the snapshot's bucket.
var keyBoard = []byte("board")

// SaveBoard stores blob, the group's board as of its latest snapshot,
// replacing the one stored before (one fsynced transaction). The caller
// seals it: the store does not look inside, and the blob must not be
// plaintext (see the package comment). bbolt reuses the pages of the value
// it replaces without clearing them, so the old blob may stay in the file
// until they are written again: what makes it unreadable is that its key is
// erased (the node keeps the key in its key store).
func (s *Store) SaveBoard(gid []byte, blob []byte) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		sb, err := b.CreateBucketIfNotExists(bucketSnap)
		if err != nil {
			return err
		}
		return sb.Put(keyBoard, blob)
	})
	if err != nil {
		return fmt.Errorf("save the board of group %x: %w", gid, err)
	}
	return nil
}

// LoadBoard returns the group's stored board, nil if it has none (a store
// written before boards were stored).
func (s *Store) LoadBoard(gid []byte) ([]byte, error) {
	var out []byte
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		if sb := b.Bucket(bucketSnap); sb != nil {
			if v := sb.Get(keyBoard); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load the board of group %x: %w", gid, err)
	}
	return out, nil
}
