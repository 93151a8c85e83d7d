package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// CopyTo writes a consistent copy of the whole database to w: the file as it
// stands at the start of one read transaction, which [Open] reads like the
// original. begin is called with the copy's size in bytes before its first
// byte is written (an HTTP handler sets Content-Length with it), and the
// copy is exactly that long.
//
// Writers carry on during the copy, which reads pages from the file rather
// than holding a lock; only a write that must grow the file's memory map
// waits for the copy to end (bbolt remaps under an exclusive lock).
func (s *Store) CopyTo(w io.Writer, begin func(size int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		begin(tx.Size())
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy the store: %w", err)
	}
	return n, nil
}

// Check opens the store file at path read-only, checks that it is whole and
// that it is a node's store, and returns how many groups it holds. It
// changes nothing, so a restore checks a backup's store with it before
// putting the file in place.
//
// It is no substitute for the backup's own authentication: bbolt's full
// consistency check panics on a damaged page in a goroutine of its own,
// where it cannot be recovered, so Check reads only the pages on the way to
// each group's buckets (a panic there is recovered and reported) after
// checking that the file is as long as its header says.
func Check(path string) (groups int, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("check store: %w", err)
	}
	if st.Size() == 0 {
		return 0, errors.New("check store: the file is empty")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("check store: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) (err error) {
		// A cut file must be caught before any page is read: bbolt maps
		// the file into memory, and reading past its end is a bus error,
		// not an error value.
		if tx.Size() > st.Size() {
			return fmt.Errorf("truncated: %d bytes, its header says %d", st.Size(), tx.Size())
		}
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("damaged: %v", p)
			}
		}()
		root := tx.Bucket(bucketGroups)
		if root == nil {
			return errors.New("not a DeMeS store (no groups bucket)")
		}
		return root.ForEachBucket(func(k []byte) error {
			g := root.Bucket(k)
			for _, name := range [][]byte{bucketEntries, bucketMeta, bucketOutbox} {
				if g.Bucket(name) == nil {
					return fmt.Errorf("not a DeMeS store (group %x has no %s bucket)", k, name)
				}
			}
			groups++
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("check store: %w", err)
	}
	return groups, nil
}

// InUse reports whether a process has the store file at path open for
// writing, as a running node does (bbolt locks the file). A missing or
// unreadable file is not in use.
func InUse(path string) bool {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		return errors.Is(err, berrors.ErrTimeout)
	}
	db.Close()
	return false
}
