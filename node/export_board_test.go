package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/keystore"
	"github.com/demes/demes/node/store"
)

// BoardStats is what a group's run did with its stored board
// (boardstore.go).
type BoardStats struct {
	// Restored tells whether the run started from a stored board.
	Restored bool
	// Opened counts the messages before the snapshot opened to restore
	// the history at the start.
	Opened int
	// Records counts the change and file messages the board is built
	// from, InMemory those of them not stored yet, Parts the stored
	// parts that hold the other file records (boardparts.go) and Pages
	// the stored pages of notes that hold the other changes
	// (boardnotes.go).
	Records, InMemory, Parts, Pages int
	// Learnt counts the messages whose notes the board in memory holds.
	Learnt int
	// Sealed counts the records this run sealed into parts.
	Sealed int
}

// GroupBoardStats returns the BoardStats of a group on n.
func GroupBoardStats(n *Node, groupID string) (BoardStats, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return BoardStats{}, err
	}
	var s BoardStats
	err = g.do(context.Background(), func() {
		s = BoardStats{Restored: g.blog.restored, Opened: g.blog.opened, Records: g.boardRecords(), InMemory: len(g.blog.records),
			Parts: len(g.blog.parts), Pages: len(g.blog.pages), Learnt: len(g.learnt), Sealed: g.blog.sealed}
	})
	return s, err
}

// StolenBoard is a thief's reading of the stored board of a group in the
// home dir (a copy of a stopped node's) with its identity: the board's
// plaintext, opened with the key the key store keeps for it, at the index of
// the stored snapshot, then the plaintext of each part and of each note of
// each page it lists.
func StolenBoard(dir string, id *identity.Identity, groupID string) ([]byte, error) {
	var plain []byte
	err := withStoredBoard(dir, id, groupID, func(st *store.Store, _ *keystore.Store, gid crypto.GroupID, sb *storedBoard, board []byte) error {
		plain = append(plain, board...)
		_, err := storedBoardRecords(st, gid, sb, func(b []byte) { plain = append(plain, b...) })
		return err
	})
	return plain, err
}

// storedBoardRecords returns every record of the stored board sb of group
// gid in st, in log order: those of its parts, and those of its pages of
// notes (each change once, as its own note's Self), and hands each
// plaintext it opened to plain.
func storedBoardRecords(st *store.Store, gid crypto.GroupID, sb *storedBoard, plain func([]byte)) ([]boardRecord, error) {
	out := slices.Clone(sb.Records)
	for i := range sb.Parts {
		sp, part, err := openPart(st, gid, &sb.Parts[i])
		if err != nil {
			return nil, err
		}
		plain(part)
		out = append(out, sp.Records...)
	}
	for i := range sb.Pages {
		err := readPage(st, gid, &sb.Pages[i], func(sn *storedNote, b []byte) {
			plain(b)
			if sn.Self != nil {
				out = append(out, *sn.Self)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b boardRecord) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

// withStoredBoard opens the store and the key store in the home dir of a
// stopped node with its identity, and runs fn with them and the stored
// board of the group, opened at the index of the stored snapshot, with its
// plaintext.
func withStoredBoard(dir string, id *identity.Identity, groupID string, fn func(*store.Store, *keystore.Store, crypto.GroupID, *storedBoard, []byte) error) error {
	gid, err := crypto.ParseGroupID(groupID)
	if err != nil {
		return err
	}
	ks, err := keystore.Open(filepath.Join(dir, keyStoreFile), id)
	if err != nil {
		return err
	}
	defer ks.Close()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	snap, err := st.LoadSnapshot(gid[:])
	if err != nil {
		return err
	}
	sb, plain, err := openBoard(st, ks, gid, snap.GetMetadata().GetIndex())
	if err != nil {
		return err
	}
	return fn(st, ks, gid, sb, plain)
}

// DropStoredBoard deletes the key of the stored board of a group in the
// home dir of a stopped node, as a crash between storing a board and its
// key leaves it: the next start rebuilds the history from the whole log.
func DropStoredBoard(dir string, id *identity.Identity, groupID string) error {
	gid, err := crypto.ParseGroupID(groupID)
	if err != nil {
		return err
	}
	ks, err := keystore.Open(filepath.Join(dir, keyStoreFile), id)
	if err != nil {
		return err
	}
	return errors.Join(ks.Delete(boardKeyName(gid)), ks.Close())
}

// DowngradeBoard writes the stored board of a group in the home dir of a
// stopped node as an older DeMeS wrote it: version 1, every record in the
// board itself, or version 2, every record in one part, and no pages of
// notes: what a node finds after an upgrade.
func DowngradeBoard(dir string, id *identity.Identity, groupID string, version int) error {
	return withStoredBoard(dir, id, groupID, func(st *store.Store, ks *keystore.Store, gid crypto.GroupID, sb *storedBoard, _ []byte) error {
		if sb.Version != 3 || len(sb.Parts)+len(sb.Pages) == 0 {
			return fmt.Errorf("a stored board of version %d with %d parts and %d pages, want version 3 with either", sb.Version, len(sb.Parts), len(sb.Pages))
		}
		rs, err := storedBoardRecords(st, gid, sb, func([]byte) {})
		if err != nil {
			return err
		}
		for i := range rs {
			rs[i].TargetIndex = 0 // not in versions 1 and 2
		}
		sb.Version, sb.Records, sb.Parts, sb.Pages = 1, rs, nil, nil
		parts := map[uint64][]byte{}
		if version == 2 {
			part, blob, err := (&group{id: gid, n: &Node{}}).sealPart(sb.Index, rs)
			if err != nil {
				return err
			}
			sb.Version, sb.Records, sb.Parts, parts[sb.Index] = 2, nil, []boardPart{part}, blob
		}
		plain, err := boardEnc.Marshal(sb)
		if err != nil {
			return err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		blob, err := seal(key, plain, boardAAD(gid, sb.Index))
		if err != nil {
			return err
		}
		if err := st.SaveBoardParts(gid[:], blob, parts, nil); err != nil {
			return err
		}
		return ks.Put(boardKeyName(gid), key, time.Time{})
	})
}

// BoardCacheSize returns how many messages the board in memory of a group
// on n marks as changes, and how many notes it holds, with the bound of
// the messages it learns (noteCacheFactor windows, boardnotes.go).
func BoardCacheSize(n *Node, groupID string) (changes, notes, bound int, err error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return 0, 0, 0, err
	}
	err = g.do(context.Background(), func() {
		changes, notes = g.board.Size()
		bound = noteCacheFactor * max(g.hist.window, 1)
	})
	return changes, notes, bound, err
}
