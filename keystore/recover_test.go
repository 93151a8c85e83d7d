package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// twoRecords makes a store holding "a" then "b" (b last, with a 1000-byte
// secret so that cuts can land anywhere), closes it and returns where b's
// record starts and its size.
func twoRecords(t *testing.T) (path string, bOff, bSize int) {
	t.Helper()
	path = storePath(t)
	s := openT(t, path, testID(t, 1))
	put(t, s, "a", "first")
	if err := s.Put("b", secretOf("second ", 1000), zeroTime); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs := rawScan(t, path, testID(t, 1))
	last := recs[len(recs)-1]
	return path, last.off, 5 + len(last.body)
}

func TestTornTailRecovered(t *testing.T) {
	cases := []struct {
		what   string
		damage func(b []byte, off, size int) []byte
	}{
		{"cut in the record header", func(b []byte, off, _ int) []byte { return b[:off+3] }},
		{"cut in the body", func(b []byte, off, _ int) []byte { return b[:off+5+100] }},
		{"cut one byte short", func(b []byte, off, size int) []byte { return b[:off+size-1] }},
		{"size grew, no data written", func(b []byte, off, size int) []byte {
			clear(b[off:])
			return b
		}},
		{"end of the body not written", func(b []byte, off, size int) []byte {
			clear(b[off+size/2:])
			return b
		}},
		{"a block in the middle not written", func(b []byte, off, size int) []byte {
			clear(b[off+200 : off+712])
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			path, off, size := twoRecords(t)
			b := c.damage(readFile(t, path), off, size)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openT(t, path, testID(t, 1))
			if got, _ := s.Get("a"); string(got) != "first" {
				t.Errorf("a = %q", got)
			}
			if _, ok := s.Get("b"); ok {
				t.Error("b, cut short, was read")
			}
			if d := s.Dropped(); d != int64(len(b)-off) {
				t.Errorf("Dropped = %d, want %d", d, len(b)-off)
			}
			if st, _ := os.Stat(path); st.Size() != int64(off) {
				t.Errorf("file is %d bytes after recovery, want %d", st.Size(), off)
			}
			put(t, s, "c", "third")
			s.Close()
			s = openT(t, path, testID(t, 1))
			if got := names(s.List("")); strings.Join(got, ",") != "a,c" || s.Dropped() != 0 {
				t.Errorf("after recovery and a Put: %v, dropped %d", got, s.Dropped())
			}
		})
	}
}

func TestDamageIsAnError(t *testing.T) {
	path, bOff, bSize := twoRecords(t)
	aOff := rawScan(t, path, testID(t, 1))[0].off
	hdrEnd := aOff
	cases := []struct {
		what string
		at   int    // byte to change
		xor  byte   // how
		want string // in the error
	}{
		{"a flipped bit in the middle record", aOff + 40, 0x01, fmt.Sprintf("record at offset %d does not authenticate", aOff)},
		{"a flipped bit in the last record", bOff + bSize - 3, 0x80, fmt.Sprintf("record at offset %d does not authenticate", bOff)},
		{"a bad length in the middle", aOff, 0xff, fmt.Sprintf("record at offset %d has a bad header", aOff)},
		{"a bad flag in the middle", aOff + 4, 0x10, fmt.Sprintf("record at offset %d has a bad header", aOff)},
		{"a bad length of the last record", bOff + 1, 0x40, fmt.Sprintf("record at offset %d has a bad header", bOff)},
		{"a flipped bit in the header signature", hdrEnd - 5, 0x01, "not signed by this identity"},
		{"a flipped bit in the sealed key", hdrEnd - 64 - 3, 0x01, "open the store key"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			b := readFile(t, path)
			b[c.at] ^= c.xor
			p := storePath(t)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(p, testID(t, 1))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want ErrCorrupt with %q", err, c.want)
			}
			if !bytes.Equal(readFile(t, p), b) {
				t.Error("a refused Open changed the file")
			}
		})
	}
}

// TestPlantedStoreRefused: someone who can write the file but does not
// hold the identity writes a store of their own, sealed to the member's
// public age recipient, holding a "ratchet state" they know. The header
// signature makes Open refuse it; without it, the member would encrypt
// with the planted chain key.
func TestPlantedStoreRefused(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	put(t, s, "ratchet/mine", "real chain key")
	s.Close()

	attacker := testID(t, 9)
	key := make([]byte, keySize)
	rand.Read(key)
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, id.AgeIdentity().Recipient())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(key)
	w.Close()
	h := append([]byte(magic), 0, 0)
	binary.BigEndian.PutUint16(h[len(magic):], uint16(sealed.Len()))
	h = append(h, sealed.Bytes()...)
	h = append(h, attacker.Sign(append([]byte(sigDomain), h...))...)
	aead, _ := chacha20poly1305.NewX(key)
	rec, err := sealRecord(aead, int64(len(h)), "ratchet/mine", []byte("attacker's chain key"), zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(h, rec...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, id)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not signed by this identity") {
		t.Fatalf("Open of a planted store = %v, want it refused", err)
	}
}

// TestReplaceInterruptedByCrash: a crash after the new value of a name was
// synced and before the old one was erased leaves two live records. Open
// keeps the later and erases the earlier.
func TestReplaceInterruptedByCrash(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	old := secretOf("old value ", 80)
	if err := s.Put("k", old, zeroTime); err != nil {
		t.Fatal(err)
	}
	rec := rawScan(t, path, id)[0]
	saved := append([]byte{flagLive}, rec.body...)
	put(t, s, "k", "new value")
	s.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(saved, int64(rec.off+4)) // the old record, as before the erasure
	f.Close()
	if !thiefFinds(t, path, id, old) {
		t.Fatal("the crash was not simulated: the old value is not in the file")
	}
	s = openT(t, path, id)
	if got, _ := s.Get("k"); string(got) != "new value" {
		t.Errorf("k = %q, want the later value", got)
	}
	if thiefFinds(t, path, id, old) {
		t.Error("Open left the replaced value in the file")
	}
	s.Close()
	s = openT(t, path, id)
	if got, _ := s.Get("k"); string(got) != "new value" || len(s.List("")) != 1 {
		t.Errorf("k = %q, entries %v after a second reopen", got, s.List(""))
	}
}

// TestLeftoversScrubbed: the files an interrupted compaction leaves are
// overwritten before they are removed (a thief holding them open, or
// reading the freed blocks, finds zeros), except path+".old" while it is
// still the store itself.
func TestLeftoversScrubbed(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	put(t, s, "k", "v")
	s.Close()
	content := readFile(t, path)

	var held []*os.File
	for _, p := range []string{path + ".tmp", path + ".old"} {
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		held = append(held, f)
	}
	s = openT(t, path, id)
	for _, f := range held {
		if _, err := os.Stat(f.Name()); err == nil {
			t.Errorf("%s left behind", f.Name())
		}
		b := make([]byte, len(content))
		f.ReadAt(b, 0)
		if !allZero(b) {
			t.Errorf("%s removed without being overwritten", f.Name())
		}
	}
	if got, _ := s.Get("k"); string(got) != "v" {
		t.Errorf("k = %q", got)
	}
	s.Close()

	// A crash between the link and the rename: path.old is path.
	if err := os.Link(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, id)
	if got, _ := s.Get("k"); string(got) != "v" {
		t.Errorf("k = %q after a crash before the rename; the store was scrubbed", got)
	}
	if _, err := os.Stat(path + ".old"); err == nil {
		t.Error(".old left behind")
	}
}

// TestWriteFailureStopsChanges: after a write fails, the store refuses
// further changes (the state of the file is unknown) but still reads, and
// the file opens again with what was synced before.
func TestWriteFailureStopsChanges(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	put(t, s, "before", "v")
	s.f.Close() // every write now fails, as on a dead disk
	if err := s.Put("k", []byte("w"), zeroTime); err == nil {
		t.Fatal("Put on a failing file succeeded")
	}
	if err := s.Put("k2", []byte("w"), zeroTime); !errors.Is(err, ErrFailed) {
		t.Errorf("Put after a failed write: %v, want ErrFailed", err)
	}
	if err := s.Delete("before"); !errors.Is(err, ErrFailed) {
		t.Errorf("Delete after a failed write: %v, want ErrFailed", err)
	}
	if got, ok := s.Get("before"); !ok || string(got) != "v" {
		t.Errorf("Get after a failed write = %q, %v", got, ok)
	}
	s.Close()
	s = openT(t, path, id)
	if got := names(s.List("")); len(got) != 1 || got[0] != "before" {
		t.Errorf("after reopen: %v, want only before", got)
	}
}
