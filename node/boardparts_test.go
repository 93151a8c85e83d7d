package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
)

// TestStoredBoardParts: a board stored in pages of notes (boardnotes.go).
// Twenty reactions, each followed by a snapshot: after each, the member
// keeps no record in memory and all in all it sealed each record about
// once, where a board written whole at each snapshot seals 1 + 2 + ... +
// 20 = 210 records at least. A restart shows the same messages from the
// pages, having learnt the notes of the messages it listed only; a note
// tampered with makes the restart rebuild the board from the log, with the
// same result; and boards of versions 1 and 2, as older DeMeS versions
// stored them, are restored and stored as version 3 at once.
func TestStoredBoardParts(t *testing.T) {
	t.Parallel()
	c := newBoardCluster(t, 244)
	c.form()
	const rounds = 20
	for k := range rounds {
		m := c.send(0, fmt.Sprintf("round %d", k), 10*time.Second)
		c.shown(k%3, m.ID, "listed", func(m node.Message) bool { return m.ID != "" })
		c.post(k%3, content.Content{Kind: content.Reaction, Ref: ref(t, m), Emoji: "👍"})
		// Past SnapshotEntries (8): a snapshot after the reaction.
		c.sendMany(fmt.Sprintf("filler %d", k), 8)
		var s node.BoardStats
		c.Eventually(t, 30*time.Second, fmt.Sprintf("node2 to store reaction %d in its board", k), func() bool {
			s = c.boardStats(2)
			return s.Records == k+1 && s.InMemory == 0
		})
		if s.Parts != 0 || s.Pages != 1 {
			t.Fatalf("after reaction %d node2's board is in %d parts and %d pages, want one page (the notes of the first 4,096 messages)", k, s.Parts, s.Pages)
		}
	}
	s := c.boardStats(2)
	if s.Sealed > 2*rounds {
		t.Fatalf("node2 sealed %d records for %d reactions, want at most %d: notes are written again too often", s.Sealed, rounds, 2*rounds)
	}
	c.converged(rounds * 9) // a text and 8 fillers a round
	want := c.committed(2)
	// Listing 180 messages learnt each one's note: the board in memory
	// holds at most 4 windows' worth of them (boardnotes.go).
	if s := c.boardStats(2); s.Learnt > 4*testWindow {
		t.Fatalf("node2's board in memory holds the notes of %d messages, want at most %d", s.Learnt, 4*testWindow)
	}

	c.restart(2)
	c.sameAfterRestart(2, want, "from the stored pages")
	if s := c.boardStats(2); !s.Restored || s.Opened > testWindow || s.Records != rounds || s.InMemory != 0 || s.Learnt > 4*testWindow {
		t.Fatalf("node2's restart: %+v; want the stored board restored, at most %d messages opened, %d records, none in memory, at most %d notes learnt", s, testWindow, rounds, 4*testWindow)
	}

	c.Stop(2)
	c.changeNote(2)
	c.start(2)
	c.sameAfterRestart(2, want, "with a tampered note")
	if s := c.boardStats(2); s.Restored || s.Opened <= testWindow {
		t.Fatalf("node2's restart with a tampered note: %+v; want the board rebuilt from every message", s)
	}
	c.restart(2)
	c.sameAfterRestart(2, want, "from the pages stored again")
	if s := c.boardStats(2); !s.Restored || s.Records != rounds {
		t.Fatalf("node2's restart after the rebuild: %+v; want the board stored again restored, %d records", s, rounds)
	}

	for _, version := range []int{1, 2} {
		c.Stop(2)
		if err := node.DowngradeBoard(c.Member(2).Dir, c.Member(2).ID, c.GroupID, version); err != nil {
			t.Fatal(err)
		}
		c.start(2)
		c.sameAfterRestart(2, want, fmt.Sprintf("from a board of version %d", version))
		if s := c.boardStats(2); !s.Restored || s.Opened > testWindow || s.Pages != 1 || s.Parts != 0 || s.InMemory != 0 || s.Records != rounds {
			t.Fatalf("node2's restart from a board of version %d: %+v; want it restored and stored in a page at once", version, s)
		}
	}
}

// changeNote flips a bit of the first note of the first page of node i's
// stored board (node i is down).
func (c *cluster) changeNote(i int) {
	c.t.Helper()
	c.updateBoardBucket(i, func(sb *bolt.Bucket) error {
		// Then: notes / page number / message index.
		pages := sb.Bucket([]byte("notes"))
		if pages == nil {
			return errors.New("no stored pages")
		}
		k, _ := pages.Cursor().First()
		if k == nil {
			return errors.New("no stored page")
		}
		page := pages.Bucket(k)
		idx, _ := page.Cursor().First()
		if idx == nil {
			return errors.New("no stored note")
		}
		return flipBit(page, idx)
	})
}
