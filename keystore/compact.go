package keystore

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/internal/fsutil"
)

// maybeCompact compacts the file when erased records take more than half
// of it and at least compactMin bytes.
func (s *Store) maybeCompact() error {
	if s.erased < s.compactMin || 2*s.erased <= s.size {
		return nil
	}
	if err := s.compact(); err != nil {
		return fmt.Errorf("%w (the erasure was done; nothing is lost): %w", ErrCompact, err)
	}
	return nil
}

// compact writes the live records to a new file under a new store key and
// puts it in place of the old one, which it then overwrites with zeros.
//
//  1. Write the new file at path+".tmp" and sync it.
//  2. Link the old file as path+".old" and sync the directory, so that it
//     keeps a name until it is scrubbed: a crash would otherwise free its
//     blocks unscrubbed, live records included, and those could be deleted
//     from the new file later.
//  3. Rename the new file over path and sync the directory.
//  4. Overwrite the old file with zeros through the open descriptor, sync,
//     remove path+".old" and sync the directory.
//
// Open scrubs path+".tmp" and path+".old" if a crash left them (and only
// unlinks path+".old" while it is still path's file, before step 3).
func (s *Store) compact() error {
	if err := cleanLeftovers(s.path); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		clear(key)
		return fmt.Errorf("compact: %w", err)
	}
	hdr, err := encodeHeader(key, s.id)
	if err != nil {
		clear(key)
		return fmt.Errorf("compact: %w", err)
	}
	names := make([]string, 0, len(s.m))
	for name := range s.m {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(s.m[a].off, s.m[b].off) })

	tmp, old := s.path+".tmp", s.path+".old"
	nf, offs, err := s.writeCompacted(tmp, hdr, aead, names)
	if err == nil {
		if err = os.Link(s.path, old); err == nil {
			err = fsutil.SyncDir(filepath.Dir(s.path))
		}
		if err != nil {
			os.Remove(old)
		}
	}
	if err == nil {
		if err = os.Rename(tmp, s.path); err == nil {
			err = fsutil.SyncDir(filepath.Dir(s.path))
		} else {
			os.Remove(old) // still a second name of s.path
		}
	}
	if err != nil {
		if nf != nil {
			nf.Close()
		}
		scrub(tmp)
		clear(key)
		return fmt.Errorf("compact %s: %w (the store is unchanged)", s.path, err)
	}

	// The new file is in place: switch to it, whatever happens to the old.
	of, oldSize := s.f, s.size
	clear(s.key)
	s.f, s.key, s.aead = nf, key, aead
	s.hdrSize = int64(len(hdr))
	s.size = s.hdrSize
	for i, name := range names {
		e := s.m[name]
		e.off = offs[i]
		s.size += e.size
	}
	s.erased = 0

	err = zeroRange(of, 0, oldSize)
	if err == nil {
		err = syncData(of)
	}
	if cerr := of.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Remove(old)
	}
	if err == nil {
		err = fsutil.SyncDir(filepath.Dir(s.path))
	}
	if err != nil {
		return fmt.Errorf("compact %s: scrub the old file %s: %w (Open scrubs it)", s.path, old, err)
	}
	return nil
}

// writeCompacted writes the new file: the header, then the records of
// names in order. It returns the file, open, and each record's offset.
func (s *Store) writeCompacted(tmp string, hdr []byte, aead aeadCipher, names []string) (*os.File, []int64, error) {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, err
	}
	offs := make([]int64, len(names))
	off := int64(len(hdr))
	buf := append(make([]byte, 0, 1<<20+maxBody), hdr...)
	flush := func() error {
		_, err := f.WriteAt(buf, off-int64(len(buf)))
		buf = buf[:0]
		return err
	}
	for i, name := range names {
		e := s.m[name]
		rec, err := sealRecord(aead, off, name, e.secret, e.deleteAfter)
		if err != nil {
			return f, nil, err
		}
		if int64(len(rec)) != e.size {
			return f, nil, fmt.Errorf("record of %q changed size", name) // cannot happen
		}
		offs[i] = off
		buf = append(buf, rec...)
		off += e.size
		if len(buf) >= 1<<20 {
			if err := flush(); err != nil {
				return f, nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return f, nil, err
	}
	return f, offs, syncData(f)
}
