package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyRestored marks a group whose copy in this store was put back from a
// backup (MarkRestored) and has not caught up with its group since.
var keyRestored = []byte("restored")

// MarkRestored marks every group of the store at path as restored from a
// backup. demes restore calls it on the store it is about to put in place:
// the copy of each group is then older than what this node may have
// acknowledged or voted for before it was lost, which raft does not expect
// of a voter, and the node holds its votes until it has caught up
// (node/restored.go).
func MarkRestored(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("mark the store restored: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketGroups)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			meta := root.Bucket(k).Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("group %x has no meta bucket", k)
			}
			return meta.Put(keyRestored, []byte{1})
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mark the store restored: %w", err)
	}
	return nil
}

// Restored reports whether the group's copy in the store was restored from
// a backup and has not caught up since (MarkRestored, ClearRestored).
func (s *Store) Restored(gid []byte) (bool, error) {
	var marked bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := group(tx, gid, false)
		if err != nil {
			return err
		}
		marked = b.Bucket(bucketMeta).Get(keyRestored) != nil
		return nil
	})
	return marked, err
}

// ClearRestored removes the group's restored mark, once its copy has
// caught up with the group.
func (s *Store) ClearRestored(gid []byte) error {
	return s.updateGroup(gid, func(b *bolt.Bucket) error {
		return b.Bucket(bucketMeta).Delete(keyRestored)
	})
}
