package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
)

// restartGroup is g as a restart finds it: a new group on the same store
// and key book, its board restored from the board stored at index
// (loadBoard, replayBoard), as restoreHistory does.
func restartGroup(t *testing.T, g *group, index uint64) *group {
	t.Helper()
	g2 := &group{n: g.n, id: g.id}
	sb, err := g2.loadBoard(index)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.replayBoard(sb); err != nil {
		t.Fatal(err)
	}
	g2.blog.covered, g2.blog.restored = index, true
	return g2
}

// TestCompactedNoteUnreadableAfterRestart: a value of a page of notes that
// a later snapshot compacted (a reaction replaced, or taken back, or
// overridden by a delete) or deleted keeps its page's key, and its old
// copy lingers in store.db until bbolt reuses its pages. In a run, the
// page's key summary still names the keys of the records compaction
// dropped, so the page is rewritten under a new key when the policy
// deletes one. A restart summarises the page from its current values only:
// the dropped record's key is forgotten, the page is not rewritten when
// the policy deletes that key (or passes its floor), and the old copy of
// the value opens with the page key that the current board (whose key is
// in keys.db) lists. The target (index 1) is in page 0, the changes (5000
// on) in page 1, so that their own records (Self) do not keep the key in
// page 0's summary.
func TestCompactedNoteUnreadableAfterRestart(t *testing.T) {
	target := bytes.Repeat([]byte{0xaa}, 16)
	k1, k2 := crypto.KeyRef{Epoch: 1}, crypto.KeyRef{Epoch: 2}
	change := func(index uint64, k crypto.KeyRef, counter uint64, author string, kind content.Kind, emoji string) boardRecord {
		r := partRecord(index, k, counter, false)
		r.Ref, r.TargetIndex, r.Target, r.Found, r.Author, r.Kind, r.Emoji = target, 1, "alice", true, author, uint8(kind), emoji
		return r
	}
	// other keeps page 0 alive when the target's value is deleted: a
	// reaction to message 2 under k2.
	other := change(5100, k2, 50, "carol", content.Reaction, "🎉")
	other.Ref, other.TargetIndex = bytes.Repeat([]byte{0xbb}, 16), 2
	for _, tc := range []struct {
		name   string
		first  boardRecord   // under k1 (counter 1): the record the thief wants
		then   []boardRecord // what compacts it away
		forget func(g *group)
	}{
		{"replaced by a reaction under a newer key", change(5000, k1, 1, "bob", content.Reaction, "👍"),
			[]boardRecord{change(5001, k2, 1, "bob", content.Reaction, "❤️")},
			func(g *group) { delete(g.n.keys.kept, senderName("sender", g.id, k1)) }},
		{"replaced under the same key, then its floor passed", change(5000, k1, 1, "bob", content.Reaction, "👍"),
			[]boardRecord{change(5001, k1, 10, "bob", content.Reaction, "❤️")},
			func(g *group) { g.n.keys.floors[keyName{g.id, k1}] = 5 }},
		{"overridden by the author's delete", change(5000, k1, 1, "bob", content.Reaction, "👍"),
			[]boardRecord{change(5001, k2, 1, "alice", content.Delete, "")},
			func(g *group) { delete(g.n.keys.kept, senderName("sender", g.id, k1)) }},
		{"taken back under a newer key (the value deleted)", change(5000, k1, 1, "bob", content.Reaction, "👍"),
			[]boardRecord{change(5001, k2, 1, "bob", content.Reaction, ""), other},
			func(g *group) { delete(g.n.keys.kept, senderName("sender", g.id, k1)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, st := partsGroup(t)
			for _, k := range []crypto.KeyRef{k1, k2} {
				g.n.keys.kept[senderName("sender", g.id, k)] = true
			}
			g.blog.records = []boardRecord{tc.first}
			if err := g.writeBoard(5000); err != nil {
				t.Fatal(err)
			}
			// The value a thief later finds in store.db's free pages.
			old, err := st.LoadBoardNotes(g.id[:], 0, []uint64{1})
			if err != nil || old[1] == nil {
				t.Fatalf("the target's value: %v", err)
			}
			last := tc.then[len(tc.then)-1].Index
			g.blog.records = tc.then
			if err := g.writeBoard(last); err != nil {
				t.Fatal(err)
			}
			g = restartGroup(t, g, last)
			tc.forget(g)
			g.snapIndex = last
			g.forgetDeleted()

			// The thief: the current board, opened with the key in the
			// key store, and the old value under its page 0's key.
			sb, plain, err := openBoard(st, g.n.keys.store, g.id, last)
			clear(plain)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sb.Pages {
				if p := &sb.Pages[i]; p.Num == 0 {
					if sn, _, err := openNote(g.id, p, 1, old[1]); err == nil {
						for _, r := range sn.records() {
							if !g.keeps(r) {
								t.Fatalf("the old value of message 1 opens with page 0's current key and holds %q by %s, whose key the policy deleted", r.Emoji, r.Author)
							}
						}
					}
				}
			}
		})
	}
}

// TestSnapshotBeforePruneForgetsNotes: the key book is the node's, and
// another group's upkeep (keys.expire) may delete this group's sender key;
// this group may then take a snapshot (writeBoard, which leaves the
// records of the deleted key out of its board and rewrites its pages)
// before its own upkeep runs pruneKeys. forgetDeleted then finds nothing
// stale: the board in memory must not keep the notes of the deleted key.
func TestSnapshotBeforePruneForgetsNotes(t *testing.T) {
	for _, stored := range []bool{false, true} {
		t.Run(map[bool]string{false: "not stored yet", true: "stored in a page"}[stored], func(t *testing.T) {
			g, _ := partsGroup(t)
			k1 := crypto.KeyRef{Epoch: 1}
			g.n.keys.kept[senderName("sender", g.id, k1)] = true
			target := [16]byte{0xaa}
			edit := partRecord(2, k1, 1, false)
			edit.Ref, edit.TargetIndex, edit.Target, edit.Found, edit.Author = target[:], 1, "alice", true, "alice"
			edit.Kind, edit.Emoji, edit.Text = uint8(content.Edit), "", "the secret edit"
			g.blog.records = []boardRecord{edit}
			g.blog.reindex()
			if stored {
				if err := g.writeBoard(2); err != nil {
					t.Fatal(err)
				}
			}
			g.learn(target, 1)
			if n := g.board.Note(target); n == nil || n.Text != "the secret edit" {
				t.Fatalf("the note learnt: %+v", n)
			}
			// Another group's upkeep deletes k1; this group's snapshot
			// comes first, then its pruneKeys.
			delete(g.n.keys.kept, senderName("sender", g.id, k1))
			g.blog.records = append(g.blog.records, partRecord(3, crypto.KeyRef{Epoch: 2}, 1, false))
			g.n.keys.kept[senderName("sender", g.id, crypto.KeyRef{Epoch: 2})] = true
			if err := g.writeBoard(3); err != nil {
				t.Fatal(err)
			}
			g.snapIndex = 3
			g.forgetDeleted()
			if n := g.board.Note(target); n != nil && n.Text != "" {
				t.Fatalf("after forgetDeleted the board in memory still shows %q, an edit under the deleted key", n.Text)
			}
		})
	}
}

// failingPuts is a key store whose Puts fail (a full disk: the new record
// cannot be appended), whose Deletes (in place) work.
type failingPuts struct{ mapSecrets }

func (f failingPuts) Put(string, []byte, time.Time) error {
	return errors.New("no space left on device")
}

// TestFailedBoardKeyLeavesNoOldKey: forgetDeleted stores the board without
// a deleted key's records, and its pages under new keys, but the key
// store cannot keep the new board's key. The old board's key must not stay
// in keys.db: the old board (its blob lingering in store.db's free pages)
// lists the old page keys, which open the old values, deleted records
// and all.
func TestFailedBoardKeyLeavesNoOldKey(t *testing.T) {
	g, st := partsGroup(t)
	k1, k2 := crypto.KeyRef{Epoch: 1}, crypto.KeyRef{Epoch: 2}
	for _, k := range []crypto.KeyRef{k1, k2} {
		g.n.keys.kept[senderName("sender", g.id, k)] = true
	}
	g.blog.records = []boardRecord{partRecord(1, k1, 1, false), partRecord(2, k2, 1, false)}
	if err := g.writeBoard(2); err != nil {
		t.Fatal(err)
	}
	// What a thief later finds in store.db's free pages.
	oldBoard, err := st.LoadBoard(g.id[:])
	if err != nil {
		t.Fatal(err)
	}
	oldValue, err := st.LoadBoardNotes(g.id[:], 0, []uint64{1})
	if err != nil || oldValue[1] == nil {
		t.Fatal(err)
	}
	secrets := g.n.keys.store.(mapSecrets)
	g.n.keys.store = failingPuts{secrets}
	delete(g.n.keys.kept, senderName("sender", g.id, k1))
	g.snapIndex = 2
	g.forgetDeleted()

	// The thief, with keys.db.
	key, ok := secrets.Get(boardKeyName(g.id))
	if !ok {
		return // no board key at all: nothing opens
	}
	plain, err := openSealed(key, oldBoard, boardAAD(g.id, 2))
	if err != nil {
		return
	}
	var sb storedBoard
	if err := boardDec.Unmarshal(plain, &sb); err != nil {
		t.Fatal(err)
	}
	for i := range sb.Pages {
		if sn, _, err := openNote(g.id, &sb.Pages[i], 1, oldValue[1]); err == nil {
			t.Fatalf("the key store still holds the old board's key: the old board opens, and its page key opens the record at %d, under the deleted key", sn.Index)
		}
	}
}
