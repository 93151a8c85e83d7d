package node

import (
	"errors"
	"sort"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// The outbox after a restart: the queued messages read from the store are
// opened again from this node's own sealed copies, once the log replay
// knows their keys.

// maybeRestoreOutbox restores the queued messages read from the store at
// start once the log is replayed up to the commit index of that time, when
// every sender key of this node that they may be sealed under is known
// again. Those the replay shows committed are dropped. It reports whether
// it restored the outbox now.
func (g *group) maybeRestoreOutbox() bool {
	if g.restored == nil || g.st.Applied < g.replayTo {
		return false
	}
	type taker struct {
		by [32]byte
		at uint64
	}
	var ps []*pending
	taken := map[*pending]taker{}
	for _, frame := range g.restored {
		p := g.pendingFromFrame(frame)
		if p == nil {
			continue
		}
		if g.st.MsgIDs.Has(p.id) {
			// Committed: as ours, unless the stored log shows another
			// member's message under its id (idtaken.go).
			by, at, ok := g.acceptedFrom(p.id)
			if !ok || by == g.n.self.Sign {
				g.outboxDone = append(g.outboxDone, append([]byte(nil), p.id[:]...))
				continue
			}
			taken[p] = taker{by, at}
		}
		ps = append(ps, p)
	}
	// Their orders are given again, in the order they were written.
	sort.Slice(ps, func(i, j int) bool { return ps[i].sentAt.Before(ps[j].sentAt) })
	for _, p := range ps {
		p.order = g.nextOrder()
		g.outbox[p.id] = p
	}
	for _, p := range ps {
		if t, ok := taken[p]; ok {
			g.reissue(p, t.by, t.at)
		}
	}
	g.restored = nil
	return true
}

// pendingFromFrame rebuilds a queued message after a restart by opening our
// own sealed copy: the outbox on disk holds no plaintext. The message's
// sender key is in its own key header, or in one that the log replay opened.
func (g *group) pendingFromFrame(frame []byte) *pending {
	self := g.n.self.Sign
	env, b, info, err := readQueued(frame, self)
	if errors.Is(err, errNotQueuedChat) {
		return nil
	}
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot read a queued message of ours")
		return nil
	}
	key, err := g.keys.Open(crypto.KeyRef{Sender: self, Epoch: info.Epoch, ID: info.KeyID}, b.Sealed)
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot recover the sender key of a queued message of ours")
		return nil
	}
	o, err := crypto.OpenMessage(key, g.id, b.Sealed, self, [16]byte(b.ID))
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot open a queued message of ours")
		return nil
	}
	return &pending{id: o.ID, text: string(o.Body), sentAt: time.Unix(0, o.Time).UTC(), frame: frame, at: env.Time, stored: true, delivered: map[[32]byte]time.Time{}}
}

// errNotQueuedChat marks a stored outbox frame that is not a chat message
// of this node's.
var errNotQueuedChat = errors.New("not a queued chat message of this node's")

// readQueued decodes frame, from a stored outbox, as a chat message of
// self's: its envelope, its body and its sealed message's header.
func readQueued(frame []byte, self [32]byte) (*crypto.Envelope, state.ChatBody, *crypto.SealedInfo, error) {
	var b state.ChatBody
	env, err := crypto.Verify(frame)
	if err != nil || env.Sender != self || env.Type != crypto.TypeChat {
		return nil, b, nil, errNotQueuedChat
	}
	if err := state.Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
		return nil, b, nil, errNotQueuedChat
	}
	info, err := crypto.ReadSealed(b.Sealed)
	if err != nil {
		return nil, b, nil, err
	}
	return env, b, info, nil
}
