package node

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
)

// TestCompactChangesKeepsTheNote: random runs of reactions (taken back at
// times), edits and deletes of one message by its author and four other
// members, compacted as a page of notes stores them, make the same note as
// all of them, with at most one record per reactor and one edit; and a
// change of a change keeps nothing.
func TestCompactChangesKeepsTheNote(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	target := [16]byte{1}
	fold := func(rs []boardRecord, isChange bool) *content.Note {
		var b content.Board
		if isChange {
			b.MarkChange(target)
		}
		for i := range rs {
			r := &rs[i]
			_ = b.Apply(r.ID, r.Author, r.content(), func([16]byte) (string, bool) { return r.Target, r.Found })
		}
		n := b.Note(target)
		if n != nil && len(n.Reactions) == 0 && !n.Edited && !n.Deleted {
			return nil // every reaction taken back: shown as none
		}
		return n
	}
	members := []string{"author", "m1", "m2", "m3", "m4"}
	emojis := []string{"", "👍", "🎉"}
	for run := range 500 {
		var rs []boardRecord
		for k := range 1 + rng.IntN(40) {
			r := boardRecord{Index: uint64(10 + k), ID: [16]byte{2, byte(k)}, Author: members[rng.IntN(len(members))],
				Ref: target[:], Target: "author", Found: true}
			switch x := rng.IntN(20); {
			case x == 0:
				r.Kind = uint8(content.Delete)
			case x < 5:
				r.Kind, r.Text = uint8(content.Edit), fmt.Sprintf("edit %d", k)
			default:
				r.Kind, r.Emoji = uint8(content.Reaction), emojis[rng.IntN(len(emojis))]
			}
			rs = append(rs, r)
		}
		all := fold(rs, false)
		kept := compactChanges(append([]boardRecord(nil), rs...), false)
		if got := fold(kept, false); !reflect.DeepEqual(got, all) {
			t.Fatalf("run %d: the compacted changes make %+v, all of them %+v", run, got, all)
		}
		if len(kept) > len(members)+1 {
			t.Fatalf("run %d: %d records kept of %d, want at most one per reactor and one edit", run, len(kept), len(rs))
		}
		if kept := compactChanges(rs, true); len(kept) != 0 {
			t.Fatalf("run %d: %d changes of a change kept, want none (all refused)", run, len(kept))
		}
	}
}

// TestNotesTakenBackLeaveNoValue: a reaction stored in a page of notes,
// then taken back, leaves no value for its message (only the two changes'
// own records), and the page goes once the key policy drops those.
func TestNotesTakenBackLeaveNoValue(t *testing.T) {
	g, _ := partsGroup(t)
	k := crypto.KeyRef{Epoch: 1}
	g.n.keys.kept[senderName("sender", g.id, k)] = true
	react := func(index uint64, emoji string) boardRecord {
		r := partRecord(index, k, index, false)
		r.Ref, r.TargetIndex, r.Target, r.Found, r.Emoji = bytes.Repeat([]byte{0xaa}, 16), 1, "author", true, emoji
		return r
	}
	g.blog.records = []boardRecord{react(2, "👍")}
	if err := g.writeBoard(2); err != nil {
		t.Fatal(err)
	}
	if p := g.blog.pages[0]; p.N != 2 || p.R != 1 {
		t.Fatalf("after the reaction: page 0 holds %d notes of %d changes, want 2 (the message's, the reaction's own) of 1", p.N, p.R)
	}
	g.blog.records = []boardRecord{react(3, "")}
	if err := g.writeBoard(3); err != nil {
		t.Fatal(err)
	}
	if p := g.blog.pages[0]; p.N != 2 || p.R != 0 {
		t.Fatalf("after the reaction taken back: page 0 holds %d notes of %d changes, want the two changes' own, no change of the message", p.N, p.R)
	}
	stale, err := g.restorePages(slicesOf(g.blog.pages))
	if err != nil || stale != 0 {
		t.Fatalf("the pages read back: %d stale, %v", stale, err)
	}
	delete(g.n.keys.kept, senderName("sender", g.id, k))
	g.snapIndex = 3
	g.forgetDeleted()
	if len(g.blog.pages) != 0 || g.boardRecords() != 0 {
		t.Fatalf("after the key's deletion: %d pages, %d records, want none", len(g.blog.pages), g.boardRecords())
	}
}

// slicesOf returns the pages of m.
func slicesOf(m map[uint64]notePage) []notePage {
	var out []notePage
	for _, p := range m {
		out = append(out, p)
	}
	return out
}
