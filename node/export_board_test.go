package node

import (
	"context"
	"errors"
	"path/filepath"

	"golang.org/x/crypto/chacha20poly1305"

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
	// from.
	Records int
}

// GroupBoardStats returns the BoardStats of a group on n.
func GroupBoardStats(n *Node, groupID string) (BoardStats, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return BoardStats{}, err
	}
	var s BoardStats
	err = g.do(context.Background(), func() {
		s = BoardStats{Restored: g.blog.restored, Opened: g.blog.opened, Records: len(g.blog.records)}
	})
	return s, err
}

// StolenBoard is a thief's reading of the stored board of a group in the
// home dir (a copy of a stopped node's) with its identity: the board's
// plaintext, opened with the key the key store keeps for it, at the index of
// the stored snapshot.
func StolenBoard(dir string, id *identity.Identity, groupID string) ([]byte, error) {
	gid, err := crypto.ParseGroupID(groupID)
	if err != nil {
		return nil, err
	}
	ks, err := keystore.Open(filepath.Join(dir, keyStoreFile), id)
	if err != nil {
		return nil, err
	}
	defer ks.Close()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	snap, err := st.LoadSnapshot(gid[:])
	if err != nil {
		return nil, err
	}
	blob, err := st.LoadBoard(gid[:])
	if err != nil {
		return nil, err
	}
	key, ok := ks.Get(boardKeyName(gid))
	if !ok || len(blob) < chacha20poly1305.NonceSizeX {
		return nil, errors.New("no stored board, or no key for it")
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], boardAAD(gid, snap.GetMetadata().GetIndex()))
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
