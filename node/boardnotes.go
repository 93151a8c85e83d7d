package node

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
)

// The stored board's notes (issue 16: a node's memory does not grow with
// its history). Reactions, edits and deletes change messages of any age,
// and until a board of version 3 a group kept the note of every message
// ever changed in memory (content.Board: 139 bytes a reaction), for as long
// as it lived. Now the board in memory is a cache of bounded size: it
// holds the notes of the messages it was asked about (learn), and is
// emptied when it holds more than noteCacheFactor times the window of
// messages in memory; the notes themselves are in the store, with the
// change records not stored yet (boardLog.records) on top.
//
// The store keeps them in pages: a page holds, for each message of 4,096
// consecutive log indexes that has one, a value (storedNote) with the
// records of the changes of that message, in log order, and the record of
// the message itself when it is a change (so that a page of older
// messages, or a change of a change, knows it for one). Each snapshot adds
// the change records applied since the last one to the values of their
// targets and of themselves, which it reads, extends and seals again: a
// record is written once, and a value again only when its message changes
// again. Each page is sealed (XChaCha20-Poly1305, each value with a random
// nonce) under a random key of its own, with the group id, the page's
// number and the message's index as associated data; the page's key is in
// the board that lists it (boardstore.go).
//
// Forward secrecy: each page's summary of the sender keys of every record
// ever sealed under its key (in memory, and stored with the board, since a
// value compacted or emptied under an unchanged key may linger in store.db
// with records the current values no longer hold) tells whether the key
// policy deleted any of them; such a page is written again whole, without
// those records, under a new key (writePages), so that the old one, in the
// board whose key is erased, opens none of its old values.

// notePageShift: a page holds the notes of 1<<notePageShift consecutive
// log indexes.
const notePageShift = 12

// notePageOf returns the number of the page of the message at index.
func notePageOf(index uint64) uint64 { return index >> notePageShift }

// noteCacheFactor: the board in memory holds the notes of at most this
// many times the window of messages in memory before it is emptied.
const noteCacheFactor = 4

// notePage is a stored page of notes, as the board lists it.
type notePage struct {
	Num uint64 `cbor:"1,keyasint"` // its key in the store
	Key []byte `cbor:"2,keyasint"` // the key its values are sealed under
	N   int    `cbor:"3,keyasint"` // how many values it holds
	R   int    `cbor:"4,keyasint"` // how many change records they list under their targets
	// Keys is keys as the board stores it (writeBoard fills it in the
	// copy it seals): the keys of every record sealed under Key, those
	// that compaction dropped or whose value was deleted since included.
	// Their old values may linger in store.db under Key: a restart that
	// summarised the current values only would not know to rewrite the
	// page when the policy deletes such a key.
	Keys []pageKey `cbor:"5,keyasint,omitempty"`
	// keys summarises the sender keys of the records sealed under Key
	// as boardPart.keys does, including records no value holds any more.
	keys map[crypto.KeyRef]uint64
}

// pageKey is one entry of a page's stored summary of its sender keys.
type pageKey struct {
	_      struct{} `cbor:",toarray"`
	Sender [32]byte
	Epoch  uint64
	ID     [crypto.KeyIDSize]byte
	C      uint64
}

// storedKeys returns the summary keys as a page stores it, sorted.
func storedKeys(keys map[crypto.KeyRef]uint64) []pageKey {
	out := make([]pageKey, 0, len(keys))
	for ref, c := range keys {
		out = append(out, pageKey{Sender: ref.Sender, Epoch: ref.Epoch, ID: ref.ID, C: c})
	}
	slices.SortFunc(out, func(a, b pageKey) int {
		if c := bytes.Compare(a.Sender[:], b.Sender[:]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return out
}

// storedNote is the plaintext of one value of a page: the changes of the
// message at Index, and the message itself when it is a change.
type storedNote struct {
	Index   uint64        `cbor:"1,keyasint"`
	Changes []boardRecord `cbor:"2,keyasint,omitempty"`
	Self    *boardRecord  `cbor:"3,keyasint,omitempty"`
}

// records returns every record of sn.
func (sn *storedNote) records() []*boardRecord {
	out := make([]*boardRecord, 0, len(sn.Changes)+1)
	for i := range sn.Changes {
		out = append(out, &sn.Changes[i])
	}
	if sn.Self != nil {
		out = append(out, sn.Self)
	}
	return out
}

// noteAAD binds a sealed value to its group, page and message.
func noteAAD(gid crypto.GroupID, page, index uint64) []byte {
	aad := append([]byte("DeMeS stored board note v3\x00"), gid[:]...)
	aad = binary.BigEndian.AppendUint64(aad, page)
	return binary.BigEndian.AppendUint64(aad, index)
}

// addKeys adds the sender keys of rs to the summary keys, as partKeys.
func addKeys(keys map[crypto.KeyRef]uint64, rs ...*boardRecord) {
	for _, r := range rs {
		addKey(keys, r.keyRef(), r.Counter)
	}
}

// keepsKeys reports whether the key policy still keeps every record a
// summary (partKeys, addKeys) describes.
func (g *group) keepsKeys(keys map[crypto.KeyRef]uint64) bool {
	for ref, c1 := range keys {
		if !g.n.keys.holds(g.id, ref) || pastFloor(c1, g.n.keys.floorOf(g.id, ref)) {
			return false
		}
	}
	return true
}

// sealNote seals sn as the value of page num under key.
func (g *group) sealNote(key []byte, num uint64, sn *storedNote) ([]byte, error) {
	plain, err := boardEnc.Marshal(sn)
	if err != nil {
		return nil, fmt.Errorf("encode the note of %d: %w", sn.Index, err)
	}
	defer clear(plain)
	g.blog.sealed += len(sn.Changes)
	return seal(key, plain, noteAAD(g.id, num, sn.Index))
}

// openNote opens and checks the value blob of page p at index.
func openNote(gid crypto.GroupID, p *notePage, index uint64, blob []byte) (*storedNote, []byte, error) {
	if notePageOf(index) != p.Num {
		return nil, nil, fmt.Errorf("a note of %d in page %d of the stored board", index, p.Num)
	}
	plain, err := openSealed(p.Key, blob, noteAAD(gid, p.Num, index))
	if err != nil {
		return nil, nil, fmt.Errorf("the note of %d in page %d of the stored board does not open: %w", index, p.Num, err)
	}
	var sn storedNote
	err = boardDec.Unmarshal(plain, &sn)
	switch {
	case err != nil:
	case sn.Index != index:
		err = fmt.Errorf("it is of %d", sn.Index)
	case len(sn.Changes) == 0 && sn.Self == nil:
		err = fmt.Errorf("it is empty")
	case sn.Self != nil && sn.Self.Index != index:
		err = fmt.Errorf("it is the change at %d", sn.Self.Index)
	default:
		for i := range sn.Changes {
			if r := &sn.Changes[i]; r.TargetIndex != index || r.Index <= index || i > 0 && r.Index <= sn.Changes[i-1].Index {
				err = fmt.Errorf("a change at %d of %d out of order", r.Index, r.TargetIndex)
				break
			}
		}
	}
	if err != nil {
		clear(plain)
		return nil, nil, fmt.Errorf("the note of %d in page %d of the stored board: %w", index, p.Num, err)
	}
	return &sn, plain, nil
}

// loadNotes reads and opens the values of page p at indexes, those it has.
func (g *group) loadNotes(p *notePage, indexes []uint64) (map[uint64]*storedNote, error) {
	blobs, err := g.n.store.LoadBoardNotes(g.id[:], p.Num, indexes)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]*storedNote, len(blobs))
	for idx, blob := range blobs {
		sn, plain, err := openNote(g.id, p, idx, blob)
		clear(plain)
		if err != nil {
			return nil, err
		}
		out[idx] = sn
	}
	return out, nil
}

// readPage reads and opens every value of page p of group gid in st.
func readPage(st *store.Store, gid crypto.GroupID, p *notePage, each func(sn *storedNote, plain []byte)) error {
	return st.BoardPage(gid[:], p.Num, func(idx uint64, blob []byte) error {
		sn, plain, err := openNote(gid, p, idx, blob)
		if err != nil {
			return err
		}
		each(sn, plain)
		return nil
	})
}

// restorePages checks every value of the stored pages of a board being
// restored, and summarises their sender keys: a page that does not read
// back as the board lists it makes the restart rebuild the board. It
// returns how many pages hold records the key policy no longer keeps.
func (g *group) restorePages(pages []notePage) (stale int, err error) {
	g.blog.pages = map[uint64]notePage{}
	for _, p := range pages {
		if _, dup := g.blog.pages[p.Num]; dup || len(p.Key) != chacha20poly1305.KeySize {
			return 0, fmt.Errorf("page %d of the stored board is listed twice, or without its key", p.Num)
		}
		// The stored summary first: it names the keys of records
		// dropped from the values, whose old copies may linger.
		p.keys = map[crypto.KeyRef]uint64{}
		for _, k := range p.Keys {
			addKey(p.keys, crypto.KeyRef{Sender: k.Sender, Epoch: k.Epoch, ID: k.ID}, k.C)
		}
		p.Keys = nil
		n, r := 0, 0
		err := readPage(g.n.store, g.id, &p, func(sn *storedNote, plain []byte) {
			clear(plain)
			addKeys(p.keys, sn.records()...)
			n, r = n+1, r+len(sn.Changes)
		})
		if err != nil {
			return 0, err
		}
		if n != p.N || r != p.R {
			return 0, fmt.Errorf("page %d of the stored board holds %d notes of %d changes, want %d of %d", p.Num, n, r, p.N, p.R)
		}
		if !g.keepsKeys(p.keys) {
			stale++
		}
		g.blog.pages[p.Num] = p
	}
	return stale, nil
}

// learn has the board in memory hold the note of the message id at index
// in full: the changes of it from its value in the store, then those not
// stored yet, applied again as they were; and whether it is itself a
// change. A board that holds too many notes is emptied first.
func (g *group) learn(id [16]byte, index uint64) {
	if _, ok := g.learnt[id]; ok {
		return
	}
	g.learnNew(id)
	var changes []*boardRecord
	self := false
	if p, ok := g.blog.pages[notePageOf(index)]; ok {
		ns, err := g.loadNotes(&p, []uint64{index})
		if err != nil && !g.blog.damaged {
			// The restart checks every value, and rebuilds the board
			// if one is damaged; until then the notes go without.
			g.blog.damaged = true
			g.n.log.Error().Err(err).Str("group", g.id.String()).Uint64("index", index).
				Msg("cannot read a note of the stored board; the messages it changes show without it until the next restart rebuilds the board")
		}
		if sn := ns[index]; sn != nil {
			for i := range sn.Changes {
				changes = append(changes, &sn.Changes[i])
			}
			self = sn.Self != nil
		}
	}
	for _, i := range g.blog.byTarget[index] {
		changes = append(changes, &g.blog.records[i])
	}
	if _, ok := g.blog.changeIDs[id]; ok || self {
		g.board.MarkChange(id)
	}
	for _, r := range changes {
		if !g.keeps(r) {
			continue // deleted by the key policy, not written again yet
		}
		// As applied first: a refused change is refused again.
		_ = g.board.Apply(r.ID, r.Author, r.content(), func([16]byte) (string, bool) { return r.Target, r.Found })
	}
}

// learnNew counts the message id, applied now, among the messages the
// board in memory holds in full: nothing changed it yet, and applying it,
// a change, marks it one.
func (g *group) learnNew(id [16]byte) {
	if _, ok := g.learnt[id]; ok {
		return
	}
	if len(g.learnt) >= noteCacheFactor*max(g.hist.window, 1) {
		g.forgetNotes()
	}
	if g.learnt == nil {
		g.learnt = map[[16]byte]struct{}{}
	}
	g.learnt[id] = struct{}{}
}

// forgetNotes empties the board in memory: every note is in the store or
// in the records not stored yet, and is learnt again when asked for.
func (g *group) forgetNotes() {
	g.board, g.learnt = content.Board{}, nil
}

// noteOf returns the note of the message id (nil if none), and whether it
// is a change, learning it first. An id the group has not committed has
// neither.
func (g *group) noteOf(id [16]byte) (*content.Note, bool) {
	idx, ok := g.st.MsgIDs.Lookup(id)
	if !ok {
		return nil, false
	}
	g.learn(id, idx)
	return g.board.Note(id), g.board.IsChange(id)
}

// decorate shows the changes to m, a committed message, on it.
func (g *group) decorate(m *Message) {
	id := msgID(*m)
	g.learn(id, m.Index)
	g.board.Decorate(m, id, g.n.selfID)
}

// writePages adds the change records changes (kept by the key policy, in
// log order) to the pages of notes, and writes again under new keys the
// pages that hold records the policy no longer keeps. It returns what to
// write, the pages the board lists then, and the keys it made (for the
// caller to clear unless the board is stored).
func (g *group) writePages(changes []boardRecord) (map[uint64]store.PageWrite, map[uint64]notePage, [][]byte, error) {
	pages := maps.Clone(g.blog.pages)
	if pages == nil {
		pages = map[uint64]notePage{}
	}
	writes := map[uint64]store.PageWrite{}
	var made [][]byte
	add := map[uint64]map[uint64]*storedNote{} // by page, by index
	at := func(idx uint64) *storedNote {
		num := notePageOf(idx)
		if add[num] == nil {
			add[num] = map[uint64]*storedNote{}
		}
		if add[num][idx] == nil {
			add[num][idx] = &storedNote{Index: idx}
		}
		return add[num][idx]
	}
	for i := range changes {
		r := &changes[i]
		if r.TargetIndex > 0 && r.TargetIndex < r.Index {
			sn := at(r.TargetIndex)
			sn.Changes = append(sn.Changes, *r)
		}
		at(r.Index).Self = r
	}
	todo := slices.Collect(maps.Keys(add))
	for num, p := range pages {
		if add[num] == nil && !g.keepsKeys(p.keys) {
			todo = append(todo, num)
		}
	}
	slices.Sort(todo)
	for _, num := range todo {
		old, had := pages[num]
		rewrite := !had || !g.keepsKeys(old.keys)
		values := map[uint64]*storedNote{}
		var err error
		switch {
		case had && rewrite:
			err = readPage(g.n.store, g.id, &old, func(sn *storedNote, plain []byte) {
				clear(plain)
				sn.Changes = g.keptOnly(sn.Changes)
				if sn.Self != nil && !g.keeps(sn.Self) {
					sn.Self = nil
				}
				if len(sn.Changes) > 0 || sn.Self != nil {
					values[sn.Index] = sn
				}
			})
		case had:
			values, err = g.loadNotes(&old, slices.Collect(maps.Keys(add[num])))
		}
		if err != nil {
			return nil, nil, made, err
		}
		np := notePage{Num: num, Key: old.Key, N: old.N, R: old.R, keys: maps.Clone(old.keys)}
		if rewrite {
			np.Key = make([]byte, chacha20poly1305.KeySize)
			if _, err := rand.Read(np.Key); err != nil {
				return nil, nil, made, err
			}
			made = append(made, np.Key)
			np.N, np.R, np.keys = len(values), 0, map[crypto.KeyRef]uint64{}
			for _, sn := range values {
				np.R += len(sn.Changes)
				addKeys(np.keys, sn.records()...)
			}
		}
		pw := store.PageWrite{Replace: rewrite, Values: map[uint64][]byte{}}
		for idx, a := range add[num] {
			sn, existed := values[idx]
			if !existed {
				sn = &storedNote{Index: idx}
			}
			before := len(sn.Changes)
			if a.Self != nil {
				sn.Self = a.Self
			}
			sn.Changes = compactChanges(append(sn.Changes, a.Changes...), sn.Self != nil)
			np.R += len(sn.Changes) - before
			addKeys(np.keys, a.records()...)
			switch empty := len(sn.Changes) == 0 && sn.Self == nil; {
			case empty && existed:
				// Its changes taken back: the value goes.
				delete(values, idx)
				np.N--
				if !rewrite {
					pw.Values[idx] = nil
				}
			case !empty && !existed:
				values[idx] = sn
				np.N++
			}
		}
		if np.N == 0 {
			delete(pages, num) // nothing left: the page goes
			continue
		}
		for idx, sn := range values {
			blob, err := g.sealNote(np.Key, num, sn)
			if err != nil {
				return nil, nil, made, err
			}
			pw.Values[idx] = blob
		}
		pages[num], writes[num] = np, pw
	}
	return writes, pages, made, nil
}

// compactChanges returns, of the records rs of the changes of one message
// (a change itself if isChange), in log order, those that still decide its
// note: the delete, if any, alone; else the latest edit and each reactor's
// latest reaction, unless that took the reaction back; refused changes
// none. Applied in order to an empty note, they make the note rs make
// (TestCompactChangesKeepsTheNote), so that a message changed again and
// again, a reaction changed a thousand times, keeps a value of one record
// per reactor, not one per change. The note shows what all of rs show
// however the key policy deletes keys, as long as the message is shown: a
// change dropped is overridden by a later one of the same member, whose key
// the policy deletes no earlier, or by the author's delete, whose key it
// deletes no earlier than the message's own, which is then shown no more.
func compactChanges(rs []boardRecord, isChange bool) []boardRecord {
	if len(rs) == 0 {
		return rs
	}
	var b content.Board
	if isChange {
		b.MarkChange([16]byte(rs[0].Ref))
	}
	keep := map[string]int{} // the latest of each reactor, and "" the latest edit
	for i := range rs {
		r := &rs[i]
		if b.Apply(r.ID, r.Author, r.content(), func([16]byte) (string, bool) { return r.Target, r.Found }) != nil {
			continue // refused: it changed nothing
		}
		switch content.Kind(r.Kind) {
		case content.Delete:
			return []boardRecord{*r}
		case content.Edit:
			keep[""] = i
		case content.Reaction:
			keep["\x00"+r.Author] = i
		}
	}
	kept := map[int]bool{}
	for k, i := range keep {
		kept[i] = k == "" || rs[i].Emoji != ""
	}
	out := rs[:0:0]
	for i := range rs {
		if kept[i] {
			out = append(out, rs[i])
		}
	}
	return out
}

// pageRecords counts the change records the pages list under their
// targets.
func (l *boardLog) pageRecords() int {
	n := 0
	for _, p := range l.pages {
		n += p.R
	}
	return n
}

// reindex indexes the records not stored yet for learn: the changes by
// their targets' indexes, and their own ids.
func (l *boardLog) reindex() {
	l.byTarget, l.changeIDs = nil, nil
	for i := range l.records {
		l.index(i)
	}
}

// index indexes records[i] (see reindex).
func (l *boardLog) index(i int) {
	r := &l.records[i]
	if len(r.File) > 0 {
		return
	}
	if l.byTarget == nil {
		l.byTarget, l.changeIDs = map[uint64][]int{}, map[[16]byte]struct{}{}
	}
	if r.TargetIndex > 0 {
		l.byTarget[r.TargetIndex] = append(l.byTarget[r.TargetIndex], i)
	}
	l.changeIDs[r.ID] = struct{}{}
}
