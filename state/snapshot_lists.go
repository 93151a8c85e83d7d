package state

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sort"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

// Reading a snapshot's lists back (Restore): each list is checked whole
// (order, bounds, the indexes it may name) before the state trusts it.

// msgIDsIn reads the packed list of accepted messages into ids: whole
// items, ids in strictly increasing order, indexes after the genesis and
// not beyond the applied index. (A varint in a longer form than the
// shortest is refused by Restore's check that the state encodes back to
// the same bytes.)
func msgIDsIn(ids *MessageIDs, packed []byte, applied uint64) error {
	sorted, err := idsIn(packed, applied)
	if err != nil {
		return err
	}
	return ids.restore(sorted)
}

// idsIn reads a packed list of accepted messages, checked as msgIDsIn says.
func idsIn(packed []byte, applied uint64) ([]idAt, error) {
	var prev []byte
	var sorted []idAt
	for b := packed; len(b) > 0; {
		if len(b) < 17 || len(sorted) >= MaxSnapshotItems {
			return nil, bad("a list of accepted messages cut short or too long")
		}
		id := b[:16]
		index, n := binary.Uvarint(b[16:])
		if n <= 0 {
			return nil, bad("a list of accepted messages with a malformed index")
		}
		b = b[16+n:]
		if err := ascending(prev, id, "message ids"); err != nil {
			return nil, err
		}
		prev = id
		if index == 0 || index > applied {
			return nil, bad("message accepted at %d, applied index %d", index, applied)
		}
		sorted = append(sorted, idAtOf([16]byte(id), index))
	}
	return sorted, nil
}

func ascending(prev, cur []byte, what string) error {
	if prev != nil && bytes.Compare(prev, cur) >= 0 {
		return bad("%s out of order or repeated", what)
	}
	return nil
}

// chainsIn reads a list of heads: in increasing index order, after the
// genesis, not beyond the applied index.
func chainsIn(ws []chainWire, applied uint64, what string) ([]crypto.Chain, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]crypto.Chain, 0, len(ws))
	for i, w := range ws {
		c, err := chainIn(w, applied)
		if err != nil {
			return nil, err
		}
		if c.Index == 0 || (i > 0 && c.Index <= out[i-1].Index) {
			return nil, bad("%s out of order at %d", what, c.Index)
		}
		out = append(out, c)
	}
	return out, nil
}

// checkHeads checks that the kept heads are those keepHead would have kept:
// the chain is the last head (the empty chain without one), the window is
// full once a head was dropped, and the anchors are exactly the first head
// of each span of indexes, as far as the heads still show.
func (s *State) checkHeads() error {
	switch {
	case len(s.heads) > HeadWindow:
		return bad("%d chain heads, the state keeps %d", len(s.heads), HeadWindow)
	case len(s.heads) > 0 && s.heads[len(s.heads)-1] != s.Chain:
		return bad("the chain at %d is not its last head", s.Chain.Index)
	case len(s.heads) == 0 && (s.Chain != crypto.NewChain(s.Group) || len(s.anchors) > 0):
		return bad("a chain without heads")
	case len(s.heads) == 0:
		return nil
	case len(s.anchors) == 0 || s.anchors[0].Index > s.heads[0].Index:
		return bad("chain heads without their first anchor")
	case s.anchors[0] != s.heads[0] && len(s.heads) < HeadWindow:
		return bad("%d chain heads kept of more", len(s.heads))
	}
	// Replay keepHead over the kept heads from the anchors before them.
	i := sort.Search(len(s.anchors), func(i int) bool { return s.anchors[i].Index >= s.heads[0].Index })
	again := &State{anchors: slices.Clone(s.anchors[:i])}
	for _, h := range s.heads {
		again.keepHead(h)
	}
	if !slices.Equal(again.anchors, s.anchors) {
		return bad("anchor heads that do not match the chain heads")
	}
	return nil
}

func chainIn(c chainWire, applied uint64) (crypto.Chain, error) {
	if len(c.Head) != 32 || c.Index > applied {
		return crypto.Chain{}, bad("chain head of %d bytes at %d, applied index %d", len(c.Head), c.Index, applied)
	}
	return crypto.Chain{Index: c.Index, Head: [32]byte(c.Head)}, nil
}

// membersIn fills into the members of ws, checking them: former members have
// left (LeftAt set), current ones have not.
func membersIn(into map[[32]byte]*Member, ws []memberWire, applied uint64, joins int, former bool) error {
	var prev []byte
	for _, mw := range ws {
		id, err := identity.PublicIDFromBytes(mw.ID)
		if err != nil {
			return bad("member: %v", err)
		}
		if err := ascending(prev, id.Sign[:], "members"); err != nil {
			return err
		}
		prev = id.Sign[:]
		switch {
		case mw.RaftID != RaftID(id.Sign):
			return bad("member %x with raft id %x", id.Sign[:4], mw.RaftID)
		case mw.JoinedAt == 0 || mw.JoinedAt > applied || mw.LeftAt > applied:
			return bad("member %x joined at %d, left at %d, applied index %d", id.Sign[:4], mw.JoinedAt, mw.LeftAt, applied)
		case former != (mw.LeftAt != 0), former && mw.LeftAt <= mw.JoinedAt:
			return bad("member %x left at %d", id.Sign[:4], mw.LeftAt)
		case mw.Order < 0 || mw.Order >= joins:
			return bad("member %x of join order %d, %d joins", id.Sign[:4], mw.Order, joins)
		}
		if former && mw.Admin {
			return bad("former member %x is an admin", id.Sign[:4])
		}
		if q := mw.Quota; q.MinuteStart > q.Time || q.DayStart > q.Time {
			return bad("member %x with a quota window that starts after its last message", id.Sign[:4])
		}
		var pk []byte
		if len(mw.Prekey) > 0 {
			if former || mw.Keeper {
				return bad("member %x is a former member or a keeper and has a prekey", id.Sign[:4])
			}
			p, err := prekey.Decode(mw.Prekey)
			if err != nil || p.Owner != id.Sign {
				return bad("member %x with a prekey that is not its own or does not decode", id.Sign[:4])
			}
			pk = mw.Prekey
		}
		into[id.Sign] = &Member{ID: id, RaftID: mw.RaftID, Name: mw.Name, URL: mw.URL, Voter: mw.Voter,
			Admin: mw.Admin, JoinedAt: mw.JoinedAt, LeftAt: mw.LeftAt, Order: mw.Order, Counter: mw.Counter, Time: mw.Time,
			Quota: usageIn(mw.Quota), Keeper: mw.Keeper, Prekey: pk, Rekeyed: mw.Rekeyed}
	}
	return nil
}
