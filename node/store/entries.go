package store

// The raft log's entries: how they are laid out in a group's entries
// bucket, and read back.

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// bigEntry is the size (bbolt's page) from which an entry is stored in a
// bucket of its own inside the entries bucket, under the entry's key, so
// that the entries' leaf holds only that bucket's 16-byte header. bbolt
// writes a whole leaf again whenever a key is added to it, and splits a
// leaf only once it holds more than four keys: a key header of 121 KB (a
// new sender key at 100 members) beside the newest entries was written
// again by each of the next four commits (TestBigEntryNotRewritten).
const bigEntry = 4096

// keyBigEntry is the one key of a big entry's bucket.
var keyBigEntry = []byte("v")

// putEntry stores data, an encoded entry, under k in eb.
func putEntry(eb *bolt.Bucket, k, data []byte) error {
	if len(data) < bigEntry {
		return eb.Put(k, data)
	}
	nb, err := eb.CreateBucket(k)
	if err != nil {
		return err
	}
	return nb.Put(keyBigEntry, data)
}

// entryValue returns the encoded entry under k in eb, where v is what a
// cursor or ForEach gave for k (nil for a big entry's bucket). A big
// entry's bucket without its value is an error wrapping [ErrCorrupt]:
// decoding nothing would give an empty entry without a word.
func entryValue(eb *bolt.Bucket, k, v []byte) ([]byte, error) {
	if v != nil {
		return v, nil
	}
	if nb := eb.Bucket(k); nb != nil {
		if v := nb.Get(keyBigEntry); v != nil {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: entry %d has no value", ErrCorrupt, binary.BigEndian.Uint64(k))
}

// truncateEntries deletes the entries from index from on.
func truncateEntries(eb *bolt.Bucket, from uint64) error {
	var tail, big [][]byte
	c := eb.Cursor()
	for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
		// Copies: the deletions below change the pages the keys are in.
		if v == nil {
			big = append(big, bytes.Clone(k)) // a bucket: not for the cursor to delete
		} else {
			tail = append(tail, bytes.Clone(k))
		}
	}
	for _, k := range tail {
		if err := eb.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range big {
		if err := eb.DeleteBucket(k); err != nil {
			return err
		}
	}
	return nil
}

// LoadRaft returns a group's hard state and its whole log, in index order.
func (s *Store) LoadRaft(gid []byte) (*pb.HardState, []*pb.Entry, error) {
	var (
		hs      *pb.HardState
		entries []*pb.Entry
	)
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		var err error
		if hs, err = getHardState(b); err != nil {
			return err
		}
		eb := b.Bucket(bucketEntries)
		return eb.ForEach(func(k, v []byte) error {
			e := &pb.Entry{}
			v, err := entryValue(eb, k, v)
			if err != nil {
				return err
			}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			entries = append(entries, e)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load group %x: %w", gid, err)
	}
	return hs, entries, nil
}

// LogBounds returns the indexes of the first and the last entry of the
// group's stored log; both are 0 when it holds none.
func (s *Store) LogBounds(gid []byte) (first, last uint64, err error) {
	err = s.viewGroup(gid, func(b *bolt.Bucket) error {
		c := b.Bucket(bucketEntries).Cursor()
		if k, _ := c.First(); k != nil {
			first = binary.BigEndian.Uint64(k)
		}
		if k, _ := c.Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("log bounds of group %x: %w", gid, err)
	}
	return first, last, nil
}

// Entries returns the group's stored log entries in [lo, hi), in order, like
// raft's Storage.Entries: the entries' total size (protobuf encoding) stays
// within maxSize, except that at least one entry is returned when lo < hi.
// A missing entry in the range is an error wrapping [ErrMissing].
func (s *Store) Entries(gid []byte, lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	var out []*pb.Entry
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		eb := b.Bucket(bucketEntries)
		c := eb.Cursor()
		var size uint64
		next := lo
		for k, v := c.Seek(u64(lo)); next < hi; k, v = c.Next() {
			if k == nil || binary.BigEndian.Uint64(k) != next {
				return fmt.Errorf("%w: index %d", ErrMissing, next)
			}
			e := &pb.Entry{}
			v, err := entryValue(eb, k, v)
			if err != nil {
				return err
			}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("entry %d: %w", next, err)
			}
			size += uint64(proto.Size(e))
			if len(out) > 0 && size > maxSize {
				return nil
			}
			out = append(out, e)
			next++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read log of group %x [%d, %d): %w", gid, lo, hi, err)
	}
	return out, nil
}

// Term returns the term of the group's stored log entry at index i. A
// missing entry is an error wrapping [ErrMissing].
//
// It reads the term field alone, without decoding the entry: raft asks for
// the terms of one index after another when a follower rejects an append
// (each member can make it do so), and decoding a 64 KiB entry to read its
// term took 39 us, against 4 us now (BenchmarkTerm; TestTermReadsTheField).
func (s *Store) Term(gid []byte, i uint64) (uint64, error) {
	var (
		term  uint64
		found bool
	)
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		eb := b.Bucket(bucketEntries)
		k := u64(i)
		v := eb.Get(k)
		if v == nil && eb.Bucket(k) == nil {
			return fmt.Errorf("%w: index %d", ErrMissing, i)
		}
		v, err := entryValue(eb, k, v)
		if err != nil {
			return err
		}
		term, found, err = termField(v)
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the term of entry %d of group %x: %w", i, gid, err)
	}
	if !found {
		return 0, nil // proto.Unmarshal's answer too: no field, term 0
	}
	return term, nil
}

// termField returns the Term field (2, a varint) of an encoded raft entry.
func termField(v []byte) (term uint64, found bool, err error) {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return 0, false, protowire.ParseError(n)
		}
		v = v[n:]
		if num == 2 && typ == protowire.VarintType {
			t, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return 0, false, protowire.ParseError(n)
			}
			return t, true, nil
		}
		n = protowire.ConsumeFieldValue(num, typ, v)
		if n < 0 {
			return 0, false, protowire.ParseError(n)
		}
		v = v[n:]
	}
	return 0, false, nil
}
