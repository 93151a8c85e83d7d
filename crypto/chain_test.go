package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

type chainEntry struct {
	index uint64
	data  string
}

func chainHead(t *testing.T, group GroupID, entries []chainEntry) [32]byte {
	t.Helper()
	c := NewChain(group)
	for _, e := range entries {
		if err := c.Append(e.index, []byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	return c.Head
}

// TestChainDetectsChanges checks that every way of altering a history gives a
// different head from the original and from each other.
func TestChainDetectsChanges(t *testing.T) {
	base := []chainEntry{{1, "genesis"}, {2, "alice joins"}, {4, "hello"}, {5, "hi"}, {9, "bye"}}
	tests := []struct {
		name    string
		group   GroupID
		entries []chainEntry
	}{
		{"original", testGroup, base},
		{"another group", GroupID{1}, base},
		{"entry changed", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {4, "hellO"}, {5, "hi"}, {9, "bye"}}},
		{"entry removed", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {5, "hi"}, {9, "bye"}}},
		{"last entry removed", testGroup, base[:4]},
		{"entry inserted", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {3, "spam"}, {4, "hello"}, {5, "hi"}, {9, "bye"}}},
		{"entries reordered", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {4, "hi"}, {5, "hello"}, {9, "bye"}}},
		{"index changed", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {3, "hello"}, {5, "hi"}, {9, "bye"}}},
		{"boundary moved", testGroup, []chainEntry{{1, "genesis"}, {2, "alice joins"}, {4, "hell"}, {5, "ohi"}, {9, "bye"}}},
		{"empty entry added", testGroup, append(append([]chainEntry{}, base...), chainEntry{10, ""})},
		{"empty", testGroup, nil},
	}
	heads := make(map[[32]byte]string)
	for _, tc := range tests {
		h := chainHead(t, tc.group, tc.entries)
		if prev, ok := heads[h]; ok {
			t.Errorf("%q and %q have the same head %x", tc.name, prev, h)
		}
		heads[h] = tc.name
	}
}

// TestChainDefinition recomputes the head from its definition.
func TestChainDefinition(t *testing.T) {
	h := sha256.Sum256(append([]byte("DeMeS transcript v1"), testGroup[:]...))
	c := NewChain(testGroup)
	if c.Head != h || c.Index != 0 {
		t.Fatalf("NewChain = %x at %d, want %x at 0", c.Head, c.Index, h)
	}
	for _, e := range []chainEntry{{1, "a"}, {7, ""}, {8, "longer entry"}} {
		buf := append([]byte{}, h[:]...)
		buf = binary.BigEndian.AppendUint64(buf, e.index)
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(e.data)))
		h = sha256.Sum256(append(buf, e.data...))
		if err := c.Append(e.index, []byte(e.data)); err != nil {
			t.Fatal(err)
		}
		if c.Head != h || c.Index != e.index {
			t.Fatalf("after index %d: %x at %d, want %x", e.index, c.Head, c.Index, h)
		}
	}
}

func TestChainIndexOrder(t *testing.T) {
	c := NewChain(testGroup)
	if err := c.Append(0, []byte("x")); err == nil {
		t.Fatal("index 0 accepted")
	}
	if err := c.Append(5, []byte("x")); err != nil {
		t.Fatal(err)
	}
	before := c
	for _, i := range []uint64{5, 4, 1} {
		if err := c.Append(i, []byte("y")); err == nil {
			t.Fatalf("index %d after 5 accepted", i)
		}
		if c != before {
			t.Fatalf("failed Append changed the chain")
		}
	}
}
