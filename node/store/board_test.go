package store

import (
	"bytes"
	"strings"
	"testing"
)

// TestBoardDoesNotRewriteTheSnapshot: storing a group's board (sealed by the
// node, opaque here) beside its snapshot, as the node does at every
// snapshot, does not write the snapshot again. It did while the board was a
// key of the snapshot's bucket, and the pages that freed grew the disk a
// message took from 842 to 1,025 bytes at 100,000 messages.
func TestBoardDoesNotRewriteTheSnapshot(t *testing.T) {
	s, _, gid := openTestStore(t)
	if err := s.SaveSnapshot(gid, snapshotAt(8, 2, strings.Repeat("s", 1<<20))); err != nil {
		t.Fatal(err)
	}
	before := pageAlloc(s)
	for i := range 20 {
		if err := s.SaveBoard(gid, bytes.Repeat([]byte{byte(i)}, 512)); err != nil {
			t.Fatal(err)
		}
	}
	if alloc := pageAlloc(s) - before; alloc > 2<<20 {
		t.Errorf("20 boards of 512 bytes allocated %d MiB of pages: the snapshot is written again with the board", alloc>>20)
	}
	board, err := s.LoadBoard(gid)
	if err != nil || !bytes.Equal(board, bytes.Repeat([]byte{19}, 512)) {
		t.Fatalf("the board after the writes: %d bytes (%v), want the last one", len(board), err)
	}
	snap, err := s.LoadSnapshot(gid)
	if err != nil || snap.GetMetadata().GetIndex() != 8 || len(snap.GetData()) != 1<<20 {
		t.Fatalf("snapshot after the writes: index %d, %d bytes (%v)", snap.GetMetadata().GetIndex(), len(snap.GetData()), err)
	}
}
