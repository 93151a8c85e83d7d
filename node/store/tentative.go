package store

import bolt "go.etcd.io/bbolt"

// bucketTentative holds, per group, the other members' tentative messages
// this node holds (see node's tentative.go): their signed chat frames,
// ciphertext only, by message id, so that a restart shows them again until
// the log commits them. Made on first use: older stores have none.
var bucketTentative = []byte("tentative")

// UpdateTentative records tentative messages of other members (put, by
// id) and forgets others (drop: committed, or their author is no member any
// more), in one transaction.
func (s *Store) UpdateTentative(gid []byte, put map[string][]byte, drop [][]byte) error {
	if len(put) == 0 && len(drop) == 0 {
		return nil
	}
	return s.updateGroup(gid, func(b *bolt.Bucket) error {
		tb, err := b.CreateBucketIfNotExists(bucketTentative)
		if err != nil {
			return err
		}
		for _, id := range drop {
			if err := tb.Delete(id); err != nil {
				return err
			}
		}
		for id, data := range put {
			if err := tb.Put([]byte(id), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tentative returns a group's recorded tentative messages by id.
func (s *Store) Tentative(gid []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		tb := b.Bucket(bucketTentative)
		if tb == nil {
			return nil
		}
		return tb.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// TentativeOf returns those of a group's recorded tentative messages whose
// ids are listed, by id: a host proposing a few of the messages it holds
// (node's tentative_orphan.go) reads those, not every one.
func (s *Store) TentativeOf(gid []byte, ids [][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := s.viewGroup(gid, func(b *bolt.Bucket) error {
		tb := b.Bucket(bucketTentative)
		if tb == nil {
			return nil
		}
		for _, id := range ids {
			if v := tb.Get(id); v != nil {
				out[string(id)] = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, err
}
