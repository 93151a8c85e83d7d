package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// The stored board (boardstore.go): a restart from a snapshot restores the
// reactions, edits and deletes from it instead of opening every message
// before the snapshot again.

func newBoardCluster(t *testing.T, seed int64) *cluster {
	return newClusterWith(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.MessageWindow = testWindow
				cfg.SnapshotEntries, cfg.SnapshotKeep = 8, 2
			}
		}
	})
}

func (c *cluster) boardStats(i int) node.BoardStats {
	c.t.Helper()
	s, err := node.GroupBoardStats(c.Node(i), c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// sameAfterRestart waits until node i, started again, lists as many
// messages as want, and checks that it lists exactly want.
func (c *cluster) sameAfterRestart(i int, want []node.Message, how string) {
	c.t.Helper()
	c.Eventually(c.t, 30*time.Second, fmt.Sprintf("node%d to list its messages again (%s)", i, how), func() bool {
		return len(c.committed(i)) >= len(want)
	})
	if got := c.committed(i); !reflect.DeepEqual(got, want) {
		for k := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[k], want[k]) {
				c.t.Fatalf("node%d after a restart (%s) lists as message %d %+v, want %+v", i, how, k, got[k], want[k])
			}
		}
		c.t.Fatalf("node%d after a restart (%s) lists %d messages, want %d", i, how, len(got), len(want))
	}
}

// changeBoard changes the bolt value of node i's stored board (node i is
// down): flips a bit of it, or deletes it.
func (c *cluster) changeBoard(i int, del bool) {
	c.t.Helper()
	c.updateBoardBucket(i, func(sb *bolt.Bucket) error {
		if sb.Get([]byte("board")) == nil {
			return errors.New("no stored board")
		}
		if del {
			return sb.Delete([]byte("board"))
		}
		return flipBit(sb, []byte("board"))
	})
}

// updateBoardBucket runs fn on the bucket of node i's stored board, in
// its store.db (node i is down).
func (c *cluster) updateBoardBucket(i int, fn func(sb *bolt.Bucket) error) {
	c.t.Helper()
	gid, err := crypto.ParseGroupID(c.GroupID)
	if err != nil {
		c.t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(c.Member(i).Dir, "store.db"), 0o600, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		// The layout of package store: groups / group id / board.
		sb := tx.Bucket([]byte("groups")).Bucket(gid[:]).Bucket([]byte("board"))
		if sb == nil {
			return errors.New("no stored board")
		}
		return fn(sb)
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// flipBit flips a bit in the middle of the value of key in b.
func flipBit(b *bolt.Bucket, key []byte) error {
	v := append([]byte(nil), b.Get(key)...)
	if len(v) == 0 {
		return fmt.Errorf("no value %q", key)
	}
	v[len(v)/2] ^= 1
	return b.Put(key, v)
}

// TestStoredBoardRestart: reactions, edits, deletes and a refused edit on
// messages far older than the window, made before the snapshot, show after
// a restart exactly as before it, while the restart opened no more
// messages than the window holds; the board is on disk, sealed: neither the
// edited text nor the reaction is in the node's files, though a thief with
// the identity reads both in it. A stored board that was tampered with or
// is missing makes the restart read the whole log, with the same result.
func TestStoredBoardRestart(t *testing.T) {
	t.Parallel()
	c := newBoardCluster(t, 241)
	c.form()
	const edited, emoji = "an old message, edited: plum-quartz-7", "🦄"
	old := c.send(0, "an old message", 10*time.Second)
	gone := c.send(1, "soon deleted", 10*time.Second)
	c.post(0, content.Content{Kind: content.Edit, Ref: ref(t, old), Text: edited})
	c.post(1, content.Content{Kind: content.Reaction, Ref: ref(t, old), Emoji: emoji})
	c.post(2, content.Content{Kind: content.Reaction, Ref: ref(t, old), Emoji: emoji})
	c.post(1, content.Content{Kind: content.Delete, Ref: ref(t, gone)})
	// Refused by every member, before and after a restart.
	if _, err := node.PostUnchecked(ctxT(t, 20*time.Second), c.Node(1), c.GroupID,
		content.Content{Kind: content.Edit, Ref: ref(t, old), Text: "mallory was here"}); err != nil {
		t.Fatal(err)
	}
	// Far more messages than the window, and snapshots after the changes.
	c.sendMany("later", 20)
	c.converged(22)
	before := map[int][]node.Message{}
	for i := range 3 {
		c.shown(i, old.ID, "edited, with two reactions", func(m node.Message) bool {
			return m.Text == edited && m.Edited && len(m.Reactions) == 1 && m.Reactions[0].Count == 2
		})
		c.shown(i, gone.ID, "deleted", func(m node.Message) bool { return m.Deleted && m.Text == "" })
		before[i] = c.committed(i)
	}

	// A restart from the snapshot and its stored board.
	c.restart(2)
	c.sameAfterRestart(2, before[2], "from the stored board")
	if s := c.logStats(2); s.RestoredFrom == 0 {
		t.Fatal("node2 did not restart from a snapshot")
	}
	if s := c.boardStats(2); !s.Restored || s.Opened > testWindow {
		t.Fatalf("node2's restart: %+v; want the stored board restored and at most %d messages (the window) opened", s, testWindow)
	}

	// On disk, sealed.
	c.Stop(2)
	for _, f := range []string{"store.db", "keys.db"} {
		b, err := os.ReadFile(filepath.Join(c.Member(2).Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{edited, "plum-quartz", emoji} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in plaintext", f, s)
			}
		}
	}
	plain, err := node.StolenBoard(c.Member(2).Dir, c.Member(2).ID, c.GroupID)
	if err != nil {
		t.Fatalf("the stored board does not open with its key: %v", err)
	}
	if !bytes.Contains(plain, []byte(edited)) || !bytes.Contains(plain, []byte(emoji)) {
		t.Fatal("the stored board, opened, holds neither the edit nor the reaction: the search above proves nothing")
	}

	// Tampered with: the whole log is read again, and the board stored
	// again, which the next restart uses.
	c.changeBoard(2, false)
	c.start(2)
	c.sameAfterRestart(2, before[2], "with a tampered stored board")
	if s := c.boardStats(2); s.Restored || s.Opened <= testWindow {
		t.Fatalf("node2's restart with a tampered board: %+v; want the board rebuilt from every message", s)
	}
	c.restart(2)
	c.sameAfterRestart(2, before[2], "from the board stored again")
	if s := c.boardStats(2); !s.Restored {
		t.Fatalf("node2's restart after the rebuild: %+v; want the board stored again restored", s)
	}

	// Missing (as in a store from before boards were stored).
	c.Stop(1)
	c.changeBoard(1, true)
	c.start(1)
	c.sameAfterRestart(1, before[1], "without a stored board")
	if s := c.boardStats(1); s.Restored || s.Opened <= testWindow {
		t.Fatalf("node1's restart without a stored board: %+v; want the board rebuilt from every message", s)
	}
	sent := c.sendMany("after", 3)
	if got := c.converged(22 + len(sent)); len(got) != 22+len(sent) {
		t.Fatalf("%d messages after the restarts, want %d", len(got), 22+len(sent))
	}
}

// TestStoredBoardForgetsDeletedKeys: forward secrecy (issue 19) holds for
// the stored board. A thief with a member's home and identity reads an
// edit and a reaction in its stored board while the member keeps the keys
// of those messages; once its key policy deleted them, the board the same
// thief finds (at the same snapshot, stored again) holds neither, and the
// member keeps no record of them in memory.
func TestStoredBoardForgetsDeletedKeys(t *testing.T) {
	t.Parallel()
	// Weeks pass for node1 (see TestStolenDeviceForwardSecrecy).
	later := time.Now().Add(2*7*24*time.Hour + 7*24*time.Hour + 30*24*time.Hour + 7*24*time.Hour + time.Hour)
	boardForgets(t, newBoardCluster(t, 242), later)
}

// TestStoredBoardForgetsBelowFloor is TestStoredBoardForgetsDeletedKeys
// with the sender keys still in use: node1 keeps message keys for an hour,
// and two hours later its floors (keyfloor.go), not a deleted key, take the
// edit and the reaction out of its stored board.
func TestStoredBoardForgetsBelowFloor(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 243, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for i, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.MessageWindow = testWindow
				cfg.SnapshotEntries, cfg.SnapshotKeep = 8, 2
				cfg.RotateMessages = 1 << 20 // one sender key each, for the whole test
				if i == 1 {
					cfg.KeyRetention = time.Hour
				}
			}
		}
	})
	now := time.Now()
	boardForgets(t, c, now, now.Add(2*time.Hour))
}

// boardForgets is the scenario of the two tests above: node0 edits an old
// message and node2 reacts to it; a thief of node1's home reads both in
// its stored board, and, once node1's key expiry has run at each of at,
// reads neither, and node1 shows the edit no more.
func boardForgets(t *testing.T, c *cluster, at ...time.Time) {
	c.form()
	c.waitPrekeys(3)
	const edited, emoji = "edited under an old key: fig-lantern-3", "🦑"
	old := c.send(0, "an old message", 10*time.Second)
	// node2 reacts to it: it must have it in the group's order first.
	c.converged(1)
	c.post(0, content.Content{Kind: content.Edit, Ref: ref(t, old), Text: edited})
	c.post(2, content.Content{Kind: content.Reaction, Ref: ref(t, old), Emoji: emoji})
	c.sendMany("later", 12)
	c.converged(13)
	c.shown(1, old.ID, "edited", func(m node.Message) bool { return m.Text == edited })

	// The attack while node1 keeps the keys: it reads both.
	early := c.steal(1)
	plain, err := node.StolenBoard(early.dir, early.id, c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plain, []byte(edited)) || !bytes.Contains(plain, []byte(emoji)) {
		t.Fatal("a thief does not read the edit and the reaction in the stored board before any key was deleted: the attack is broken")
	}

	c.Eventually(t, 30*time.Second, "node1 applies the messages again after the theft's restart", func() bool {
		ms, err := c.Committed(1)
		return err == nil && len(ms) == 13
	})
	for _, now := range at {
		node.ExpireKeysAt(c.Node(1), now)
	}
	c.Eventually(t, 30*time.Second, "node1 to drop the records of messages whose keys it deleted", func() bool {
		return c.boardStats(1).Records == 0
	})
	stolen := c.steal(1)
	plain, err = node.StolenBoard(stolen.dir, stolen.id, c.GroupID)
	if err != nil {
		t.Fatalf("the stored board does not open after the key deletion: %v", err)
	}
	for _, s := range []string{edited, emoji} {
		if bytes.Contains(plain, []byte(s)) {
			t.Errorf("a thief reads %q in the stored board after node1 deleted its keys", s)
		}
	}
	// And the node no longer shows the edit.
	for _, m := range c.committed(1) {
		if strings.Contains(m.Text, "fig-lantern") {
			t.Fatalf("node1 lists %q after deleting its keys", m.Text)
		}
	}
}
