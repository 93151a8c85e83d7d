package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// seedStore returns the bytes of a real store with live, replaced and
// deleted entries, and where its records start.
func seedStore(f *testing.F) ([]byte, int) {
	path := filepath.Join(f.TempDir(), "seed.store")
	s, err := Open(path, testID(f, 1))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range []struct{ name, secret string }{
		{"prekey/1", "seed one"}, {"prekey/2", "seed two"}, {"ratchet/a", "chain"}, {"prekey/1", "seed one again"},
	} {
		if err := s.Put(e.name, []byte(e.secret), time.Unix(1_800_000_000, 0)); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Delete("prekey/2"); err != nil {
		f.Fatal(err)
	}
	start := int(s.hdrSize)
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b, start
}

// checkOpen opens the file b and, if that works, checks that what it read
// survives a second Open unchanged: recovery leaves a store that needs none.
func checkOpen(t *testing.T, b []byte) {
	path := filepath.Join(t.TempDir(), "k.store")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	id := testID(t, 1)
	s, err := Open(path, id)
	if err != nil {
		if !bytes.Equal(readFile(t, path), b) {
			t.Fatalf("a refused Open changed the file: %v", err)
		}
		return
	}
	list := s.List("")
	secrets := map[string][]byte{}
	for _, e := range list {
		secrets[e.Name], _ = s.Get(e.Name)
	}
	s.Close()
	s, err = Open(path, id)
	if err != nil {
		t.Fatalf("the store Open repaired does not open again: %v", err)
	}
	defer s.Close()
	if s.Dropped() != 0 {
		t.Fatalf("second Open dropped %d bytes more", s.Dropped())
	}
	again := s.List("")
	if !slices.EqualFunc(list, again, func(a, b Entry) bool {
		return a.Name == b.Name && a.DeleteAfter.Equal(b.DeleteAfter)
	}) {
		t.Fatalf("entries %v, then %v", list, again)
	}
	for name, sec := range secrets {
		if got, _ := s.Get(name); !bytes.Equal(got, sec) {
			t.Fatalf("%q changed across Open", name)
		}
	}
}

// FuzzOpen opens arbitrary files: Open never panics, a refused file is
// left as it was, and a file it accepts reads the same the next time.
func FuzzOpen(f *testing.F) {
	b, start := seedStore(f)
	f.Add(b)
	f.Add(b[:start])
	f.Add(b[:len(b)-7])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { checkOpen(t, b) })
}

// FuzzOpenRecords keeps a valid header, so that what follows reaches the
// record reader: lengths, flags, torn tails, erased and live records.
func FuzzOpenRecords(f *testing.F) {
	b, start := seedStore(f)
	hdr := bytes.Clone(b[:start])
	recs := b[start:]
	f.Add(recs)
	f.Add(recs[:len(recs)-10])
	f.Add(append(bytes.Clone(recs), make([]byte, 100)...))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, recs []byte) {
		checkOpen(t, append(bytes.Clone(hdr), recs...))
	})
}
