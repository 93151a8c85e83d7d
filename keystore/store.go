package keystore

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/fsutil"
)

// Limits on what one entry holds. A ratchet receiver state with its window
// of skipped keys is about 40 KB.
const (
	// MaxName is the longest name, in bytes.
	MaxName = 255
	// MaxSecret is the largest secret, in bytes.
	MaxSecret = 64 << 10
)

// Errors the store returns; its errors wrap one of these where it applies,
// with the path and the offending name or offset in the text. None of them
// ever holds a secret.
var (
	// ErrInvalid: a name or secret outside the limits, or a deletion time
	// out of range. Nothing was changed.
	ErrInvalid = errors.New("invalid key store entry")
	// ErrNotKeyStore: the file is not a DeMeS key store at all.
	ErrNotKeyStore = errors.New("not a key store")
	// ErrWrongIdentity: the store was sealed to another identity.
	ErrWrongIdentity = errors.New("wrong identity")
	// ErrCorrupt: the file is damaged somewhere other than an interrupted
	// last write, or was tampered with. Open refuses it rather than drop a
	// secret silently.
	ErrCorrupt = errors.New("key store damaged")
	// ErrPermissions: the file can be read by other users.
	ErrPermissions = errors.New("key store is readable by other users")
	// ErrInUse: another process has the store open.
	ErrInUse = errors.New("key store is in use")
	// ErrCompact: a compaction failed. The change that triggered it was
	// made and synced; the file is only larger than it needs to be.
	ErrCompact = errors.New("key store compaction failed")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("key store is closed")
	// ErrFailed: an earlier write failed, so what is on disk is unknown;
	// the store refuses further changes until it is opened again.
	ErrFailed = errors.New("key store write failed earlier")
)

// Entry names one secret in the store.
type Entry struct {
	Name string
	// DeleteAfter is when [Store.Expire] deletes the entry; zero means never.
	DeleteAfter time.Time
}

// entry is one live record, in memory.
type entry struct {
	off         int64 // where its record starts
	size        int64 // record bytes, header included
	deleteAfter time.Time
	secret      []byte
}

// defaultCompactMin is the erased bytes below which the store is never
// compacted: erased records are zeros already, so compaction only gives the
// space back.
const defaultCompactMin = 1 << 20

// Store is a key store opened with [Open]. It is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	path string
	id   *identity.Identity
	lock *os.File // holds the lock on path+".lock"

	f       *os.File
	key     []byte
	aead    cipher.AEAD
	hdrSize int64
	size    int64 // the end of the last record: where the next one goes
	m       map[string]*entry
	erased  int64 // bytes of erased records in the file
	dropped int64 // bytes of an interrupted write dropped by Open

	compactMin int64
	failed     error // the write error that makes the store refuse changes
	closed     bool
}

// Open opens the key store at path, readable only with id, creating it
// (mode 0600) if it does not exist. It holds a lock on path+".lock" until
// [Store.Close], so that no two processes use one store.
//
// Open finishes what a crash interrupted: it drops a record cut short at the
// end of the file (see [Store.Dropped]), completes erasures and replacements,
// and scrubs the leftovers of an interrupted compaction. Any other damage is
// an error wrapping [ErrCorrupt] that names the offset.
func Open(path string, id *identity.Identity) (*Store, error) {
	if id == nil {
		return nil, errors.New("open key store: no identity")
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	s, err := open(path, id, lock)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func open(path string, id *identity.Identity, lock *os.File) (*Store, error) {
	if err := cleanLeftovers(path); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := create(path, id); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	s, err := load(path, id, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// create writes a new, empty store at path: the header goes to a temporary
// file first, so a crash leaves no file or a whole one.
func create(path string, id *identity.Identity) error {
	key := make([]byte, keySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("create key store: %w", err)
	}
	hdr, err := encodeHeader(key, id)
	if err != nil {
		return fmt.Errorf("create key store %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key store: %w", err)
	}
	_, err = f.Write(hdr)
	if err == nil {
		err = syncData(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = fsutil.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create key store %s: %w", path, err)
	}
	return nil
}

// load reads the store in f and repairs what a crash left.
func load(path string, id *identity.Identity, f *os.File) (*Store, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	// A copy that another user made before a deletion opens with the
	// identity later, whatever the store does: refuse to go on quietly.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o (fix it with: chmod 600 %s)",
			ErrPermissions, path, st.Mode().Perm(), path)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read key store %s: %w", path, err)
	}
	h, err := decodeHeader(b, id, path)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(h.key)
	if err != nil {
		clear(h.key)
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	s := &Store{
		path: path, id: id, f: f, key: h.key, aead: aead,
		hdrSize: int64(h.size), m: map[string]*entry{}, compactMin: defaultCompactMin,
	}
	sc, err := scan(b, h.size, aead)
	if err != nil {
		s.wipe()
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	if err := s.repair(sc); err != nil {
		s.wipe()
		return nil, fmt.Errorf("open key store %s: repair after a crash: %w", path, err)
	}
	return s, nil
}

// Put stores secret under name, replacing any earlier value of name, which
// is erased from the file. deleteAfter is when [Store.Expire] deletes the
// entry; zero means never. The new value is on disk (synced) before Put
// returns; a name over [MaxName] bytes or a secret over [MaxSecret] is
// refused with [ErrInvalid] and changes nothing.
func (s *Store) Put(name string, secret []byte, deleteAfter time.Time) error {
	return s.PutMany([]Item{{Name: name, Secret: secret, DeleteAfter: deleteAfter}})
}

// Get returns a copy of the secret stored under name. The caller should
// clear it when done.
func (s *Store) Get(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[name]
	if e == nil {
		return nil, false
	}
	return bytes.Clone(e.secret), true
}

// List returns the entries whose names start with prefix, sorted by name.
func (s *Store) List(prefix string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []Entry
	for name, e := range s.m {
		if strings.HasPrefix(name, prefix) {
			l = append(l, Entry{Name: name, DeleteAfter: e.deleteAfter})
		}
	}
	slices.SortFunc(l, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return l
}

// Delete erases name: its record in the file is overwritten with zeros and
// synced before Delete returns. Deleting a name that is not there does
// nothing.
func (s *Store) Delete(name string) error {
	_, err := s.deleteWhere(func(n string, _ *entry) bool { return n == name })
	if err != nil {
		return fmt.Errorf("key store delete %q: %w", name, err)
	}
	return nil
}

// DeletePrefix erases every entry whose name starts with prefix, with the
// same two syncs for all of them, and returns how many it erased.
func (s *Store) DeletePrefix(prefix string) (int, error) {
	n, err := s.deleteWhere(func(name string, _ *entry) bool { return strings.HasPrefix(name, prefix) })
	if err != nil {
		return n, fmt.Errorf("key store delete prefix %q: %w", prefix, err)
	}
	return n, nil
}

// Expire erases every entry whose deletion time is at or before now and
// returns how many it erased.
func (s *Store) Expire(now time.Time) (int, error) {
	n, err := s.deleteWhere(func(_ string, e *entry) bool {
		return !e.deleteAfter.IsZero() && !e.deleteAfter.After(now)
	})
	if err != nil {
		return n, fmt.Errorf("key store expire: %w", err)
	}
	return n, nil
}

// deleteWhere erases the entries that match. They leave memory even if the
// file cannot be written, since the caller wants them gone; the error says
// the file may still hold them.
func (s *Store) deleteWhere(match func(string, *entry) bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	var es []*entry
	for name, e := range s.m {
		if match(name, e) {
			es = append(es, e)
			delete(s.m, name)
		}
	}
	if len(es) == 0 {
		return 0, nil
	}
	if err := s.erase(es); err != nil {
		return len(es), err
	}
	return len(es), s.maybeCompact()
}

// Dropped returns how many bytes of an interrupted write at the end of the
// file Open dropped: a Put that never returned. The caller may log it.
func (s *Store) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Compact rewrites the file with only the live records, under a new store
// key, and scrubs the old file. The store does this by itself when erased
// records take more than half of the file.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("key store compact: %w", err)
	}
	if err := s.compact(); err != nil {
		return fmt.Errorf("%w: %w", ErrCompact, err)
	}
	return nil
}

// Close closes the file, releases the lock and clears the secrets the store
// held in memory. Later calls fail with [ErrClosed] (Get finds nothing).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.f.Close()
	s.wipe()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close key store %s: %w", s.path, err)
	}
	return nil
}

// wipe clears the secrets and the store key in memory. The AEAD keeps its
// own copy of the key, out of reach; dropping it is all Go allows.
func (s *Store) wipe() {
	for name, e := range s.m {
		clear(e.secret)
		delete(s.m, name)
	}
	clear(s.key)
	s.aead = nil
}

// writable says why the store cannot be changed now, or nil.
func (s *Store) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.failed != nil:
		return fmt.Errorf("%w (%v); open it again", ErrFailed, s.failed)
	}
	return nil
}
