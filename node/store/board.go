package store

import (
	"encoding/binary"
	"fmt"
	"slices"

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

// bucketBoardParts holds, in the group's board bucket, the parts of a
// stored board that the board (under keyBoard) lists: each a bucket of its
// own, keyed by the part's number, holding the part's blob under keyPart.
// A bucket each, not a value each: bbolt writes a leaf again, values and
// all, whenever one of its keys changes, so parts that were values of one
// leaf were all written again with each new one.
var (
	bucketBoardParts = []byte("parts")
	keyPart          = []byte("p")
)

// SaveBoardParts stores board, the group's board as of its latest
// snapshot, replacing the one stored before, and puts (blobs of parts, by
// number), and deletes every part that is neither in puts nor in keep, in
// one fsynced transaction: a part is written once and stays as it is until
// it is replaced or deleted, and parts that no stored board lists (left by
// a crash, or of a board that did not open) go.
//
// The caller seals every blob: the store does not look inside, and a blob
// must not be plaintext (see the package comment). bbolt reuses the pages
// of a value it replaces or deletes without clearing them, so an old blob
// may stay in the file until they are written again: what makes it
// unreadable is that its key is erased (the node keeps the board's key in
// its key store, and the parts' keys in the board).
func (s *Store) SaveBoardParts(gid []byte, board []byte, puts map[uint64][]byte, keep []uint64) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		bb, err := b.CreateBucketIfNotExists(bucketBoard)
		if err != nil {
			return err
		}
		parts, err := bb.CreateBucketIfNotExists(bucketBoardParts)
		if err != nil {
			return err
		}
		var drop [][]byte
		err = parts.ForEach(func(k, _ []byte) error {
			if len(k) != 8 {
				return nil
			}
			n := binary.BigEndian.Uint64(k)
			if _, put := puts[n]; put || !slices.Contains(keep, n) {
				drop = append(drop, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := parts.DeleteBucket(k); err != nil {
				return err
			}
		}
		for n, blob := range puts {
			pb, err := parts.CreateBucket(u64(n))
			if err != nil {
				return err
			}
			if err := pb.Put(keyPart, blob); err != nil {
				return err
			}
		}
		return bb.Put(keyBoard, board)
	})
	if err != nil {
		return fmt.Errorf("save the board of group %x: %w", gid, err)
	}
	return nil
}

// LoadBoardPart returns the part numbered n of the group's stored board,
// nil if there is none.
func (s *Store) LoadBoardPart(gid []byte, n uint64) ([]byte, error) {
	var out []byte
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		for _, name := range [][]byte{bucketBoard, bucketBoardParts, u64(n)} {
			if b = b.Bucket(name); b == nil {
				return nil
			}
		}
		if v := b.Get(keyPart); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load part %d of the board of group %x: %w", n, gid, err)
	}
	return out, nil
}
