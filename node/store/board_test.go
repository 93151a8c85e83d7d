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
		if err := s.SaveBoardParts(gid, bytes.Repeat([]byte{byte(i)}, 512), nil, nil); err != nil {
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

// TestBoardPartsAreWrittenOnce: a part of a stored board is written once
// and kept as it is while the boards after it list it, however many parts
// come after it; a part that no board lists any more is deleted.
func TestBoardPartsAreWrittenOnce(t *testing.T) {
	s, _, gid := openTestStore(t)
	big := bytes.Repeat([]byte{1}, 1<<20)
	if err := s.SaveBoardParts(gid, []byte("board 1"), map[uint64][]byte{1: big}, nil); err != nil {
		t.Fatal(err)
	}
	before := pageAlloc(s)
	for i := uint64(2); i < 22; i++ {
		// Each board lists part 1 and the newest part only.
		if err := s.SaveBoardParts(gid, []byte("board"), map[uint64][]byte{i: bytes.Repeat([]byte{byte(i)}, 512)}, []uint64{1, i - 1}); err != nil {
			t.Fatal(err)
		}
	}
	if alloc := pageAlloc(s) - before; alloc > 1<<20 {
		t.Errorf("20 parts of 512 bytes beside one of 1 MiB allocated %d KiB of pages: the big part is written again", alloc>>10)
	}
	for n, want := range map[uint64][]byte{1: big, 20: bytes.Repeat([]byte{20}, 512), 21: bytes.Repeat([]byte{21}, 512), 19: nil, 2: nil} {
		got, err := s.LoadBoardPart(gid, n)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("part %d: %d bytes (%v), want %d", n, len(got), err, len(want))
		}
	}
	if board, err := s.LoadBoard(gid); err != nil || string(board) != "board" {
		t.Fatalf("the board: %q (%v)", board, err)
	}
}
