package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/demes/demes/internal/fsutil"
)

// This file writes the store file: appends, erasures in place, the repairs
// Open makes, and the scrubbing of files that are no longer used.

// appendRecord writes rec at the end of the file and syncs it. If that
// fails, it tries to take the file back to where it was, and the store
// refuses further changes: after a failed sync the kernel may have dropped
// the pages, and a later sync would not say so.
func (s *Store) appendRecord(rec []byte) error {
	_, err := s.f.WriteAt(rec, s.size)
	if err == nil {
		err = syncData(s.f)
	}
	if err != nil {
		zeroRange(s.f, s.size, int64(len(rec)))
		s.f.Truncate(s.size)
		syncData(s.f)
		s.failed = err
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// erase overwrites the records of es in place and accounts for them; it
// clears their secrets in memory too. It writes in two steps, each synced:
// first every flag (so that from then on Open takes the records for
// erased, however much of their bodies a crash left), then every body with
// zeros. A crash between the two leaves bodies that Open zeroes.
func (s *Store) erase(es []*entry) error {
	spans := make([]span, len(es))
	for i, e := range es {
		spans[i] = span{e.off, e.size}
		clear(e.secret)
		e.secret = nil
	}
	return s.eraseSpans(spans, true)
}

// eraseSpans is erase for records given by place. With setFlags false the
// flags are already durable and only the bodies are zeroed.
func (s *Store) eraseSpans(spans []span, setFlags bool) error {
	err := func() error {
		if setFlags {
			for _, sp := range spans {
				if _, err := s.f.WriteAt([]byte{flagErased}, sp.off+4); err != nil {
					return err
				}
			}
			if err := syncData(s.f); err != nil {
				return err
			}
		}
		for _, sp := range spans {
			if err := zeroRange(s.f, sp.off+recHeaderSize, sp.size-recHeaderSize); err != nil {
				return err
			}
		}
		return syncData(s.f)
	}()
	if err != nil {
		s.failed = err
		return fmt.Errorf("erase in %s: %w", s.path, err)
	}
	if setFlags {
		for _, sp := range spans {
			s.erased += sp.size
		}
	}
	return nil
}

// repair fixes what scan found and fills the store's map.
func (s *Store) repair(sc *scanned) error {
	s.size, s.erased = sc.fileSize, sc.erased
	if sc.tornAt >= 0 {
		// Zero the dropped bytes before giving them back: they may hold
		// part of a secret's ciphertext.
		n := sc.fileSize - sc.tornAt
		if err := zeroRange(s.f, sc.tornAt, n); err != nil {
			return err
		}
		if err := syncData(s.f); err != nil {
			return err
		}
		if err := s.f.Truncate(sc.tornAt); err != nil {
			return err
		}
		if err := syncData(s.f); err != nil {
			return err
		}
		s.size, s.dropped = sc.tornAt, n
	}
	if len(sc.finish) > 0 {
		if err := s.eraseSpans(sc.finish, false); err != nil {
			return err
		}
	}
	// A later record of a name replaces an earlier one: a crash came
	// between the append of the new value and the erasure of the old.
	var stale []*entry
	for _, f := range sc.live {
		e := &entry{off: f.off, size: f.size, deleteAfter: f.deleteAfter, secret: f.secret}
		if old := s.m[f.name]; old != nil {
			stale = append(stale, old)
		}
		s.m[f.name] = e
	}
	if len(stale) > 0 {
		if err := s.erase(stale); err != nil {
			return err
		}
	}
	return nil
}

// zeroRange overwrites n bytes of f at off with zeros.
func zeroRange(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, 64<<10))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// cleanLeftovers scrubs the files an interrupted compaction or creation
// left next to path. path+".old" is a second name of the old file; if it is
// still the same file as path (the crash came before the rename), only the
// name goes.
func cleanLeftovers(path string) error {
	old := path + ".old"
	if ost, err := os.Lstat(old); err == nil {
		if st, err := os.Lstat(path); err == nil && os.SameFile(st, ost) {
			if err := os.Remove(old); err != nil {
				return fmt.Errorf("open key store: remove %s: %w", old, err)
			}
		} else if err := scrub(old); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(path + ".tmp"); err == nil {
		return scrub(path + ".tmp")
	}
	return nil
}

// scrub overwrites the file at p with zeros, syncs it and removes it.
func scrub(p string) error {
	err := func() error {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return errors.New("not a regular file")
		}
		if err := zeroRange(f, 0, st.Size()); err != nil {
			return err
		}
		return syncData(f)
	}()
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = os.Remove(p)
	}
	if err == nil {
		err = fsutil.SyncDir(filepath.Dir(p))
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("scrub leftover key store file %s: %w", p, err)
	}
	return nil
}
