package keystore

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.store")

// The file testdata/v1.store was written by this package with the test
// identity of seed 01 01 ... 01. It cannot be reproduced byte for byte (age
// and the record nonces are random), but every later version must read it:
// it pins the format of doc.go.
var vectorEntries = []struct {
	name, secret string
	deleteAfter  time.Time
}{
	{"prekey/00112233445566778899aabbccddeeff", "0123456789abcdef0123456789abcdef", time.Unix(1_900_000_000, 123).UTC()},
	{"ratchet/group/sender/7", "chain key and skipped keys", time.Time{}},
}

func writeVector(t *testing.T, path string) {
	s, err := Open(path, testID(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, e := range vectorEntries {
		if err := s.Put(e.name, []byte("an earlier value"), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put("deleted", []byte("a deleted secret"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, e := range vectorEntries {
		if err := s.Put(e.name, []byte(e.secret), e.deleteAfter); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete("deleted"); err != nil {
		t.Fatal(err)
	}
}

func TestVectorFile(t *testing.T) {
	golden := filepath.Join("testdata", "v1.store")
	if *update {
		os.Remove(golden)
		os.Remove(golden + ".lock")
		writeVector(t, golden)
		os.Remove(golden + ".lock")
	}
	b := readFile(t, golden)
	path := storePath(t)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, path, testID(t, 1))
	l := s.List("")
	if len(l) != len(vectorEntries) {
		t.Fatalf("entries %v, want %d", l, len(vectorEntries))
	}
	for i, e := range vectorEntries {
		got, _ := s.Get(e.name)
		if l[i].Name != e.name || !l[i].DeleteAfter.Equal(e.deleteAfter) || string(got) != e.secret {
			t.Errorf("entry %d = %v %q, want %v %q", i, l[i], got, e, e.secret)
		}
	}
	// Two live records and three erased ones (two replaced values and the
	// deleted secret, their bodies all zeros), in the layout of doc.go.
	var live, erased int
	for _, r := range rawScan(t, path, testID(t, 1)) {
		switch {
		case r.flag == flagLive && r.opened:
			live++
		case r.flag == flagErased && !r.opened && bytes.Count(r.body, []byte{0}) == len(r.body):
			erased++
		default:
			t.Errorf("record at %d: flag %q, opened %v", r.off, r.flag, r.opened)
		}
	}
	if live != 2 || erased != 3 {
		t.Errorf("%d live and %d erased records, want 2 and 3", live, erased)
	}
	if !bytes.Equal(readFile(t, path), b) {
		t.Error("Open changed a file that needed no repair")
	}
}
