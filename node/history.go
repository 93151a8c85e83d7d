package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// The history a member reads (issue 16: history that does not weigh on a
// node). A group keeps its newest messages opened in memory, a window of
// Config.MessageWindow of them (up to twice that between two trims), and
// reads older pages from the stored log on demand. The store holds the log
// as the raft entries, ciphertext only; a page further back is opened again
// with the sender keys this node opened the messages with when it applied
// them, which history keeps (one per member and epoch), since the group's
// key ring forgets other members' keys of past epochs and a message's key
// header travels only with the first message sealed under that key.
//
// So the memory a group takes for its messages is the window and its keys,
// whatever the length of the history, and reading a page costs what opening
// it does: one read of the stored entries and, per message, one signature
// check and one decryption.

// history is the committed messages of a group that this node has read
// (opened), as the group's goroutine lists them: the newest in memory, the
// keys to open the older ones again.
type history struct {
	msgs []Message // the window, in group order
	// under is, for each message of msgs, the key it was opened with and
	// its counter plus one (crypto.Opened.Counter): once the key is
	// deleted, or its floor passes the counter, the message leaves the
	// window (forget).
	under []heldUnder
	// byID is each message's position: its index in msgs plus base, the
	// number of messages trimmed from the front of msgs, so that a trim
	// renumbers nothing.
	byID   map[string]int
	base   int
	window int // how many messages a trim keeps
	// first is the log index of the oldest message this node read (0:
	// none yet): older messages exist before a page that starts after it.
	first uint64
	// keys are the sender keys of the messages read, which open them
	// again; never written anywhere, as the key ring's.
	keys map[crypto.KeyRef]*crypto.SenderKey
}

func newHistory(window int) history {
	return history{byID: map[string]int{}, window: window, keys: map[crypto.KeyRef]*crypto.SenderKey{}}
}

// heldUnder names the key and counter a message of the window is under.
type heldUnder struct {
	ref crypto.KeyRef
	c1  uint64
}

// add lists m, the newest message read, opened with key at counter+1 c1.
func (h *history) add(m Message, key *crypto.SenderKey, c1 uint64) {
	if h.first == 0 {
		h.first = m.Index
	}
	h.keys[key.Ref()] = key
	h.byID[m.ID] = h.base + len(h.msgs)
	h.msgs = append(h.msgs, m)
	h.under = append(h.under, heldUnder{key.Ref(), c1})
	if len(h.msgs) >= 2*h.window {
		h.trim()
	}
}

// trim drops all but the newest window messages from memory, into a new
// array so that the old one is freed.
func (h *history) trim() {
	drop := len(h.msgs) - h.window
	for _, m := range h.msgs[:drop] {
		delete(h.byID, m.ID)
	}
	h.msgs = append(make([]Message, 0, 2*h.window), h.msgs[drop:]...)
	h.under = append(make([]heldUnder, 0, 2*h.window), h.under[drop:]...)
	h.base += drop
}

// forget drops from the window the messages whose key gone reports
// deleted (for their key and counter+1), as the node's policy deletes keys
// (pruneKeys): the node no longer shows what it can no longer open. It
// returns how many it dropped.
func (h *history) forget(gone func(ref crypto.KeyRef, c1 uint64) bool) int {
	keep := 0
	for i := range h.msgs {
		if gone(h.under[i].ref, h.under[i].c1) {
			delete(h.byID, h.msgs[i].ID)
			continue
		}
		h.msgs[keep], h.under[keep] = h.msgs[i], h.under[i]
		h.byID[h.msgs[keep].ID] = h.base + keep
		keep++
	}
	dropped := len(h.msgs) - keep
	clear(h.msgs[keep:])
	h.msgs, h.under = h.msgs[:keep], h.under[:keep]
	return dropped
}

// pos returns the index in h.msgs of the message whose id is id.
func (h *history) pos(id string) (int, bool) {
	p, ok := h.byID[id]
	return p - h.base, ok
}

// get returns the message whose id is id, if it is in memory.
func (h *history) get(id string) (Message, bool) {
	if i, ok := h.pos(id); ok {
		return h.msgs[i], true
	}
	return Message{}, false
}

// pageDraft is a page of messages as the group's goroutine gathers it: the
// messages older than the window still to be opened, then the page's
// messages from memory. open finishes it on the caller's goroutine, so that
// the group's goroutine does not spend a page's signature checks.
type pageDraft struct {
	sealed []sealedMessage
	rest   []Message
	more   bool
}

// sealedMessage is a stored message to open again: its listing without the
// text, the accepted chat and the key it is sealed under.
type sealedMessage struct {
	m    Message
	c    *state.Chat
	key  *crypto.SenderKey
	note *content.Note // its changes, copied from the board
}

// open opens the draft's stored messages and returns the page. A message
// that no longer opens (it did when applied, so only a damaged store does
// that) is left out and logged.
func (d pageDraft) open(n *Node, gid crypto.GroupID) MessagePage {
	out := make([]Message, 0, len(d.sealed)+len(d.rest))
	for _, s := range d.sealed {
		opened, err := crypto.OpenMessage(s.key, gid, s.c.Sealed, s.c.Sender, s.c.ID)
		if err != nil {
			n.log.Error().Err(err).Str("group", gid.String()).Uint64("index", s.c.Index).Msg("cannot open a stored message again")
			continue
		}
		s.m.SentAt = time.Unix(0, opened.Time).UTC()
		cnt, perr := content.Parse(opened.Body)
		content.Show(&s.m, cnt, perr)
		if s.m.Kind != "" {
			continue // a change; the board knew it, so this is not reached
		}
		s.note.Decorate(&s.m, n.selfID)
		out = append(out, s.m)
	}
	return MessagePage{Messages: append(out, d.rest...), More: d.more}
}

// messagePage gathers the page of the group's messages (the committed ones
// this node read, in group order, then its queued ones) that ends right
// before the message whose id is before (the newest page when before is
// empty), at most limit long (every message before it for 0), and whether
// older ones exist. It copies only the page, from memory, and from the
// stored log what is older than the window.
func (g *group) messagePage(limit int, before string) (pageDraft, error) {
	if err := api.CheckLimit(limit); err != nil {
		return pageDraft{}, err
	}
	h := &g.hist
	// After the committed messages, those not in the group's order yet.
	queued := g.tentativeMessages()
	// The page ends among the queued messages, in the window, or before
	// a message older than the window (end, its log index).
	qEnd, cEnd := len(queued), len(h.msgs)
	end := uint64(math.MaxUint64)
	if len(h.msgs) > 0 {
		end = h.msgs[0].Index
	}
	if before != "" {
		qEnd = -1
		for i := range queued {
			if queued[i].ID == before {
				qEnd = i
				break
			}
		}
		if qEnd < 0 {
			qEnd = 0
			if i, ok := h.pos(before); ok {
				cEnd = i
			} else if g.isChange(before) {
				// In the log, but not listed: no page ends there.
				return pageDraft{}, fmt.Errorf("%q is the id of a reaction, an edit or a delete, not of a message: %w", before, api.ErrInvalid)
			} else if idx, ok := g.chatIndex(before); ok {
				// Not read here, or older than the window.
				cEnd = sort.Search(len(h.msgs), func(i int) bool { return h.msgs[i].Index >= idx })
				end = min(end, idx)
			} else {
				return pageDraft{}, fmt.Errorf("no message %q in this group: %w", before, api.ErrUnknownMessage)
			}
		}
	}
	if limit == 0 {
		limit = math.MaxInt
	}
	qStart := max(0, qEnd-limit)
	rest := limit - (qEnd - qStart)
	cStart := max(0, cEnd-rest)
	rest -= cEnd - cStart
	d := pageDraft{rest: make([]Message, 0, cEnd-cStart+qEnd-qStart)}
	d.rest = append(d.rest, h.msgs[cStart:cEnd]...)
	for i := range d.rest {
		g.decorate(&d.rest[i])
	}
	d.rest = append(d.rest, queued[qStart:qEnd]...)
	// Messages older than the window, from the store.
	olderOnDisk := h.first != 0 && end != math.MaxUint64 && end > h.first
	if cStart == 0 && rest > 0 && olderOnDisk {
		var err error
		if d.sealed, err = g.readSealed(end, rest); err != nil {
			return pageDraft{}, err
		}
	}
	// Whether this node read messages older than the page's first (h.first
	// is the oldest, and on disk whatever the window holds).
	switch {
	case len(d.sealed) > 0:
		d.more = d.sealed[0].c.Index > h.first
	case cStart < cEnd:
		d.more = h.msgs[cStart].Index > h.first
	case qStart > 0:
		d.more = true
	case qEnd > qStart:
		// Only queued messages: a committed one is older.
		d.more = cEnd > 0 || olderOnDisk
	}
	return d, nil
}

// page returns a page of the group's messages (see messagePage), opening
// those read from the store on the caller's goroutine.
func (g *group) page(limit int, before string) (MessagePage, error) {
	var (
		d    pageDraft
		derr error
	)
	var events []api.MemberEvent
	var ns namesakes
	if err := g.do(context.Background(), func() {
		if d, derr = g.messagePage(limit, before); derr == nil {
			events = g.pageEvents(d, before)
			ns = g.namesakes()
		}
	}); err != nil {
		return MessagePage{}, err
	}
	if derr != nil {
		return MessagePage{}, derr
	}
	p := d.open(g.n, g.id)
	p.Events = events
	// Flagged as of now, as the page names each author by its name now.
	ns.markAll(p.Messages)
	ns.markEvents(p.Events)
	return p, nil
}

// pageEvents returns the membership changes a page covers: from its first
// committed message (the group's start on the oldest page) to the message
// it ends before (now on the newest page), by log index. A member that
// left and joined again shows only its last join: the state keeps no more.
func (g *group) pageEvents(d pageDraft, before string) []api.MemberEvent {
	hi := uint64(math.MaxUint64)
	if idx, ok := g.chatIndex(before); ok {
		hi = idx
	}
	lo := uint64(0)
	if d.more {
		switch {
		case len(d.sealed) > 0:
			lo = d.sealed[0].c.Index
		default:
			lo = hi
			for _, m := range d.rest {
				if m.State == StateCommitted {
					lo = m.Index
					break
				}
			}
		}
	}
	var out []api.MemberEvent
	add := func(m *state.Member) {
		if m.JoinedAt >= lo && m.JoinedAt < hi && m.JoinedAt > 0 {
			kind := api.EventJoined
			if m.ID == g.st.Creator && m.JoinedAt == 1 {
				kind = api.EventCreated
			}
			out = append(out, api.MemberEvent{Index: m.JoinedAt, Kind: kind, Member: g.idText(m.ID), Name: m.Name, Keeper: m.Keeper})
		}
		if m.LeftAt >= lo && m.LeftAt < hi && m.LeftAt > 0 {
			out = append(out, api.MemberEvent{Index: m.LeftAt, Kind: api.EventLeft, Member: g.idText(m.ID), Name: m.Name, Keeper: m.Keeper})
		}
	}
	for _, m := range g.st.Members {
		add(m)
	}
	for _, m := range g.st.Former {
		add(m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// chatIndex returns the log index of the group's chat message whose id is
// id, read here or not.
func (g *group) chatIndex(id string) (uint64, bool) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return 0, false
	}
	idx, ok := g.st.MsgIDs.Lookup([16]byte(b))
	return idx, ok
}

// isChange reports whether id is the id of a change (a reaction, an edit
// or a delete) the board applied: a chat message of the log that is not
// listed.
func (g *group) isChange(id string) bool {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return false
	}
	_, change := g.noteOf([16]byte(b))
	return change
}

// pageChunk is how many log entries readSealed reads at a time at least.
const pageChunk = 256

// readSealed reads, from the stored log before the index end, the newest
// limit messages this node read, with their keys: the entries whose chat the
// state accepted at their index and whose key history holds. It reads back
// from end a chunk at a time, down to the first message read.
func (g *group) readSealed(end uint64, limit int) ([]sealedMessage, error) {
	h := &g.hist
	var chunks [][]sealedMessage
	n := 0
	for hi := end; hi > h.first && n < limit; {
		lo := max(h.first, hi-min(hi-h.first, uint64(max(pageChunk, 2*(limit-n)))))
		ents, err := g.n.store.Entries(g.id[:], lo, hi, math.MaxUint64)
		if err != nil {
			return nil, fmt.Errorf("read older messages: %w", err)
		}
		var got []sealedMessage
		for _, e := range ents {
			if s, ok := g.sealedAt(e); ok {
				got = append(got, s)
			}
		}
		got = got[max(0, len(got)-(limit-n)):]
		chunks = append(chunks, got)
		n += len(got)
		hi = lo
	}
	out := make([]sealedMessage, 0, n)
	for i := len(chunks) - 1; i >= 0; i-- {
		out = append(out, chunks[i]...)
	}
	return out, nil
}

// sealedAt returns the message in the stored entry e, if it is one this node
// read: a chat message the state accepted at e's index, sealed under a key
// history holds.
func (g *group) sealedAt(e *pb.Entry) (sealedMessage, bool) {
	if e.GetType() != pb.EntryNormal || len(e.GetData()) == 0 {
		return sealedMessage{}, false
	}
	c := g.st.AcceptedChat(e.GetIndex(), e.GetData())
	if c == nil {
		return sealedMessage{}, false
	}
	if g.learn(c.ID, c.Index); g.board.IsChange(c.ID) {
		return sealedMessage{}, false
	}
	key := g.hist.keys[crypto.KeyRef{Sender: c.Sender, Epoch: c.Epoch, ID: c.KeyID}]
	if key == nil {
		return sealedMessage{}, false // sealed before this node was given a key
	}
	m := Message{
		ID:      hex.EncodeToString(c.ID[:]),
		Index:   c.Index,
		State:   StateCommitted,
		GroupID: g.id.String(),
	}
	// The display name the state has now, as rebuildHistory lists it.
	author := g.st.MemberOrFormer(c.Sender)
	if author != nil {
		m.Author, m.Name = g.idText(author.ID), author.Name
	}
	return sealedMessage{m: m, c: c, key: key, note: g.board.Note(c.ID)}, true
}
