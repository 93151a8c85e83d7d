package store

import (
	"bytes"
	"fmt"
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

// TestBoardPages: a page of notes written without Replace keeps its other
// values and takes the new ones; one written with Replace holds exactly
// the values written; one that the board neither writes nor keeps is
// deleted, as a page left by a crash is.
func TestBoardPages(t *testing.T) {
	s, _, gid := openTestStore(t)
	val := func(s string) []byte { return []byte(s) }
	w := BoardWrite{Board: val("b1"), Pages: map[uint64]PageWrite{
		1: {Replace: true, Values: map[uint64][]byte{4096: val("a"), 4097: val("b")}},
		2: {Replace: true, Values: map[uint64][]byte{8192: val("c")}},
		3: {Replace: true, Values: map[uint64][]byte{12288: val("d")}},
	}}
	if err := s.SaveBoard(gid, w); err != nil {
		t.Fatal(err)
	}
	w = BoardWrite{Board: val("b2"), Pages: map[uint64]PageWrite{
		1: {Values: map[uint64][]byte{4097: val("b2"), 4098: val("e")}},
		2: {Replace: true, Values: map[uint64][]byte{8193: val("f")}},
	}} // page 3 is neither written nor kept
	if err := s.SaveBoard(gid, w); err != nil {
		t.Fatal(err)
	}
	read := func(n uint64) string {
		var out []string
		if err := s.BoardPage(gid, n, func(idx uint64, v []byte) error {
			out = append(out, fmt.Sprintf("%d=%s", idx, v))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, " ")
	}
	for n, want := range map[uint64]string{1: "4096=a 4097=b2 4098=e", 2: "8193=f", 3: ""} {
		if got := read(n); got != want {
			t.Errorf("page %d holds %q, want %q", n, got, want)
		}
	}
	got, err := s.LoadBoardNotes(gid, 1, []uint64{4096, 4099})
	if err != nil || len(got) != 1 || string(got[4096]) != "a" {
		t.Fatalf("notes 4096 and 4099 of page 1: %v (%v), want 4096 only", got, err)
	}
	// A board kept with its page: nothing changes.
	if err := s.SaveBoard(gid, BoardWrite{Board: val("b3"), KeepPages: []uint64{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if got := read(1) + " / " + read(2); got != "4096=a 4097=b2 4098=e / 8193=f" {
		t.Errorf("pages 1 and 2 kept hold %q", got)
	}
}
