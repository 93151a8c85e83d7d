package node

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
)

// The stored board's parts (issue 16: history that does not weigh on a
// node). A board of version 1 held every record itself, so each snapshot
// wrote it again whole (25 MB at 100,000 reactions) and the node kept every
// record in memory to write it from (216 bytes a record, with the board's
// own notes). A board of version 2 lists parts instead: each snapshot
// stores the records since the last one as a new part, which is written
// once. So that parts stay few, a new part is merged with the one before
// it while that one holds at most twice as many records, as the runs of
// message ids are (store/idruns.go): about log2 of (records / records a
// snapshot) parts, each record written again about as many times over the
// history. Memory keeps only the records not stored yet and, of each part,
// its key and which sender keys its records were sealed under.
//
// Each part is sealed (XChaCha20-Poly1305) under a random key of its own,
// with the group id and the part's number as associated data; the part's
// key is in the board that lists it, itself sealed under the key the key
// store keeps (boardstore.go). A part written again, or merged, gets a new
// key, and the board that listed the old one is unreadable once its key is
// erased: forward secrecy holds as for the board, a deleted record's old
// part lingering in store.db until its pages are reused opens for no one.
//
// Forward secrecy: when the key policy deletes a sender key or passes a
// floor (keyfloor.go), the parts that hold a record under it, known from
// their key summaries without opening them, are written again without
// those records (forgetDeleted), or deleted when none is left.

// boardPart is a stored part, as the board lists it.
type boardPart struct {
	Num uint64 `cbor:"1,keyasint"` // the index of the snapshot it was written at: its key in the store
	Key []byte `cbor:"2,keyasint"` // the key it is sealed under
	N   int    `cbor:"3,keyasint"` // how many records it holds
	// keys is, for each sender key its records were sealed under, the
	// lowest counter+1 among them (boardRecord.Counter): enough to tell
	// whether the key policy deleted any of them. In memory only.
	keys map[crypto.KeyRef]uint64
}

// storedPart is the plaintext of a part.
type storedPart struct {
	Num     uint64        `cbor:"1,keyasint"`
	Records []boardRecord `cbor:"2,keyasint"`
}

// partAAD binds a sealed part to its group and number.
func partAAD(gid crypto.GroupID, num uint64) []byte {
	aad := append([]byte("DeMeS stored board part v2\x00"), gid[:]...)
	return binary.BigEndian.AppendUint64(aad, num)
}

// partKeys summarises the sender keys of records for boardPart.keys: for
// each, the lowest counter+1 of its records that have one. A record
// without a counter (0: a version without one) is never below a floor, so
// it must not hide one that is: a sender may mix the two under one key.
func partKeys(records []boardRecord) map[crypto.KeyRef]uint64 {
	keys := map[crypto.KeyRef]uint64{}
	for i := range records {
		addKey(keys, records[i].keyRef(), records[i].Counter)
	}
	return keys
}

// addKey adds the sender key ref of a record with counter+1 c to the
// summary keys (see partKeys).
func addKey(keys map[crypto.KeyRef]uint64, ref crypto.KeyRef, c uint64) {
	if c1, ok := keys[ref]; !ok || c1 == 0 || c != 0 && c < c1 {
		keys[ref] = c
	}
}

// keeps reports whether the key policy still keeps the record r: its
// sender key is held and its counter is not below the key's floor.
func (g *group) keeps(r *boardRecord) bool {
	return g.n.keys.holds(g.id, r.keyRef()) && !g.belowFloor(r)
}

// keptOnly returns the records of rs that the key policy keeps, in place,
// and clears the file bodies of the others.
func (g *group) keptOnly(rs []boardRecord) []boardRecord {
	return slices.DeleteFunc(rs, func(r boardRecord) bool {
		if g.keeps(&r) {
			return false
		}
		clear(r.File)
		return true
	})
}

// keepsAll reports whether the key policy still keeps every record of p.
func (g *group) keepsAll(p *boardPart) bool { return g.keepsKeys(p.keys) }

// sealPart seals records as the part numbered num, under a new key.
func (g *group) sealPart(num uint64, records []boardRecord) (boardPart, []byte, error) {
	plain, err := boardEnc.Marshal(&storedPart{Num: num, Records: records})
	if err != nil {
		return boardPart{}, nil, fmt.Errorf("encode part %d of the board: %w", num, err)
	}
	defer clear(plain)
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(key); err != nil {
		return boardPart{}, nil, err
	}
	blob, err := seal(key, plain, partAAD(g.id, num))
	if err != nil {
		return boardPart{}, nil, err
	}
	g.blog.sealed += len(records)
	return boardPart{Num: num, Key: key, N: len(records), keys: partKeys(records)}, blob, nil
}

// loadPart reads and opens the stored part p.
func (g *group) loadPart(p *boardPart) ([]boardRecord, error) {
	sp, plain, err := openPart(g.n.store, g.id, p)
	clear(plain)
	if err != nil {
		return nil, err
	}
	return sp.Records, nil
}

// openPart reads, opens and decodes the stored part p of group gid's board
// in st, and returns it and its plaintext, which the caller clears.
func openPart(st *store.Store, gid crypto.GroupID, p *boardPart) (*storedPart, []byte, error) {
	blob, err := st.LoadBoardPart(gid[:], p.Num)
	if err != nil {
		return nil, nil, err
	}
	if blob == nil {
		return nil, nil, fmt.Errorf("part %d of the stored board is missing", p.Num)
	}
	plain, err := openSealed(p.Key, blob, partAAD(gid, p.Num))
	if err != nil {
		return nil, nil, fmt.Errorf("part %d of the stored board does not open: %w", p.Num, err)
	}
	var sp storedPart
	if err := boardDec.Unmarshal(plain, &sp); err != nil {
		clear(plain)
		return nil, nil, fmt.Errorf("decode part %d of the stored board: %w", p.Num, err)
	}
	if sp.Num != p.Num || len(sp.Records) != p.N {
		clear(plain)
		return nil, nil, fmt.Errorf("part %d of the stored board holds part %d, %d records, want %d", p.Num, sp.Num, len(sp.Records), p.N)
	}
	for i := range sp.Records {
		if sp.Records[i].Index > p.Num || i > 0 && sp.Records[i].Index <= sp.Records[i-1].Index {
			clear(plain)
			return nil, nil, fmt.Errorf("part %d of the stored board has its records out of order at %d", p.Num, sp.Records[i].Index)
		}
	}
	return &sp, plain, nil
}

// saveBoard stores the board as of the snapshot at index: the records not
// stored yet, up to index, that the key policy keeps, as a new part, merged
// with the parts before it as the comment above says; and it writes again,
// or deletes, the parts that hold records the key policy no longer keeps.
// A failure is logged and changes nothing: the records stay in memory for
// the next snapshot, and the next restart rebuilds the board from the log.
func (g *group) saveBoard(index uint64) {
	if err := g.writeBoard(index); err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Uint64("index", index).
			Msg("cannot store the board; the next restart reads the whole log to rebuild it")
	}
}

func (g *group) writeBoard(index uint64) error {
	// The key book is the node's: another group's upkeep may have
	// deleted a key of this group, and this board (a snapshot) may come
	// before this group's pruneKeys, whose forgetDeleted then finds
	// nothing left to drop. The notes learnt from what the policy no
	// longer keeps leave memory here, then.
	if g.dropsAny() {
		g.forgetNotes()
	}
	parts := slices.Clone(g.blog.parts)
	puts := map[uint64][]byte{}
	// The keys of the parts sealed here, cleared unless the board that
	// lists them is stored.
	var sealed [][]byte
	defer func() {
		for _, k := range sealed {
			clear(k)
		}
	}()
	opened := map[uint64][]boardRecord{} // the records of parts read here
	// Every board written looks at the parts' summaries, not only the one
	// forgetDeleted asks for: that one may have failed, and nothing else
	// would ask again until the policy deletes another key.
	kept := parts[:0]
	for i := range parts {
		p := parts[i]
		if g.keepsAll(&p) {
			kept = append(kept, p)
			continue
		}
		rs, err := g.loadPart(&p)
		if err != nil {
			return err
		}
		if rs = g.keptOnly(rs); len(rs) == 0 {
			continue // no record left: the part goes
		}
		np, blob, err := g.sealPart(p.Num, rs)
		if err != nil {
			return err
		}
		sealed = append(sealed, np.Key)
		puts[p.Num], opened[p.Num] = blob, rs
		kept = append(kept, np)
	}
	parts = kept
	n := 0 // the records in memory this stores (or drops)
	var fresh, changes []boardRecord
	for i := range g.blog.records {
		r := &g.blog.records[i]
		if r.Index > index {
			break
		}
		n++
		switch {
		case !g.keeps(r):
		case len(r.File) > 0:
			fresh = append(fresh, *r)
		default:
			changes = append(changes, *r) // to the pages of notes (boardnotes.go)
		}
	}
	pageWrites, pages, made, err := g.writePages(changes)
	sealed = append(sealed, made...)
	if err != nil {
		return err
	}
	if len(fresh) > 0 {
		for len(parts) > 0 && (parts[len(parts)-1].N <= 2*len(fresh) || parts[len(parts)-1].Num >= index) {
			prev := parts[len(parts)-1]
			rs, ok := opened[prev.Num]
			if !ok {
				var err error
				if rs, err = g.loadPart(&prev); err != nil {
					return err
				}
			}
			fresh = append(g.keptOnly(rs), fresh...)
			delete(puts, prev.Num)
			parts = parts[:len(parts)-1]
		}
		p, blob, err := g.sealPart(index, fresh)
		if err != nil {
			return err
		}
		sealed = append(sealed, p.Key)
		puts[index] = blob
		parts = append(parts, p)
	}
	sb := storedBoard{Version: storedBoardVersion, Index: index, Marks: g.n.keys.groupMarks(g.id), Parts: parts}
	for _, num := range slices.Sorted(maps.Keys(pages)) {
		p := pages[num]
		p.Keys = storedKeys(p.keys)
		sb.Pages = append(sb.Pages, p)
	}
	if g.hist.first <= index {
		sb.First = g.hist.first
	}
	stored, err := g.sealBoard(&sb, puts, pageWrites)
	if !stored {
		return err
	}
	// Stored: the keys of the parts and pages it lists are the board's
	// now; those of parts sealed and then merged away go.
	listed := func(k []byte) bool {
		return slices.ContainsFunc(parts, func(p boardPart) bool { return &p.Key[0] == &k[0] }) ||
			slices.ContainsFunc(sb.Pages, func(p notePage) bool { return &p.Key[0] == &k[0] })
	}
	sealed = slices.DeleteFunc(sealed, listed)
	// Stored, though its key may not be (err): memory follows the store,
	// and the next board written has a key again.
	for i := range g.blog.records[:n] {
		clear(g.blog.records[i].File)
	}
	// A fresh array: the old one, sized for every record since the last
	// snapshot, would stay.
	g.blog.records = slices.Clone(g.blog.records[n:])
	g.blog.reindex()
	// The keys of the parts and pages replaced or deleted leave memory
	// too.
	for _, old := range g.blog.parts {
		if !listed(old.Key) {
			clear(old.Key)
		}
	}
	for _, old := range g.blog.pages {
		if !listed(old.Key) {
			clear(old.Key)
		}
	}
	g.blog.parts, g.blog.pages, g.blog.covered = parts, pages, max(g.blog.covered, index)
	return err
}

// sealBoard seals sb under a new key and stores it with the parts puts
// (blobs by number), deleting the parts it no longer lists; then it keeps
// its key, which erases the previous board's. It reports whether it stored
// the board (its key may have failed still).
func (g *group) sealBoard(sb *storedBoard, puts map[uint64][]byte, pages map[uint64]store.PageWrite) (bool, error) {
	plain, err := boardEnc.Marshal(sb)
	if err != nil {
		return false, fmt.Errorf("encode the board: %w", err)
	}
	defer clear(plain)
	key := make([]byte, chacha20poly1305.KeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	blob, err := seal(key, plain, boardAAD(g.id, sb.Index))
	if err != nil {
		return false, err
	}
	w := store.BoardWrite{Board: blob, Parts: puts, Pages: pages}
	for _, p := range sb.Parts {
		if _, put := puts[p.Num]; !put {
			w.KeepParts = append(w.KeepParts, p.Num)
		}
	}
	for _, p := range sb.Pages {
		if _, put := pages[p.Num]; !put {
			w.KeepPages = append(w.KeepPages, p.Num)
		}
	}
	// The board, its parts and pages first, then its key, which erases
	// the previous key: a crash between the two leaves a board that does
	// not open, and the restart rebuilds it.
	if err := g.n.store.SaveBoard(g.id[:], w); err != nil {
		return false, err
	}
	if err := g.n.keys.store.Put(boardKeyName(g.id), key, time.Time{}); err != nil {
		// The previous key opens only the previous board, whose blob
		// may linger in store.db and lists the keys of parts and pages
		// this board wrote again without deleted records: erased (in
		// place, which a full disk allows), and the restart rebuilds.
		if derr := g.n.keys.store.Delete(boardKeyName(g.id)); derr != nil {
			err = errors.Join(err, derr)
		}
		return true, fmt.Errorf("keep the board's key: %w", err)
	}
	return true, nil
}

// boardRecords counts the records of the group's board: in memory and in
// its stored parts.
func (g *group) boardRecords() int {
	n := len(g.blog.records) + g.blog.pageRecords()
	for _, p := range g.blog.parts {
		n += p.N
	}
	return n
}
