package node

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

// The stored board (issue 16, "a stored applied index, so a restart applies
// and opens nothing it already did"). A group's board (changes.go) and the
// blobs its file messages name (files.go) are derived from messages of any
// age; without a stored copy, a restart from a snapshot opens every message
// of the log before it again to find them (rebuildHistory). So each time a
// group stores a snapshot, it stores beside it, at the snapshot's index, what
// it derived from the messages up to there: every change and file message
// it read, as opened (boardRecord), and the index of the first message it
// read. A restart from that snapshot replays these records into a new board
// and opens only the newest messages before the snapshot, those of the
// window in memory, read back from the end of the log (restoreHistory).
//
// At rest the stored board is sealed (XChaCha20-Poly1305) under a fresh
// random key for every write, with the group id and the snapshot's index as
// associated data, so that a board cannot be moved to another group or
// another snapshot. The key is kept in the node's key store (keys.go, name
// "board/<group>"), encrypted with the identity; writing the next one
// erases it there for real (package keystore), which leaves the previous
// sealed board, whose bbolt pages may linger in store.db until reused,
// unreadable.
//
// Forward secrecy (issue 19): a record remembers the sender key its message
// was sealed under, and is kept only while the key store keeps that key.
// When the retention policy deletes keys (pruneKeys), the group drops the
// records of messages under them from memory and writes the stored board
// again without them, under a new key; a restart replays only the records
// whose keys the key store still holds, as a full rebuild opens only those
// messages.
//
// Anything wrong with the stored board (none: an older store; no key, a
// board of another index, one that does not open or decode) makes the
// restart rebuild it from the whole log, as before, logged once.

// boardRecord is a change or file message this node read, as it applied it:
// enough to apply it to a board again without the log.
type boardRecord struct {
	Index  uint64                 `cbor:"1,keyasint"`
	ID     [16]byte               `cbor:"2,keyasint"`
	Sender [32]byte               `cbor:"3,keyasint"`
	Epoch  uint64                 `cbor:"4,keyasint"`
	KeyID  [crypto.KeyIDSize]byte `cbor:"5,keyasint"`
	Author string                 `cbor:"6,keyasint"` // the author's public id, as applyContent had it
	// A change's content (content.Content without the file), as it was
	// opened; a file message's body as it was opened.
	Kind   uint8  `cbor:"7,keyasint"`
	Ref    []byte `cbor:"8,keyasint"` // empty or 16 bytes
	Text   string `cbor:"9,keyasint"`
	Emoji  string `cbor:"10,keyasint"`
	File   []byte `cbor:"11,keyasint"`
	Target string `cbor:"12,keyasint"` // the author of the message it changes, as looked up then
	Found  bool   `cbor:"13,keyasint"` // whether that lookup found it
	// Counter is the message's counter in its key's chain plus one (0:
	// a message of a version without one): the record is dropped once
	// its key's floor passed it (keyfloor.go).
	Counter uint64 `cbor:"14,keyasint,omitempty"`
	// TargetIndex is the log index of the message a change changes, as
	// looked up then (0: none found, or a record of a board before
	// version 3): its note is stored under it (boardnotes.go).
	TargetIndex uint64 `cbor:"15,keyasint,omitempty"`
}

func (r *boardRecord) keyRef() crypto.KeyRef {
	return crypto.KeyRef{Sender: r.Sender, Epoch: r.Epoch, ID: r.KeyID}
}

// storedBoard is the plaintext of a stored board.
type storedBoard struct {
	Version int           `cbor:"1,keyasint"`
	Index   uint64        `cbor:"2,keyasint"` // the snapshot's
	First   uint64        `cbor:"3,keyasint"` // history.first, if at or before Index
	Records []boardRecord `cbor:"4,keyasint"`
	// Marks are when this node saw the counters of the group's sender
	// keys (keyfloor.go): a restart from the snapshot does not see the
	// messages before it again.
	Marks []boardMarks `cbor:"5,keyasint,omitempty"`
	// Parts are the stored parts that hold the records, oldest first
	// (boardparts.go); a board of version 1 holds its records itself.
	// From version 3 on, the parts hold the records of file messages only.
	Parts []boardPart `cbor:"6,keyasint,omitempty"`
	// Pages are the stored pages that hold the notes, from version 3 on:
	// the records of change messages (boardnotes.go).
	Pages []notePage `cbor:"7,keyasint,omitempty"`
}

// storedBoardVersion is the version of the boards this node writes: 3,
// whose change records are in pages of notes, its file records in parts.
// It reads versions 1 (every record in the board itself, written again
// whole at each snapshot) and 2 (every record in parts) too, and stores
// their records as version 3 at once.
const storedBoardVersion = 3

// boardLog is what a group keeps to store its board: the records of the
// change and file messages it applied, in log order.
type boardLog struct {
	// records are the records not stored yet, in log order: those after
	// the last snapshot whose board was stored.
	records []boardRecord
	// parts are the stored parts that hold the other file records
	// (boardparts.go), and pages the stored pages that hold the other
	// change records (boardnotes.go), by number, as the last stored board
	// lists them.
	parts []boardPart
	pages map[uint64]notePage
	// byTarget indexes the change records of records by the log index of
	// the message each changes, and changeIDs their own ids (reindex).
	byTarget  map[uint64][]int
	changeIDs map[[16]byte]struct{}
	// covered is the index up to which the records and the parts hold
	// every record: those of messages at or before it are not recorded
	// again (the window read again after a restart).
	covered uint64
	// opened counts the messages opened to restore the history before the
	// snapshot this run started from (for tests: restoreHistory opens at
	// most a window of them, rebuildHistory every one).
	opened int
	// restored tells whether this run started from a stored board.
	restored bool
	// damaged tells whether a note of a stored page failed to read
	// (logged once).
	damaged bool
	// sealed counts the records this run sealed into parts (for tests:
	// each is written again about log2 times, not at each snapshot).
	sealed int
}

// record notes c, a change or file message by author whose content is cnt
// (opened from body), applied now; target and found are what the lookup of
// the message a change changes gave, at is that message's index (0 if
// none).
func (l *boardLog) record(c *state.Chat, author string, cnt content.Content, body []byte, target string, found bool, at uint64) {
	if c.Index <= l.covered || (len(l.records) > 0 && l.records[len(l.records)-1].Index >= c.Index) {
		return
	}
	r := boardRecord{Index: c.Index, ID: c.ID, Sender: c.Sender, Epoch: c.Epoch, KeyID: c.KeyID, Author: author, Target: target, Found: found,
		Counter: crypto.SealedCounter(c.Sealed), TargetIndex: at}
	if cnt.Kind == content.File {
		r.File = append([]byte(nil), body...)
	} else {
		r.Kind, r.Text, r.Emoji = uint8(cnt.Kind), cnt.Text, cnt.Emoji
		if cnt.Ref != nil {
			r.Ref = append([]byte(nil), cnt.Ref[:]...)
		}
	}
	l.records = append(l.records, r)
	l.index(len(l.records) - 1)
}

// content returns the change r records.
func (r *boardRecord) content() content.Content {
	c := content.Content{Kind: content.Kind(r.Kind), Text: r.Text, Emoji: r.Emoji}
	if len(r.Ref) == 16 {
		c.Ref = (*[16]byte)(r.Ref)
	}
	return c
}

var boardEnc, boardDec = func() (cbor.EncMode, cbor.DecMode) {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	// The board is this node's own, sealed and authenticated: the limits
	// are those of a long history, not of a stranger's input.
	dec, err := cbor.DecOptions{MaxArrayElements: 1 << 30, MaxMapPairs: 1 << 30, MaxNestedLevels: 8}.DecMode()
	if err != nil {
		panic(err)
	}
	return enc, dec
}()

// boardAAD binds a sealed board to its group and snapshot index.
func boardAAD(gid crypto.GroupID, index uint64) []byte {
	aad := append([]byte("DeMeS stored board v1\x00"), gid[:]...)
	return binary.BigEndian.AppendUint64(aad, index)
}

func boardKeyName(gid crypto.GroupID) string { return "board/" + gid.String() }

// errNoBoard: the store holds no board for the group (an older store, or
// no snapshot taken since boards were stored).
var errNoBoard = errors.New("no stored board")

// loadBoard reads and opens the group's board stored at the snapshot index.
func (g *group) loadBoard(index uint64) (*storedBoard, error) {
	sb, plain, err := openBoard(g.n.store, g.n.keys.store, g.id, index)
	clear(plain)
	return sb, err
}

// openBoard reads, opens and decodes the board of group gid stored in st
// at the snapshot index, with its key in ks, and returns it and its
// plaintext, which the caller clears.
func openBoard(st *store.Store, ks interface{ Get(string) ([]byte, bool) }, gid crypto.GroupID, index uint64) (*storedBoard, []byte, error) {
	blob, err := st.LoadBoard(gid[:])
	if err != nil {
		return nil, nil, err
	}
	key, ok := ks.Get(boardKeyName(gid))
	if blob == nil || !ok {
		return nil, nil, errNoBoard
	}
	defer clear(key)
	plain, err := openSealed(key, blob, boardAAD(gid, index))
	if err != nil {
		return nil, nil, fmt.Errorf("the stored board does not open at the snapshot's index %d (damaged, or of another index): %w", index, err)
	}
	var sb storedBoard
	if err := boardDec.Unmarshal(plain, &sb); err != nil {
		clear(plain)
		return nil, nil, fmt.Errorf("decode the stored board: %w", err)
	}
	if sb.Version < 1 || sb.Version > storedBoardVersion || sb.Index != index || sb.Version == 1 && len(sb.Parts) > 0 || sb.Version < 3 && len(sb.Pages) > 0 {
		clear(plain)
		return nil, nil, fmt.Errorf("a stored board of version %d at %d, want version 1 to %d at %d", sb.Version, sb.Index, storedBoardVersion, index)
	}
	return &sb, plain, nil
}

// seal seals plain under key (XChaCha20-Poly1305, a random nonce first).
func seal(key, plain, aad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	blob := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+aead.Overhead())
	if _, err := rand.Read(blob); err != nil {
		return nil, err
	}
	return aead.Seal(blob, blob, plain, aad), nil
}

// openSealed opens what seal sealed.
func openSealed(key, blob, aad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("the key: %w", err)
	}
	if len(blob) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%d bytes, too short", len(blob))
	}
	return aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], aad)
}

// restoreHistory rebuilds, for a state restored from the snapshot at upto,
// what this node derived from the messages up to there (see
// rebuildHistory): from the stored board when it can, else from the whole
// log.
func (g *group) restoreHistory(first, upto uint64) error {
	// The messages before the snapshot are of any epoch, and the restored
	// configuration has just had the ring forget the past epochs' keys
	// (epochChanged): the keys this node kept open them again, as they did
	// when it applied them. Without them another member's message of a
	// past epoch, in the window but without the key header, which travels
	// with the first message under a key only, was left out of the window
	// while an older one stayed, and no page listed it again.
	for _, k := range g.hist.keys {
		g.keys.Add(k)
	}
	defer g.forgetPastKeys()
	sb, err := g.loadBoard(upto)
	skipped := 0
	if err == nil {
		skipped, err = g.replayBoard(sb)
	}
	if err != nil {
		ev := g.n.log.Warn()
		if errors.Is(err, errNoBoard) {
			ev = g.n.log.Info()
		}
		ev.Err(err).Str("group", g.id.String()).Uint64("index", upto).
			Msg("no usable stored board: reading the whole log before the snapshot to rebuild it")
		// A board that did not open may still be one its key opens (a
		// crash between storing a board and its key): the key goes.
		if err := g.n.keys.store.Delete(boardKeyName(g.id)); err != nil {
			g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot delete the key of an unusable stored board")
		}
		if sb != nil {
			for i := range sb.Parts {
				clear(sb.Parts[i].Key) // the parts and pages go with the board
			}
			for i := range sb.Pages {
				clear(sb.Pages[i].Key)
			}
		}
		g.forgetNotes()
		g.blog = boardLog{}
		if err := g.rebuildHistory(first, upto); err != nil {
			return err
		}
		// The next restart need not read it all again.
		g.saveBoard(upto)
		return nil
	}
	g.blog.covered, g.blog.restored = upto, true
	g.hist.first = sb.First
	g.n.keys.restoreMarks(g.id, sb.Marks)
	if skipped > 0 || sb.Version < storedBoardVersion {
		// Records of keys deleted since the board was stored (while
		// the node was down): not kept on disk either. A board of
		// an older version is stored as this version.
		g.saveBoard(upto)
	}
	if g.hist.first != 0 {
		// The window: the newest messages before the snapshot, read back
		// from its end.
		sealed, err := g.readSealed(upto+1, g.hist.window)
		if err != nil {
			return err
		}
		for _, s := range sealed {
			author := g.st.MemberOrFormer(s.c.Sender)
			g.blog.opened++
			g.deliver(s.c, author)
		}
	}
	return nil
}

// replayBoard notes the files that the file records of sb name, as
// applying their messages did, and takes the pages of notes it lists
// (restorePages); the board in memory learns the notes when asked
// (boardnotes.go). The records of a board of an older version, whose parts
// hold change records too, are kept in memory, to be stored as this
// version at once. It returns how many records, and pages, it found that
// the key policy no longer keeps.
func (g *group) replayBoard(sb *storedBoard) (skipped int, err error) {
	var names sharedNames
	last := uint64(0)
	older := sb.Version < storedBoardVersion
	replay := func(records []boardRecord) error {
		for i := range records {
			r := &records[i]
			if r.Index <= last || r.Index > sb.Index {
				return fmt.Errorf("the stored board's records are out of order at %d", r.Index)
			}
			last = r.Index
			if len(r.File) == 0 && !older {
				return fmt.Errorf("a part of the stored board holds the change at %d", r.Index)
			}
			names.share(r)
			if !g.keeps(r) {
				skipped++
				continue // the key store deleted its key: forgotten, as the message
			}
			c := &state.Chat{Index: r.Index, ID: r.ID, Sender: r.Sender, Epoch: r.Epoch, KeyID: r.KeyID}
			if len(r.File) > 0 {
				if cnt, err := content.Parse(r.File); err == nil && cnt.Kind == content.File {
					g.noteFile(c, r.Author, cnt.File)
				}
			} else if len(r.Ref) == 16 && r.TargetIndex == 0 {
				// Stored before version 3: where its target is.
				if idx, ok := g.st.MsgIDs.Lookup([16]byte(r.Ref)); ok && idx < r.Index {
					r.TargetIndex = idx
				}
			}
			if older {
				g.blog.records = append(g.blog.records, *r)
			}
		}
		return nil
	}
	for i := range sb.Parts {
		p := &sb.Parts[i]
		records, err := g.loadPart(p)
		if err != nil {
			return 0, err
		}
		p.keys = partKeys(records)
		if err := replay(records); err != nil {
			return 0, err
		}
	}
	// A board of version 1 holds the records itself.
	if err := replay(sb.Records); err != nil {
		return 0, err
	}
	if older {
		// Every record is in memory, to be stored again: the old
		// parts go with the next board.
		for i := range sb.Parts {
			clear(sb.Parts[i].Key)
		}
		sb.Parts = nil
	}
	stale, err := g.restorePages(sb.Pages)
	if err != nil {
		return 0, err
	}
	g.blog.parts = sb.Parts
	g.blog.reindex()
	return skipped + stale, nil
}

// forgetDeleted drops the records of messages sealed under keys the key
// store no longer holds, or below their keys' floors (pruneKeys), from
// memory and from the stored parts (boardparts.go), which it writes again
// under new keys with the board of the latest snapshot, so that neither
// memory nor disk keeps what the retention policy deleted.
func (g *group) forgetDeleted() {
	if !g.dropsAny() {
		return
	}
	g.blog.records = g.keptOnly(g.blog.records)
	// The notes in memory may hold what was deleted: learnt again from
	// what is kept.
	g.blog.reindex()
	g.forgetNotes()
	if g.snapIndex != 0 {
		g.saveBoard(g.snapIndex)
	}
}

// dropsAny reports whether the records in memory, or the stored parts or
// pages, hold any the key policy no longer keeps.
func (g *group) dropsAny() bool {
	for i := range g.blog.records {
		if !g.keeps(&g.blog.records[i]) {
			return true
		}
	}
	if slices.ContainsFunc(g.blog.parts, func(p boardPart) bool { return !g.keepsAll(&p) }) {
		return true
	}
	for _, p := range g.blog.pages {
		if !g.keepsKeys(p.keys) {
			return true
		}
	}
	return false
}

// sharedNames keeps one copy of each author id and emoji the records of a
// stored board name: decoded, each record has copies of its own, which the
// board's notes would then keep for as long as the group lives
// (BenchmarkBoardMemory/stored: 207 bytes a reaction, 139 with them shared).
type sharedNames map[string]string

// share points r's author, target and emoji at the copies already kept.
func (ns *sharedNames) share(r *boardRecord) {
	if *ns == nil {
		*ns = sharedNames{}
	}
	for _, s := range []*string{&r.Author, &r.Target, &r.Emoji} {
		if *s == "" {
			continue
		}
		if kept, ok := (*ns)[*s]; ok {
			*s = kept
		} else {
			(*ns)[*s] = *s
		}
	}
}
