package node

import (
	"encoding/binary"
	"time"

	"github.com/demes/demes/crypto"
)

// Floors: forward secrecy within a sender key (issue 19; docs/PROTOCOL.md,
// "The ratchet in messages").
//
// A message of sealed version 4 or 5 is sealed under the message key of its
// counter in its sender key's hash chain. The node keeps each key at a
// floor: the chain key of the oldest counter it may still read. It notes
// when it first sees each counter (marks), and once the messages below a
// counter were all seen more than KeyRetention ago, it advances the key's
// floor there: in the key store (the record is overwritten, and the old
// one erased) and in every group's ring. So a thief who takes the node's
// files reads none of the messages older than the retention window, even
// under a sender key still in use, and the node itself no longer opens
// them (history pages and transcripts leave them out), as for a deleted key.
//
// Marks are kept in the key store beside the key ("marks/<group>/<sender>/
// <epoch>/<key id>", uint64be(counter) || int64be(unix nanoseconds) each,
// in order): a mark (c, t) says that every counter below c was seen at or
// before t. At most one mark is started per markEvery (a sixty-fourth of
// the retention, at least a minute), so the node deletes a message's key at
// most that much later than the retention says.

// keyName names one sender key of one group.
type keyName struct {
	gid crypto.GroupID
	ref crypto.KeyRef
}

// keyMark is a mark: every counter below c was seen at or before t.
type keyMark struct {
	c uint64
	t time.Time
}

// keyMarks is what the book knows of one key's counters.
type keyMarks struct {
	marks []keyMark
	dirty bool   // changed since last stored
	floor uint64 // as stored
}

// maxMarks bounds a key's marks; past it the two closest in time merge
// (the earlier one is dropped: its counters are deleted with the later
// one's, a little later than they could be).
const maxMarks = 128

// markEvery is how long one mark may grow before the next is started.
func (b *keyBook) markEvery() time.Duration {
	return max(b.n.cfg.KeyRetention/64, time.Minute)
}

// saw records that this node has seen (applied) the message at counter+1
// c1 of the key ref of group gid, now. c1 is [crypto.Opened.Counter]: 0
// for a message without a counter, which is not recorded.
func (b *keyBook) saw(gid crypto.GroupID, ref crypto.KeyRef, c1 uint64) {
	if c1 == 0 || b.n.cfg.KeyRetention < 0 {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	name := keyName{gid, ref}
	km := b.marks[name]
	if km == nil {
		km = b.loadMarksLocked(name)
	}
	n := len(km.marks)
	switch {
	case n > 0 && now.Sub(km.marks[n-1].t) < b.markEvery():
		if c1 > km.marks[n-1].c {
			km.marks[n-1] = keyMark{c1, now}
			km.dirty = true
		}
	case n == 0 || c1 > km.marks[n-1].c:
		km.marks = append(km.marks, keyMark{c1, now})
		km.dirty = true
		if len(km.marks) > maxMarks {
			km.marks = mergeMarks(km.marks)
		}
	}
}

// mergeMarks drops the mark closest in time to the one after it.
func mergeMarks(ms []keyMark) []keyMark {
	best := 0
	for i := 1; i < len(ms)-1; i++ {
		if ms[i+1].t.Sub(ms[i].t) < ms[best+1].t.Sub(ms[best].t) {
			best = i
		}
	}
	return append(ms[:best], ms[best+1:]...)
}

// loadMarksLocked reads name's marks and floor from the key store into the
// book (empty for a key it has none of).
func (b *keyBook) loadMarksLocked(name keyName) *keyMarks {
	km := &keyMarks{}
	if raw, ok := b.store.Get(senderName("marks", name.gid, name.ref)); ok {
		for len(raw) >= 16 {
			km.marks = append(km.marks, keyMark{binary.BigEndian.Uint64(raw), time.Unix(0, int64(binary.BigEndian.Uint64(raw[8:])))})
			raw = raw[16:]
		}
	}
	if raw, ok := b.store.Get(senderName("sender", name.gid, name.ref)); ok {
		if k, err := crypto.UnmarshalSenderKey(raw); err == nil {
			km.floor = k.Floor()
		}
		clear(raw)
	}
	b.marks[name] = km
	return km
}

// advanceFloors stores the marks that changed, and advances, in the key
// store, the floor of every key whose marks say that counters below some
// c were all seen KeyRetention before now. It reports whether a floor
// moved (the groups then advance their rings: applyFloors).
func (b *keyBook) advanceFloors(now time.Time) bool {
	if b.n.cfg.KeyRetention < 0 {
		return false
	}
	cut := now.Add(-b.n.cfg.KeyRetention)
	b.mu.Lock()
	defer b.mu.Unlock()
	moved := false
	for name, km := range b.marks {
		sname := senderName("sender", name.gid, name.ref)
		e, ok := b.entryLocked(sname)
		if !ok {
			delete(b.marks, name) // deleted with its key
			continue
		}
		to := km.floor
		for len(km.marks) > 0 && !km.marks[0].t.After(cut) {
			to = max(to, km.marks[0].c)
			km.marks = km.marks[1:]
			km.dirty = true
		}
		if to > km.floor {
			if err := b.storeFloorLocked(sname, to, e.DeleteAfter); err != nil {
				b.n.log.Error().Err(err).Str("group", name.gid.String()).Msg("key store: cannot advance a sender key's floor; tried again in a minute")
				continue
			}
			b.n.log.Debug().Str("group", name.gid.String()).Hex("key", name.ref.ID[:4]).Uint64("from", km.floor).Uint64("to", to).
				Msg("sender key floor advanced: the message keys below it are deleted")
			km.floor = to
			b.floors[name] = to
			moved = true
		}
		if km.dirty {
			if err := b.storeMarksLocked(name, km, e.DeleteAfter); err != nil {
				b.n.log.Error().Err(err).Str("group", name.gid.String()).Msg("key store: cannot keep a sender key's marks; tried again in a minute")
			}
		}
	}
	if moved {
		b.gen++
	}
	return moved
}

// storeMarksLocked writes name's marks to the key store.
func (b *keyBook) storeMarksLocked(name keyName, km *keyMarks, deleteAfter time.Time) error {
	raw := make([]byte, 0, 16*len(km.marks))
	for _, m := range km.marks {
		raw = binary.BigEndian.AppendUint64(raw, m.c)
		raw = binary.BigEndian.AppendUint64(raw, uint64(m.t.UnixNano()))
	}
	if err := b.store.Put(senderName("marks", name.gid, name.ref), raw, deleteAfter); err != nil {
		return err
	}
	km.dirty = false
	return nil
}

// flushMarks writes the marks of group gid's keys that changed to the key
// store. A group calls it when it stores a snapshot: a restart applies
// again, and so sees again, only the messages after its snapshot, so the
// marks of those before must be stored by then.
func (b *keyBook) flushMarks(gid crypto.GroupID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, km := range b.marks {
		if name.gid != gid || !km.dirty {
			continue
		}
		e, ok := b.entryLocked(senderName("sender", name.gid, name.ref))
		if !ok {
			continue
		}
		if err := b.storeMarksLocked(name, km, e.DeleteAfter); err != nil {
			b.n.log.Error().Err(err).Str("group", gid.String()).Msg("key store: cannot keep a sender key's marks; a restart will keep those messages' keys longer")
		}
	}
}

// storeFloorLocked rewrites the stored sender key name at floor to; the
// key store erases the record it replaces.
func (b *keyBook) storeFloorLocked(name string, to uint64, deleteAfter time.Time) error {
	raw, ok := b.store.Get(name)
	if !ok {
		return nil
	}
	k, err := crypto.UnmarshalSenderKey(raw)
	clear(raw)
	if err != nil {
		return err
	}
	k.Advance(to)
	out, _ := k.MarshalBinary()
	defer clear(out)
	return b.store.Put(name, out, deleteAfter)
}

// entryLocked returns the key store's entry of name.
func (b *keyBook) entryLocked(name string) (e struct{ DeleteAfter time.Time }, ok bool) {
	for _, x := range b.store.List(name) {
		if x.Name == name {
			return struct{ DeleteAfter time.Time }{x.DeleteAfter}, true
		}
	}
	return e, false
}

// floorOf returns the floor the book advanced the key ref of gid to, if any.
func (b *keyBook) floorOf(gid crypto.GroupID, ref crypto.KeyRef) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.floors[keyName{gid, ref}]
}

// floorsOf returns the floors the book advanced group gid's keys to.
func (b *keyBook) floorsOf(gid crypto.GroupID) map[crypto.KeyRef]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[crypto.KeyRef]uint64{}
	for name, f := range b.floors {
		if name.gid == gid {
			out[name.ref] = f
		}
	}
	return out
}

// applyFloors advances the keys of the group's ring and history to the
// floors the key book stored (pruneKeys calls it after a change).
func (g *group) applyFloors() {
	for ref, f := range g.n.keys.floorsOf(g.id) {
		for _, k := range []*crypto.SenderKey{g.keys.Lookup(ref), g.hist.keys[ref]} {
			if k != nil && f > k.Floor() {
				k.Advance(f)
			}
		}
	}
}

// belowFloor reports whether the board record r is of a message below its
// key's floor: its key is deleted.
func (g *group) belowFloor(r *boardRecord) bool {
	return r.Counter > 0 && r.Counter-1 < g.n.keys.floorOf(g.id, r.keyRef())
}
