package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketBoard holds a group's stored board alone, keyBoard its one key. Not
// in the snapshot's bucket: bbolt rewrites a whole leaf, values included,
// when one key changes, so each board written there wrote the snapshot (every
// message id) again, and the pages it freed took the disk a message from 842
// to 1,025 bytes at 100,000 messages (`demes bench history`).
var (
	bucketBoard = []byte("board")
	keyBoard    = []byte("board")
)

// SaveBoard stores blob, the group's board as of its latest snapshot,
// replacing the one stored before (one fsynced transaction). The caller
// seals it: the store does not look inside, and the blob must not be
// plaintext (see the package comment). bbolt reuses the pages of the value
// it replaces without clearing them, so the old blob may stay in the file
// until they are written again: what makes it unreadable is that its key is
// erased (the node keeps the key in its key store).
func (s *Store) SaveBoard(gid []byte, blob []byte) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		bb, err := b.CreateBucketIfNotExists(bucketBoard)
		if err != nil {
			return err
		}
		return bb.Put(keyBoard, blob)
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
		if bb := b.Bucket(bucketBoard); bb != nil {
			if v := bb.Get(keyBoard); v != nil {
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
