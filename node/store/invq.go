package store

import bolt "go.etcd.io/bbolt"

// keyInviteQueue holds a group's queued invites (see node's invitequeue.go)
// in its metadata: invites the node accepted while the group could not
// commit, to propose until they commit.
var keyInviteQueue = []byte("invq")

// SaveInviteQueue records a group's queued invites, replacing what was
// there; an empty queue removes the record.
func (s *Store) SaveInviteQueue(gid, queue []byte) error {
	if len(queue) == 0 {
		return s.updateGroup(gid, func(b *bolt.Bucket) error { return b.Bucket(bucketMeta).Delete(keyInviteQueue) })
	}
	return s.putMeta(gid, keyInviteQueue, queue)
}

// InviteQueue returns what SaveInviteQueue recorded for a group, nil if
// nothing.
func (s *Store) InviteQueue(gid []byte) ([]byte, error) { return s.getMeta(gid, keyInviteQueue) }
