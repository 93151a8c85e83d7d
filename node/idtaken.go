package node

import (
	"encoding/hex"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// A message id is chosen by its sender's node, and the group's state
// machine accepts each id once, from whoever commits it first: what makes
// a retried message count once. But the id travels in the clear, and the
// host sees every forwarded message's before it commits it. A lying host
// could commit a message of its own under the id of a member's queued
// message instead of that message: the member's node, taking any message
// committed under the id for its own, would drop it from its outbox as
// delivered, and the censorship would go unseen (censor.go watches the
// outbox). So a node takes only its own committed messages for its queued
// ones; another member's under the id of one of them means the id was
// taken, and the queued message is sent again under a new one
// (adversary.TestStolenMessageID).

// outboxCommitted settles the outbox for c, a chat message the group
// committed: if it is this node's, it is no longer queued; if it is another
// member's under the id of one this node still queues, that one is sent
// again under a new id.
func (g *group) outboxCommitted(c *state.Chat) {
	if c.Sender == g.n.self.Sign {
		g.commitOutbox(c.ID)
		return
	}
	if p := g.outbox[c.ID]; p != nil {
		g.reissue(p, c.Sender, c.Index)
	}
}

// reissue gives p, a queued message whose id a message of member by took
// (committed at index), a new id, seals it again and queues it to be
// proposed at once. A send still waiting for p answers with the new id
// (currentID).
func (g *group) reissue(p *pending, by [32]byte, index uint64) {
	old := p.id
	delete(g.outbox, old)
	g.outboxDone = append(g.outboxDone, append([]byte(nil), old[:]...))
	p.id = crypto.NewMessageID()
	if g.reissued == nil {
		g.reissued = map[[16]byte][16]byte{}
	}
	g.reissued[old] = p.id
	p.proposed, p.term, p.leader = time.Time{}, 0, 0
	p.delivered = map[[32]byte]time.Time{} // the members hold it under the old id
	name := ""
	if m := g.st.Members[by]; m != nil {
		name = g.namesakes().label(m.ID.String(), m.Name)
	}
	g.n.log.Warn().Str("group", g.id.String()).Str("by", name).Uint64("index", index).
		Str("id", hex.EncodeToString(old[:])).Str("new_id", hex.EncodeToString(p.id[:])).
		Msg("another member committed a message under the id of one of this node's queued messages (a host hiding it would); it is sent again under a new id")
	g.n.rejects.add(reasonIDTaken)
	if err := g.seal(p); err != nil {
		// Queued under the new id all the same: the next reseal (a
		// rejection, an epoch change, a restart) seals it again.
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot seal again a queued message whose id was taken")
	}
	g.outbox[p.id] = p
	g.outboxPut = append(g.outboxPut, p)
	// On disk under the new id (and no longer under the old) before the
	// new id is proposed: once it may commit, a crash must not leave only
	// the old id stored, which the restart finds taken and sends again
	// under a third id, a second copy. A send waiting for p answers with
	// the new id only now too (its durable channel was closed for the old).
	if err := g.flushOutbox(false); err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot store a queued message sent again under a new id; it is not proposed")
		return
	}
	g.proposeQueued()
}

const reasonIDTaken = "message id of a queued message taken by another member"

// currentID returns the id a queued message of this node goes by now:
// id, or the new id it was sent again under if another member's message
// took id (reissue).
func (g *group) currentID(id [16]byte) [16]byte {
	for range len(g.reissued) + 1 {
		next, ok := g.reissued[id]
		if !ok {
			break
		}
		id = next
	}
	return id
}

// acceptedFrom returns the sender of the chat message the group accepted
// under id, read from the stored log, and whether there is one.
func (g *group) acceptedFrom(id [16]byte) ([32]byte, uint64, bool) {
	idx, ok := g.st.MsgIDs.Lookup(id)
	if !ok {
		return [32]byte{}, 0, false
	}
	ents, err := g.n.store.Entries(g.id[:], idx, idx+1, 1<<30)
	if err != nil || len(ents) != 1 {
		return [32]byte{}, 0, false
	}
	c := g.st.AcceptedChat(idx, ents[0].GetData())
	if c == nil {
		return [32]byte{}, 0, false
	}
	return c.Sender, idx, true
}
