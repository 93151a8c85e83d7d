package node_test

import (
	"errors"
	"fmt"
	"math/bits"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
)

// TestStoredBoardParts: a board stored in parts (boardparts.go). Twenty
// reactions, each followed by a snapshot: after each, the member keeps no
// record in memory, its board is in at most log2 parts, and all in all it
// sealed each record about log2 times, where a board written whole at each
// snapshot seals 1 + 2 + ... + 20 = 210 records at least. A restart shows
// the same messages from the parts; a part tampered with makes the restart
// rebuild the board from the log, with the same result; and a board of
// version 1, as an older DeMeS stored it, is restored and stored in parts
// at once.
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
		if limit := bits.Len(uint(k+1)) + 1; s.Parts > limit {
			t.Fatalf("after reaction %d node2's board is in %d parts, want at most %d", k, s.Parts, limit)
		}
	}
	s := c.boardStats(2)
	if limit := rounds * (bits.Len(rounds) + 1); s.Sealed > limit {
		t.Fatalf("node2 sealed %d records into parts for %d reactions, want at most %d: parts are written again too often", s.Sealed, rounds, limit)
	}
	c.converged(rounds * 9) // a text and 8 fillers a round
	want := c.committed(2)

	c.restart(2)
	c.sameAfterRestart(2, want, "from the stored parts")
	if s := c.boardStats(2); !s.Restored || s.Opened > testWindow || s.Records != rounds || s.InMemory != 0 {
		t.Fatalf("node2's restart: %+v; want the stored board restored, at most %d messages opened, %d records, none in memory", s, testWindow, rounds)
	}

	c.Stop(2)
	c.changePart(2)
	c.start(2)
	c.sameAfterRestart(2, want, "with a tampered part")
	if s := c.boardStats(2); s.Restored || s.Opened <= testWindow {
		t.Fatalf("node2's restart with a tampered part: %+v; want the board rebuilt from every message", s)
	}
	c.restart(2)
	c.sameAfterRestart(2, want, "from the parts stored again")
	if s := c.boardStats(2); !s.Restored || s.Records != rounds {
		t.Fatalf("node2's restart after the rebuild: %+v; want the board stored again restored, %d records", s, rounds)
	}

	c.Stop(2)
	if err := node.DowngradeBoard(c.Member(2).Dir, c.Member(2).ID, c.GroupID); err != nil {
		t.Fatal(err)
	}
	c.start(2)
	c.sameAfterRestart(2, want, "from a board of version 1")
	if s := c.boardStats(2); !s.Restored || s.Opened > testWindow || s.Parts == 0 || s.InMemory != 0 || s.Records != rounds {
		t.Fatalf("node2's restart from a board of version 1: %+v; want it restored and stored in parts at once", s)
	}
}

// changePart flips a bit of the oldest part of node i's stored board (node
// i is down).
func (c *cluster) changePart(i int) {
	c.t.Helper()
	c.updateBoardBucket(i, func(sb *bolt.Bucket) error {
		// Then: parts / number / p.
		parts := sb.Bucket([]byte("parts"))
		if parts == nil {
			return errors.New("no stored parts")
		}
		k, _ := parts.Cursor().First()
		if k == nil {
			return errors.New("no stored part")
		}
		return flipBit(parts.Bucket(k), []byte("p"))
	})
}
