package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// A copy taken while the store is written reads back as a store with what
// was committed before it began, and nothing written after; Check accepts
// it and counts its groups.
func TestCopyToIsConsistentSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gid := []byte("0123456789abcdef")
	if err := s.CreateGroup(gid, []byte(`{"name":"g"}`)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 50; i++ {
		if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(i, 1, strings.Repeat("x", 1000))}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	var size int64 = -1
	n, err := s.CopyTo(&buf, func(sz int64) {
		size = sz
		// A write while the copy runs is not in it: the copy is one
		// read transaction's view.
		if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(51, 1, "late")}, nil, nil); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != size || int64(buf.Len()) != size {
		t.Fatalf("copied %d bytes, buffer %d, announced %d", n, buf.Len(), size)
	}
	cp := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(cp, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	groups, err := Check(cp)
	if err != nil || groups != 1 {
		t.Fatalf("Check(copy) = %d, %v; want 1 group", groups, err)
	}
	c, err := Open(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, last, err := c.LogBounds(gid)
	if err != nil || first != 1 || last != 50 {
		t.Fatalf("copy's log [%d, %d], %v; want [1, 50]", first, last, err)
	}
}

// Check refuses what is not a whole DeMeS store, and leaves it as it was.
func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.CopyTo(&buf, func(int64) {}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	whole := buf.Bytes()
	for name, data := range map[string][]byte{
		"empty":     {},
		"text":      []byte(strings.Repeat("not a database\n", 1000)),
		"truncated": whole[:len(whole)/2],
		"zeroed":    append(append([]byte{}, whole[:8192]...), make([]byte, len(whole)-8192)...),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Check(path); err == nil {
			t.Errorf("Check(%s) = nil, want an error", name)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, data) {
			t.Errorf("Check(%s) changed the file", name)
		}
	}
}

// InUse tells a store a node has open from one nobody has.
func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	if InUse(path) {
		t.Fatal("a missing store is in use")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !InUse(path) {
		t.Error("an open store is not in use")
	}
	s.Close()
	if InUse(path) {
		t.Error("a closed store is in use")
	}
}
