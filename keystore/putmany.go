package keystore

import (
	"bytes"
	"fmt"
	"time"
)

// Item is one value for [Store.PutMany].
type Item struct {
	Name        string
	Secret      []byte
	DeleteAfter time.Time
}

// PutMany is [Store.Put] for several names at once, with the syncs of one
// Put: the new records are appended and synced together, then the records
// they replace are erased together (a node rewrites many keys at once when
// its retention advances them, and a sync a key made that pass block for
// seconds). If a name appears twice, the later item wins and the earlier
// one's record is erased too. An invalid item refuses the whole call and
// changes nothing.
func (s *Store) PutMany(items []Item) error {
	what := "key store put"
	if len(items) == 1 {
		what = fmt.Sprintf("key store put %q", items[0].Name)
	}
	for _, it := range items {
		if err := checkPut(it.Name, it.Secret, it.DeleteAfter); err != nil {
			return fmt.Errorf("key store put: %w", err)
		}
	}
	if len(items) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var recs []byte
	entries := make([]*entry, len(items))
	for i, it := range items {
		rec, err := sealRecord(s.aead, s.size+int64(len(recs)), it.Name, it.Secret, it.DeleteAfter)
		if err != nil {
			return fmt.Errorf("key store put %q: %w", it.Name, err)
		}
		entries[i] = &entry{off: s.size + int64(len(recs)), size: int64(len(rec)), deleteAfter: it.DeleteAfter, secret: bytes.Clone(it.Secret)}
		recs = append(recs, rec...)
	}
	if err := s.appendRecord(recs); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.size += int64(len(recs))
	var old []*entry
	for i, it := range items {
		if e := s.m[it.Name]; e != nil {
			old = append(old, e)
		}
		s.m[it.Name] = entries[i]
	}
	if len(old) == 0 {
		return nil
	}
	if err := s.erase(old); err != nil {
		return fmt.Errorf("%s: stored, but erasing the earlier values failed: %w", what, err)
	}
	return s.maybeCompact()
}
