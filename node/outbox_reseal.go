package node

import (
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Sealing queued messages again: a message of this node's that the sender
// key rule refuses (its key unregistered, its header sealed to another
// member set, an epoch the group has left) is sealed anew under a key the
// group takes, whether the refusal came from the log (ownRejected) or
// from this node's own state before it is proposed again (retryRefused).

// ownRejected notes that the state machine rejected env, one of this node's
// chat messages: if it is still queued as it was proposed (rejected for a
// quota the log's other entries used up, which resealing leaves be), it is
// no longer in the log as proposeAgain assumes of a host's own proposal, and
// is proposed again after the retry timer like a forwarded one.
func (g *group) ownRejected(env *crypto.Envelope) {
	var b state.ChatBody
	if state.Decode(env.Payload, &b) != nil || len(b.ID) != 16 {
		return
	}
	if p := g.outbox[[16]byte(b.ID)]; p != nil {
		p.term = 0
	}
}

func (g *group) resealOutbox() {
	if g.left {
		return
	}
	resealed := false
	// A message of ours was rejected, or the epoch changed: the first
	// message sealed again under a key the group has not registered carries
	// its header, whether or not an earlier carrier is still queued (it may
	// be the one that was lost).
	for id, u := range g.keyUse {
		u.carrier = nil
		g.keyUse[id] = u
	}
	for _, p := range g.sortedPending() {
		// This node's own frame, made here or read back from its own
		// store: its signature needs no check.
		env, err := crypto.ParseTrusted(p.frame)
		if err == nil {
			var b state.ChatBody
			if state.Decode(env.Payload, &b) == nil {
				// Still acceptable here (under a key of this epoch that
				// is registered or that it carries): leave it be.
				if _, err := g.st.CheckSealed(env.Sender, b.Sealed); err == nil {
					continue
				}
			}
		}
		if err := g.seal(p); err != nil {
			g.n.log.Error().Err(err).Msg("cannot re-seal a queued message")
			continue
		}
		// The new frame is written with the next transaction; until then
		// the stored one (rejected if proposed) is sealed again at restart.
		g.outboxPut = append(g.outboxPut, p)
		// Due at once, as far as the quota allows.
		p.proposed, resealed = time.Time{}, true
	}
	if resealed {
		g.proposeQueued()
	}
}

// retryRefused reports whether a queued message due to be proposed again is
// one the sender key rule refuses, as this node's state has it, under a key
// whose header no message queued before it carries (a restored outbox, a
// carrier lost). The host drops such a proposal at its gate (quota.go,
// sealingTaken). Before it did, the entry reached the log, refused, and
// this node sealed the message again (ownRejected); dropped, it would be
// proposed as it is for good (the restore fault schedules, seed 363043:
// two messages queued for a minute after the faults healed).
func (g *group) retryRefused(now time.Time) bool {
	for _, p := range g.outbox {
		if p.proposed.IsZero() || !g.proposeAgain(p, now) {
			continue
		}
		env, err := crypto.ParseTrusted(p.frame)
		if err != nil {
			continue
		}
		var b state.ChatBody
		if state.Decode(env.Payload, &b) != nil {
			continue
		}
		if _, err := g.st.CheckSealed(g.n.self.Sign, b.Sealed); err == nil {
			continue
		}
		if info, err := crypto.ReadSealed(b.Sealed); err == nil && !info.HasHeader() && info.Epoch == g.st.Epoch {
			if g.carriedBefore(p, info.KeyID) {
				continue // its header is on its way, with the message before it
			}
		}
		return true
	}
	return false
}
