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

// bucketBoardNotes holds, in the group's board bucket, the pages of notes
// of a stored board: each a bucket of its own, keyed by the page's number,
// holding one value for each message of the page that has one, keyed by
// the message's log index (8 bytes, big-endian). A bucket each, for the
// reason parts have one each.
var bucketBoardNotes = []byte("notes")

// PageWrite is what [Store.SaveBoard] writes to one page of notes.
type PageWrite struct {
	// Replace drops the page's values first, so that the page holds
	// exactly Values.
	Replace bool
	// Values are the page's new values by message index; a nil value
	// deletes the page's value at that index.
	Values map[uint64][]byte
}

// BoardWrite is a stored board and what changes with it.
type BoardWrite struct {
	Board []byte // the board itself
	// Parts are the parts written (blobs by number), KeepParts those the
	// board lists that stay as they are; every other part is deleted.
	Parts     map[uint64][]byte
	KeepParts []uint64
	// Pages are the pages of notes written, KeepPages those the board
	// lists that stay as they are; every other page is deleted.
	Pages     map[uint64]PageWrite
	KeepPages []uint64
}

// SaveBoardParts is SaveBoard with parts only: puts written, keep kept,
// every other part and every page of notes deleted.
func (s *Store) SaveBoardParts(gid []byte, board []byte, puts map[uint64][]byte, keep []uint64) error {
	return s.SaveBoard(gid, BoardWrite{Board: board, Parts: puts, KeepParts: keep})
}

// SaveBoard stores w.Board, the group's board as of its latest snapshot,
// replacing the one stored before, with its parts and pages of notes as w
// says, in one fsynced transaction: a part is written once and stays as it
// is until it is replaced or deleted, a page changes only where it is
// written, and parts and pages that no stored board lists (left by a
// crash, or of a board that did not open) go.
//
// The caller seals every blob: the store does not look inside, and a blob
// must not be plaintext (see the package comment). bbolt reuses the pages
// of a value it replaces or deletes without clearing them, so an old blob
// may stay in the file until they are written again: what makes it
// unreadable is that its key is erased (the node keeps the board's key in
// its key store, and the parts' and pages' keys in the board).
func (s *Store) SaveBoard(gid []byte, w BoardWrite) error {
	err := s.updateGroup(gid, func(b *bolt.Bucket) error {
		bb, err := b.CreateBucketIfNotExists(bucketBoard)
		if err != nil {
			return err
		}
		parts, err := bb.CreateBucketIfNotExists(bucketBoardParts)
		if err != nil {
			return err
		}
		if err := dropUnlisted(parts, func(n uint64) bool {
			_, put := w.Parts[n]
			return !put && slices.Contains(w.KeepParts, n)
		}); err != nil {
			return err
		}
		for n, blob := range w.Parts {
			pb, err := parts.CreateBucket(u64(n))
			if err != nil {
				return err
			}
			if err := pb.Put(keyPart, blob); err != nil {
				return err
			}
		}
		notes, err := bb.CreateBucketIfNotExists(bucketBoardNotes)
		if err != nil {
			return err
		}
		if err := dropUnlisted(notes, func(n uint64) bool {
			pw, put := w.Pages[n]
			return put && !pw.Replace || !put && slices.Contains(w.KeepPages, n)
		}); err != nil {
			return err
		}
		for n, pw := range w.Pages {
			pb, err := notes.CreateBucketIfNotExists(u64(n))
			if err != nil {
				return err
			}
			for idx, v := range pw.Values {
				if v == nil {
					err = pb.Delete(u64(idx))
				} else {
					err = pb.Put(u64(idx), v)
				}
				if err != nil {
					return err
				}
			}
		}
		return bb.Put(keyBoard, w.Board)
	})
	if err != nil {
		return fmt.Errorf("save the board of group %x: %w", gid, err)
	}
	return nil
}

// dropUnlisted deletes the buckets of b, keyed by number, that keep does
// not keep.
func dropUnlisted(b *bolt.Bucket, keep func(uint64) bool) error {
	var drop [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		if len(k) == 8 && !keep(binary.BigEndian.Uint64(k)) {
			drop = append(drop, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := b.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

// notePage returns the bucket of page n of the group's notes, nil if none.
func notePage(b *bolt.Bucket, n uint64) *bolt.Bucket {
	return nested(b, bucketBoard, bucketBoardNotes, u64(n))
}

// nested returns the bucket b/names[0]/names[1]/..., nil if one is missing.
func nested(b *bolt.Bucket, names ...[]byte) *bolt.Bucket {
	for _, name := range names {
		if b = b.Bucket(name); b == nil {
			return nil
		}
	}
	return b
}

// LoadBoardNotes returns the values of page n of the group's notes at the
// message indexes given, those it has.
func (s *Store) LoadBoardNotes(gid []byte, n uint64, indexes []uint64) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		if b = notePage(b, n); b == nil {
			return nil
		}
		for _, idx := range indexes {
			if v := b.Get(u64(idx)); v != nil {
				out[idx] = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load notes of page %d of the board of group %x: %w", n, gid, err)
	}
	return out, nil
}

// BoardPage calls fn with every value of page n of the group's notes, by
// ascending message index. The value is valid only during the call.
func (s *Store) BoardPage(gid []byte, n uint64, fn func(index uint64, v []byte) error) error {
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		if b = notePage(b, n); b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || v == nil {
				return fmt.Errorf("a key of %d bytes in page %d", len(k), n)
			}
			return fn(binary.BigEndian.Uint64(k), v)
		})
	})
	if err != nil {
		return fmt.Errorf("read page %d of the notes of group %x: %w", n, gid, err)
	}
	return nil
}

// LoadBoardPart returns the part numbered n of the group's stored board,
// nil if there is none.
func (s *Store) LoadBoardPart(gid []byte, n uint64) ([]byte, error) {
	var out []byte
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		if b = nested(b, bucketBoard, bucketBoardParts, u64(n)); b == nil {
			return nil
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
