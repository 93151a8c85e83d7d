package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Read receipts (see node's receipts.go): how far this node's person has
// read each group, and the node's own preferences.
var (
	keyReadMark = []byte("read")
	// bucketPrefs holds the node's preferences, one key each, beside the
	// groups: they belong to the person, not to a group.
	bucketPrefs = []byte("prefs")
)

// SaveReadMark records the log index through which this node's person has
// read a group's messages.
func (s *Store) SaveReadMark(gid []byte, index uint64) error {
	return s.putMeta(gid, keyReadMark, u64(index))
}

// ReadMark returns what SaveReadMark recorded for a group, 0 if nothing.
func (s *Store) ReadMark(gid []byte) (uint64, error) {
	b, err := s.getMeta(gid, keyReadMark)
	if err != nil || b == nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("read mark of group %x: %d bytes, want 8", gid, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// SavePref records one of the node's preferences under name.
func (s *Store) SavePref(name string, v []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPrefs)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
}

// Pref returns what SavePref recorded under name, nil if nothing.
func (s *Store) Pref(name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketPrefs); b != nil {
			if v := b.Get([]byte(name)); v != nil {
				out = append([]byte{}, v...)
			}
		}
		return nil
	})
	return out, err
}
