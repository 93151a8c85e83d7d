package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/demes/demes/api"
)

// Receipts (docs/PROTOCOL.md, "Receipts"): which members hold a message and
// which have read it, as its author sees them.
//
// Delivered needs nothing new. Every member states its applied index, with
// the chain head there, in the signed statement its pings carry (fork.go),
// and this node keeps each member's latest statement that matched its own
// history (heard). A member whose statement reaches a message's index holds
// that message on its device: the statement is signed by that member and
// checked against this node's own chain, so nobody else (the host included)
// can claim it for them.
//
// Read is what the person does. The UI marks a group read through the
// newest message on screen ([Node.MarkRead]); the node stores the mark and,
// when its person shares read receipts, sends it in the flags of every ping
// and pong (pingRead), signed with them, directly to each member. A
// receiver keeps the highest mark each member sent, so a replayed old ping
// cannot lower one. A person who turns read receipts off sends no mark and
// sees nobody's, as in Signal.

// prefReadReceipts is the name of the read-receipts preference in the store.
const prefReadReceipts = "read_receipts"

// readMarks are the other members' read marks, as their pings told this
// node. Safe for concurrent use: pings arrive on the transport's goroutines.
type readMarks struct {
	mu sync.Mutex
	m  map[[32]byte]uint64
}

// note records member k's mark if it is higher than the one kept.
func (r *readMarks) note(k [32]byte, index uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if index <= r.m[k] {
		return false
	}
	if r.m == nil {
		r.m = map[[32]byte]uint64{}
	}
	r.m[k] = index
	return true
}

// get returns member k's mark, 0 if none.
func (r *readMarks) get(k [32]byte) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}

// prefSharedFrom is the name, before the group id, under which the store
// keeps a group's mark at the time read receipts were last turned on.
const prefSharedFrom = "read_receipts_from/"

// loadReadMark reads this node's own mark back when the group starts, and
// the mark at which its person last turned read receipts on.
func (g *group) loadReadMark() {
	idx, err := g.n.store.ReadMark(g.id[:])
	if err != nil {
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot read where this group was read up to")
		return
	}
	g.readMark.Store(idx)
	from, err := g.n.store.Pref(prefSharedFrom + g.id.String())
	if err != nil || (from != nil && len(from) != 8) {
		// Unknown: share nothing read before now, rather than what
		// may have been read while receipts were off.
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot read since when read receipts are shared; sharing only later reading")
		g.sharedFrom.Store(idx)
		return
	}
	if from != nil {
		g.sharedFrom.Store(binary.BigEndian.Uint64(from))
	}
}

// shareFromNow records that this node's person turned read receipts on
// with the group read through its current mark: reading before then,
// which may have been while receipts were off, is never sent.
func (g *group) shareFromNow() error {
	g.readMu.Lock()
	defer g.readMu.Unlock()
	idx := g.readMark.Load()
	if idx == g.sharedFrom.Load() {
		return nil
	}
	if err := g.n.store.SavePref(prefSharedFrom+g.id.String(), binary.BigEndian.AppendUint64(nil, idx)); err != nil {
		return err
	}
	g.sharedFrom.Store(idx)
	return nil
}

// noteRead keeps member k's read mark from a ping or pong, if k is a
// member that reads: a former member's, a stranger's or a keeper's (which
// reads nothing) is no receipt. Safe from any goroutine.
func (g *group) noteRead(k [32]byte, x pingExtra) {
	if x.flags&pingRead == 0 || k == g.n.self.Sign {
		return
	}
	if m, ok := g.view.Load().members[k]; !ok || m.keeper {
		return
	}
	if g.reads.note(k, x.read) && g.n.readReceipts.Load() {
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
}

// ownReadMark is what this node's pings to member to say of its person's
// reading: the mark, when read receipts are shared, and to a member that
// reads (a keeper reads nothing, so it learns nothing of who reads what).
func (g *group) ownReadMark(x *pingExtra, to [32]byte) {
	if !g.n.readReceipts.Load() || g.view.Load().members[to].keeper {
		return
	}
	if idx := g.readMark.Load(); idx > g.sharedFrom.Load() {
		x.flags |= pingRead
		x.read = idx
	}
}

// MarkRead records that this node's person has read the group groupID
// through the committed message messageID (and so every message before it),
// and returns the mark, which never goes back: marking an older message
// changes nothing. The members learn it with the next pings, if read
// receipts are shared.
func (n *Node) MarkRead(ctx context.Context, groupID, messageID string) (uint64, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return 0, err
	}
	var (
		idx uint64
		ok  bool
	)
	if err := g.do(ctx, func() { idx, ok = g.chatIndex(messageID) }); err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("mark read: message %q is not in the group's order here: %w", messageID, ErrNotFound)
	}
	g.readMu.Lock()
	defer g.readMu.Unlock()
	if cur := g.readMark.Load(); idx <= cur {
		return cur, nil
	}
	if err := n.store.SaveReadMark(g.id[:], idx); err != nil {
		return 0, fmt.Errorf("mark read: %w", err)
	}
	g.readMark.Store(idx)
	n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	return idx, nil
}

// ReadReceipts reports whether this node's person shares read receipts
// (and so sees the members').
func (n *Node) ReadReceipts() bool { return n.readReceipts.Load() }

// SetReadReceipts turns read receipts on or off for every group, and keeps
// the choice across restarts. Turning them on shares only what the person
// reads from then on: a mark set while they were off is not sent.
func (n *Node) SetReadReceipts(on bool) error {
	v := []byte{0}
	if on {
		v[0] = 1
		if !n.readReceipts.Load() {
			for _, g := range n.sortedGroups() {
				if err := g.shareFromNow(); err != nil {
					return fmt.Errorf("set read receipts: %w", err)
				}
			}
		}
	}
	if err := n.store.SavePref(prefReadReceipts, v); err != nil {
		return fmt.Errorf("set read receipts: %w", err)
	}
	n.readReceipts.Store(on)
	n.events.publish(Event{Kind: "status"})
	return nil
}

// loadPrefs reads the person's preferences when the node opens. Read
// receipts are on unless turned off, as in most messengers.
func (n *Node) loadPrefs() error {
	v, err := n.store.Pref(prefReadReceipts)
	if err != nil {
		return fmt.Errorf("read preferences: %w", err)
	}
	n.readReceipts.Store(len(v) != 1 || v[0] != 0)
	return nil
}

// receipts fills in a member's receipts for status: how far its device
// holds the group's history and, when read receipts are shared, how far its
// person has read it.
func (g *group) receipts(v *view, m *api.Member, k [32]byte) {
	if k == g.n.self.Sign {
		m.HoldsThrough = v.applied
		m.ReadThrough = g.readMark.Load()
		return
	}
	m.HoldsThrough = v.holds[k]
	if g.n.readReceipts.Load() {
		m.ReadThrough = g.reads.get(k)
	}
}
