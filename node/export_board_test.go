package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
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
	// from, InMemory those of them not stored yet, and Parts the stored
	// parts that hold the others (boardparts.go).
	Records, InMemory, Parts int
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
		s = BoardStats{Restored: g.blog.restored, Opened: g.blog.opened, Records: g.boardRecords(), InMemory: len(g.blog.records), Parts: len(g.blog.parts), Sealed: g.blog.sealed}
	})
	return s, err
}

// StolenBoard is a thief's reading of the stored board of a group in the
// home dir (a copy of a stopped node's) with its identity: the board's
// plaintext, opened with the key the key store keeps for it, at the index of
// the stored snapshot, then the plaintext of each part it lists.
func StolenBoard(dir string, id *identity.Identity, groupID string) ([]byte, error) {
	var plain []byte
	err := withStoredBoard(dir, id, groupID, func(st *store.Store, _ *keystore.Store, gid crypto.GroupID, sb *storedBoard, board []byte) error {
		plain = append(plain, board...)
		for i := range sb.Parts {
			_, part, err := openPart(st, gid, &sb.Parts[i])
			if err != nil {
				return err
			}
			plain = append(plain, part...)
		}
		return nil
	})
	return plain, err
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
// stopped node as an older DeMeS wrote it, version 1, every record in the
// board itself and no parts: what a node finds after an upgrade.
func DowngradeBoard(dir string, id *identity.Identity, groupID string) error {
	return withStoredBoard(dir, id, groupID, func(st *store.Store, ks *keystore.Store, gid crypto.GroupID, sb *storedBoard, _ []byte) error {
		if sb.Version != 2 || len(sb.Parts) == 0 {
			return fmt.Errorf("a stored board of version %d with %d parts, want version 2 with parts", sb.Version, len(sb.Parts))
		}
		for i := range sb.Parts {
			sp, _, err := openPart(st, gid, &sb.Parts[i])
			if err != nil {
				return err
			}
			sb.Records = append(sb.Records, sp.Records...)
		}
		sb.Version, sb.Parts = 1, nil
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
		if err := st.SaveBoardParts(gid[:], blob, nil, nil); err != nil {
			return err
		}
		return ks.Put(boardKeyName(gid), key, time.Time{})
	})
}
