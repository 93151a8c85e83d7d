package node

import (
	"encoding/hex"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/state"
)

// Key links (crypto/prekey/link.go; docs/PROTOCOL.md, "Key links"): the
// sender's end. A group seals its key headers over a link to each member's
// prekey once the member surely holds the link's root, and in a full X-Wing
// stanza, which starts or carries a link, otherwise. A header at 100
// members is then about 12 KB instead of 122 KB, except the first after a
// member's new prekey, a restart, a rekey, or a link's renewal.

// linkRenewAfter is how long a link is used before a full stanza starts a
// new one: the post-quantum secret a sender shares with a recipient is
// refreshed at least daily even when neither rotates its prekey. (A
// recipient's weekly prekey, a restart and a rekey start new links too.)
const linkRenewAfter = 24 * time.Hour

// maxCarriers bounds the keys a pending link remembers (linkState).
const maxCarriers = 8

// linkState is this node's end of a link to one member's prekey, in one
// group.
type linkState struct {
	link *prekey.SendLink
	// confirmed: the member holds the root, and linked stanzas may use
	// the link. A member learns the root only by opening a full stanza
	// that carries it; it opens the header of each of this node's keys
	// once, the first of them the group commits. So the link is confirmed
	// once the group registered a key of this node whose every header
	// carried the root to that member (carriers): a key whose first
	// header was sealed after the link started.
	confirmed bool
	carriers  []crypto.KeyRef
}

// sendLinks are a group's links to its members' prekeys, kept in memory
// only: a stolen home holds none of them. The group's goroutine owns it.
type sendLinks struct {
	m map[[prekey.IDSize]byte]*linkState
}

// recipients returns how to seal the header of key (first: the first
// header sealed for key) to pks, the members' current prekeys: over a
// confirmed link, not used for linkRenewAfter nor to its last step, to each
// member that has one; carrying its pending link to each member that has
// one; and starting a new link to the others, and to self (who opens its own
// keys from the key store, not from headers). registered reports whether
// the group registered one of this node's keys. Links to prekeys not in pks
// are erased.
func (s *sendLinks) recipients(self [32]byte, pks []*prekey.Prekey, key crypto.KeyRef, first bool,
	registered func(crypto.KeyRef) bool, now time.Time) []prekey.Recipient {
	if s.m == nil {
		s.m = map[[prekey.IDSize]byte]*linkState{}
	}
	current := make(map[[prekey.IDSize]byte]bool, len(pks))
	rs := make([]prekey.Recipient, len(pks))
	for i, p := range pks {
		current[p.ID] = true
		rs[i] = prekey.Recipient{Prekey: p}
		st := s.m[p.ID]
		if p.Owner == self || st == nil {
			continue
		}
		if !st.confirmed {
			for _, k := range st.carriers {
				st.confirmed = st.confirmed || registered(k)
			}
		}
		switch {
		case st.confirmed && st.link.Steps() < prekey.MaxLinkSteps && now.Sub(st.link.Born) < linkRenewAfter:
			rs[i].Link, rs[i].Linked = st.link, true
		case st.confirmed:
			st.link.Erase()
			delete(s.m, p.ID)
		default:
			rs[i].Link = st.link
			if first {
				st.addCarrier(key)
			}
		}
	}
	for id, st := range s.m {
		if !current[id] {
			st.link.Erase()
			delete(s.m, id)
		}
	}
	return rs
}

// started keeps the links a header of key started (first: the first header
// sealed for key), but those to self.
func (s *sendLinks) started(self [32]byte, links []*prekey.SendLink, key crypto.KeyRef, first bool) {
	for _, l := range links {
		if l.Owner == self {
			l.Erase()
			continue
		}
		st := &linkState{link: l}
		if first {
			st.addCarrier(key)
		}
		if old := s.m[l.Prekey]; old != nil {
			old.link.Erase()
		}
		s.m[l.Prekey] = st
	}
}

// addCarrier notes that key's every header carries the link's root.
func (st *linkState) addCarrier(key crypto.KeyRef) {
	if len(st.carriers) == maxCarriers {
		st.carriers = st.carriers[1:]
	}
	st.carriers = append(st.carriers, key)
}

// drop erases every link: the next header starts new ones (a rekey of this
// node's, which may follow a compromise of its memory).
func (s *sendLinks) drop() {
	for id, st := range s.m {
		st.link.Erase()
		delete(s.m, id)
	}
}

// counts returns how many links are confirmed and pending.
func (s *sendLinks) counts() (confirmed, pending int) {
	for _, st := range s.m {
		if st.confirmed {
			confirmed++
		} else {
			pending++
		}
	}
	return confirmed, pending
}

// linkLost handles c, a committed message whose stanza for this node is
// sealed over a key link this node does not hold (group.deliver). The
// group registered a key of its sender's that carried the root before c,
// and this node opened that key's header as it applied it; so the root was
// lost since, or the stanza is forged. The sender keeps sealing over that
// link until its renewal (a day): when the stanza names this node's
// current prekey, the node starts a new prekey, at most once per
// linkLossRenewEvery, and every sender's next header starts a new link to
// it in a full stanza. (A forger makes it rotate its prekey at most that
// often; it raised an alarm and committed a rekey before.)
func (g *group) linkLost(c *state.Chat) {
	info, err := crypto.ReadSealed(c.Sealed)
	if err != nil {
		return
	}
	for i, r := range info.Recipients {
		if r != g.n.self.Sign || i >= len(info.PrekeyIDs) {
			continue
		}
		id := info.PrekeyIDs[i]
		renewed, err := g.n.keys.renewForLostLink(id, time.Now())
		ev := g.n.log.Warn()
		if err != nil {
			ev = g.n.log.Error().Err(err)
		}
		ev.Str("group", g.id.String()).Uint64("index", c.Index).Str("prekey", hex.EncodeToString(id[:4])).Bool("new prekey", renewed).
			Msg("message sealed over a key link whose root this node does not hold (lost, or forged): unreadable here")
		return
	}
}

// linkLossRenewEvery is how often at most a node starts a new prekey
// because a message reached it over a link it does not hold (linkLost).
const linkLossRenewEvery = time.Hour

// renewForLostLink starts a new prekey if id is the current one and none
// was started for a lost link in the last linkLossRenewEvery. It reports
// whether it did.
func (b *keyBook) renewForLostLink(id [prekey.IDSize]byte, now time.Time) (bool, error) {
	b.renewMu.Lock()
	defer b.renewMu.Unlock()
	b.mu.Lock()
	due := b.current != nil && b.current.ID == id &&
		(b.linkRenewed.IsZero() || now.Sub(b.linkRenewed) >= linkLossRenewEvery)
	if due {
		b.linkRenewed = now
	}
	b.mu.Unlock()
	if !due {
		return false, nil
	}
	return true, b.Rotate(now)
}
