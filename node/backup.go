package node

import "io"

// BackupStore writes a consistent copy of the node's store (store.db) to w,
// as of one read transaction: every group's log, hard state, snapshot and
// outbox at one instant, while the node keeps running. begin is called
// with the copy's size in bytes before its first byte. The store holds what
// travelled on the wire and what derives from it, so the copy holds no
// plaintext; the identity is not in it.
//
// Restoring the copy rolls this node's view of each group back to that
// instant; on its next start the node catches up from the others like a
// node back from a long sleep.
func (n *Node) BackupStore(w io.Writer, begin func(size int64)) (int64, error) {
	return n.store.CopyTo(w, begin)
}

// BackupStore forwards to the running node; it fails with ErrStopped while
// the node is stopped.
func (s *Service) BackupStore(w io.Writer, begin func(size int64)) (int64, error) {
	n, err := s.node()
	if err != nil {
		return 0, err
	}
	return n.BackupStore(w, begin)
}
