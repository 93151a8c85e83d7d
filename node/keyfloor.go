package node

import (
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/keystore"
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
// A mark (c, t) says that every counter below c was seen at or before t.
// At most one mark is started per markEvery (a sixty-fourth of the
// retention, at least a minute), so the node deletes a message's key at
// most that much later than the retention says. Marks are kept with each
// group's stored board, written at each snapshot (boardstore.go): a
// restart applies again, and so marks again, what follows its snapshot,
// and takes the marks of what precedes it from the board; a restart that
// rebuilds the board reads, and marks, every message again. Marks cost no
// write of their own.

// keyName names one sender key of one group.
type keyName struct {
	gid crypto.GroupID
	ref crypto.KeyRef
}

// keyMark is a mark: every counter below c was seen at or before t. It
// grows (c and t move on) for markEvery from its start, then the next one
// starts: a mark that moved on with every message would keep the first
// counters of a busy key from ever being deleted.
type keyMark struct {
	c        uint64
	t, start time.Time
}

// boardMarks is one key's marks in a stored board: each mark is
// [counter, unix nanoseconds].
type boardMarks struct {
	_      struct{} `cbor:",toarray"`
	Sender [32]byte
	Epoch  uint64
	KeyID  [crypto.KeyIDSize]byte
	Marks  [][2]int64
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
	b.sawAt(gid, ref, c1, time.Now())
}

// sawAt is saw at the time now.
func (b *keyBook) sawAt(gid crypto.GroupID, ref crypto.KeyRef, c1 uint64, now time.Time) {
	if c1 == 0 || b.n.cfg.KeyRetention < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	name := keyName{gid, ref}
	ms := b.marks[name]
	n := len(ms)
	switch {
	case n > 0 && now.Sub(ms[n-1].start) < b.markEvery():
		if last := &ms[n-1]; c1 > last.c {
			last.c, last.t = c1, now
		}
	case n == 0 || c1 > ms[n-1].c:
		ms = append(ms, keyMark{c: c1, t: now, start: now})
		if len(ms) > maxMarks {
			ms = mergeMarks(ms)
		}
		b.marks[name] = ms
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

// groupMarks returns the marks of group gid's keys, for its stored board.
func (b *keyBook) groupMarks(gid crypto.GroupID) []boardMarks {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []boardMarks
	for name, ms := range b.marks {
		if name.gid != gid || len(ms) == 0 {
			continue
		}
		bm := boardMarks{Sender: name.ref.Sender, Epoch: name.ref.Epoch, KeyID: name.ref.ID}
		for _, m := range ms {
			bm.Marks = append(bm.Marks, [2]int64{int64(m.c), m.t.UnixNano()})
		}
		out = append(out, bm)
	}
	return out
}

// restoreMarks takes the marks of group gid's keys from its stored board,
// for the keys the store still keeps, where the book has none yet.
func (b *keyBook) restoreMarks(gid crypto.GroupID, stored []boardMarks) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bm := range stored {
		ref := crypto.KeyRef{Sender: bm.Sender, Epoch: bm.Epoch, ID: bm.KeyID}
		name := keyName{gid, ref}
		if _, seen := b.marks[name]; seen || !b.kept[senderName("sender", gid, ref)] {
			continue
		}
		var ms []keyMark
		for _, m := range bm.Marks {
			if m[0] > 0 && uint64(m[0]) > b.floors[name] {
				t := time.Unix(0, m[1])
				ms = append(ms, keyMark{c: uint64(m[0]), t: t, start: t})
			}
		}
		b.marks[name] = ms
	}
}

// advanceFloors advances, in the key store, the floor of every key whose
// marks say that the counters below some c were all seen KeyRetention
// before now, in one write of the key store (keystore.Store.PutMany) made
// without the book's lock, so that the groups applying messages meanwhile
// (saw) do not wait for its syncs. It reports whether a floor moved (the
// groups then advance their rings: applyFloors).
func (b *keyBook) advanceFloors(now time.Time) bool {
	if b.n.cfg.KeyRetention < 0 {
		return false
	}
	cut := now.Add(-b.n.cfg.KeyRetention)
	deadlines := map[string]time.Time{}
	for _, e := range b.store.List("sender/") {
		deadlines[e.Name] = e.DeleteAfter
	}
	type advance struct {
		name keyName
		to   uint64
	}
	var todo []advance
	b.mu.Lock()
	for name, ms := range b.marks {
		if _, ok := deadlines[senderName("sender", name.gid, name.ref)]; !ok {
			delete(b.marks, name) // deleted with its key
			continue
		}
		floor := b.floors[name]
		to, n := floor, 0
		for n < len(ms) && !ms[n].t.After(cut) {
			to = max(to, ms[n].c)
			n++
		}
		if to <= floor {
			b.marks[name] = ms[n:] // marks the floor had passed already
			continue
		}
		todo = append(todo, advance{name, to})
	}
	b.mu.Unlock()

	var items []keystore.Item
	var done []advance
	for _, a := range todo {
		sname := senderName("sender", a.name.gid, a.name.ref)
		raw, ok := b.store.Get(sname)
		if !ok {
			continue
		}
		k, err := crypto.UnmarshalSenderKey(raw)
		clear(raw)
		if err != nil {
			b.n.log.Error().Err(err).Str("group", a.name.gid.String()).Msg("key store: a sender key that does not decode; its floor stays")
			continue
		}
		k.Advance(a.to)
		out, _ := k.MarshalBinary()
		clear(k.Key[:])
		items = append(items, keystore.Item{Name: sname, Secret: out, DeleteAfter: deadlines[sname]})
		done = append(done, a)
	}
	if len(items) == 0 {
		return false
	}
	err := b.store.PutMany(items)
	for _, it := range items {
		clear(it.Secret)
	}
	if err != nil {
		b.n.log.Error().Err(err).Int("keys", len(items)).Msg("key store: cannot advance sender keys' floors; tried again in a minute")
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range done {
		if ms, ok := b.marks[a.name]; ok {
			i := 0
			for i < len(ms) && ms[i].c <= a.to {
				i++
			}
			b.marks[a.name] = ms[i:]
		}
		b.floors[a.name] = max(b.floors[a.name], a.to)
	}
	b.n.log.Debug().Int("keys", len(done)).Msg("sender key floors advanced: the message keys below them are deleted")
	b.gen++
	return true
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

// applyFloors advances the keys of the group's ring and history to
// floors, the ones the key book stored (pruneKeys calls it after a change).
func (g *group) applyFloors(floors map[crypto.KeyRef]uint64) {
	for ref, f := range floors {
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
	return pastFloor(r.Counter, g.n.keys.floorOf(g.id, r.keyRef()))
}

// pastFloor reports whether the message at counter+1 c1 (0: a message
// without a counter) is below floor: its key is deleted.
func pastFloor(c1, floor uint64) bool { return c1 > 0 && c1-1 < floor }
