package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/store"
	"github.com/demes/demes/state"
)

type pending struct {
	leader   uint64 // the leader when last proposed
	id       [16]byte
	text     string
	sentAt   time.Time
	frame    []byte
	at       int64 // the signing time of frame, unix nanoseconds
	proposed time.Time
	// term is the raft term in which this node, leading, appended the
	// message to its own log by proposing it; 0 when it proposed it as a
	// follower (forwarded to the host) or raft refused it.
	term uint64
	// held is set while the message would be over this member's quota:
	// it waits in the outbox, not proposed, until the quota allows (see
	// proposeQueued).
	held bool
	// waitFrom is when the message was first proposed since it was last
	// held: how long it has waited for the host (censor.go). Proposing it
	// again does not reset it.
	waitFrom time.Time
	waiters  []chan struct{}
	// durable is closed once the message is on this node's disk: in the
	// stored outbox, or committed. A send is acknowledged only then.
	durable chan struct{}
	stored  bool
	// Tentative delivery (tentative.go): the message's order among the
	// tentative ones, the members that hold it (and when each last said
	// so: it is asked again now and then, recheckDue), those the first
	// attempt to hand it over has reached or failed, and a channel closed
	// once that first attempt is over for every member (nil then, or for
	// a message restored after a restart, which no send waits for).
	order      uint64
	delivered  map[[32]byte]time.Time
	attempted  map[[32]byte]bool
	firstRound chan struct{}
	// own is what sealing frame gave (empty for a message restored after
	// a restart): deliver shows the message from it once committed.
	own ownSealed
	// headerKey is the id of the sender key whose header frame carries,
	// zero when it carries none. Not own.ref: a key whose header went to
	// identity keys (keys_group.go) leaves own empty, and every message
	// under it carried the header again (TestKeyHeaderOncePerKey, under
	// load: 20 of a fallback key's 20 messages).
	headerKey [crypto.KeyIDSize]byte
}

// ownSealed is a message as this node sealed it: the key it is sealed
// under (its name and a hash of it: the key itself is not kept beyond the
// key ring's retention for a message that stays queued), the sealed bytes,
// and what opening them gives (crypto.SealOwn).
type ownSealed struct {
	ref    crypto.KeyRef
	key    [32]byte // SHA-256 of the key
	sealed []byte
	opened *crypto.Opened
}

func newOwnSealed(key *crypto.SenderKey, sealed []byte, opened *crypto.Opened) ownSealed {
	if opened == nil {
		return ownSealed{}
	}
	return ownSealed{ref: key.Ref(), key: sha256.Sum256(key.Key[:]), sealed: sealed, opened: opened}
}

// ownOpened returns the opened form of chat c when it is exactly a message
// this node sealed and has not seen committed yet, under key: the sealed
// bytes are those it made, so crypto.OpenMessage would return just what
// sealing returned beside them (a pure function of the key and the bytes),
// at the cost of a decryption and a check of the signature this node has
// just made. Otherwise nil, and deliver opens c.
func (g *group) ownOpened(c *state.Chat, key *crypto.SenderKey) *crypto.Opened {
	if c.Sender != g.n.self.Sign {
		return nil
	}
	p := g.outbox[c.ID]
	if p == nil || p.own.opened == nil || key == nil || p.own.ref != key.Ref() ||
		!bytes.Equal(p.own.sealed, c.Sealed) || p.own.key != sha256.Sum256(key.Key[:]) {
		return nil
	}
	return p.own.opened
}

// markDurable records that p is on disk and tells whoever waits for that.
func (p *pending) markDurable() {
	if p.stored {
		return
	}
	p.stored = true
	if p.durable != nil {
		close(p.durable)
	}
}

// enqueue seals a new message and proposes it. It returns the queued
// message, a channel closed once the message is on disk (in the outbox or
// committed: its sender may be acknowledged then) and one closed once it is
// committed. Its outbox write rides with the group's next write to disk,
// which in a working group is the one that stores the message's own log
// entry: a message committed before its sender needs an acknowledgement
// costs no write of its own. makeDurable writes it at once.
func (g *group) enqueue(text string) (m Message, durable, done, firstRound chan struct{}, err error) {
	if g.left || g.st.Former[g.n.self.Sign] != nil && g.st.Members[g.n.self.Sign] == nil {
		return Message{}, nil, nil, nil, fmt.Errorf("this node is no longer a member of group %s (it left or was removed): it keeps the history it has, and sends again only with a new invite: %w", g.id, ErrInvalid)
	}
	if g.st.Members[g.n.self.Sign] == nil {
		return Message{}, nil, nil, nil, fmt.Errorf("this node is not a member of group %s yet: its join is not done; try again once demes join returned: %w", g.id, ErrInvalid)
	}
	if g.fork != nil {
		return Message{}, nil, nil, nil, g.errHalted("send")
	}
	if g.n.cfg.Keeper || g.st.Members[g.n.self.Sign].Keeper {
		return Message{}, nil, nil, nil, errKeeper
	}
	p := &pending{
		id: crypto.NewMessageID(), text: text, sentAt: time.Now().UTC(), durable: make(chan struct{}),
		order: g.nextOrder(), delivered: map[[32]byte]time.Time{}, firstRound: make(chan struct{}),
	}
	firstRound = p.firstRound
	if err := g.seal(p); err != nil {
		return Message{}, nil, nil, nil, err
	}
	g.outbox[p.id] = p
	g.outboxPut = append(g.outboxPut, p)
	done = make(chan struct{})
	p.waiters = append(p.waiters, done)
	if g.fitsQuota(p) {
		g.propose(p)
	} else {
		p.held, p.waitFrom = true, time.Time{}
	}
	// A group that cannot commit hands it to the members directly, now,
	// once it is on disk (a message others were shown must never be lost).
	if g.stalled(time.Now()) && !p.held {
		if err := g.flushOutbox(false); err == nil {
			g.deliverTentative(time.Now())
		}
		g.publish() // the send may return before this turn ends
	} else {
		// Once for all the sends of this turn (run), before any of them
		// is written and answered: under load a turn takes hundreds,
		// and the view counts the whole outbox.
		g.publishDue = true
	}
	return g.pendingMessage(p), p.durable, done, firstRound, nil
}

func (g *group) pendingMessage(p *pending) Message {
	m := Message{
		ID: hex.EncodeToString(p.id[:]), Author: g.n.selfID, Name: g.n.cfg.Name,
		SentAt: p.sentAt, State: StateTentative, GroupID: g.id.String(),
		Order: p.order, Delivered: len(p.delivered), Others: others(g.view.Load(), g.n.self.Sign),
		Held: p.held,
	}
	// p.text is the body: plain text, or structured content (changes.go).
	cnt, perr := content.Parse([]byte(p.text))
	content.Show(&m, cnt, perr)
	return m
}

// seal (re)builds a pending message's signed envelope for the current
// members: under this node's sender key of the current epoch, with the key
// header if the group has not registered that key and no other queued
// message carries it (needsHeader).
func (g *group) seal(p *pending) error {
	m := &crypto.Message{Group: g.id, ID: p.id, Head: g.st.Chain.Head, Time: p.sentAt.UnixNano(), Body: []byte(p.text)}
	key := g.sealingKey()
	var (
		sealed []byte
		opened *crypto.Opened
		err    error
	)
	header := g.needsHeader(p, key)
	if header {
		sealed, opened, err = g.sealWithHeader(m, key)
	} else {
		sealed, opened, err = crypto.SealOwn(g.n.id, m, key, nil)
	}
	if err != nil {
		return fmt.Errorf("seal message: %w", err)
	}
	body, err := state.Encode(&state.ChatBody{ID: p.id[:], Sealed: sealed})
	if err != nil {
		return err
	}
	env := &crypto.Envelope{Type: crypto.TypeChat, Group: g.id, Payload: body}
	frame, err := g.n.sign(env)
	if err != nil {
		return err
	}
	// Signed here: no need to check the signature when it is applied.
	g.n.verified.add(frame, env)
	p.frame, p.at = frame, env.Time
	p.own = newOwnSealed(key, sealed, opened)
	p.headerKey = [crypto.KeyIDSize]byte{}
	if header {
		p.headerKey = key.ID
		u := g.keyUse[key.ID]
		u.carrier = p
		g.keyUse[key.ID] = u
	}
	return nil
}

// needsHeader reports whether p, sealed now under key, must carry key's
// header: when the group has not registered key, and no other queued
// message sealed with the header is on its way. The messages sent while
// the first one under a new key commits then go without it, which they may
// because this node proposes its messages in order and raft appends one
// proposer's messages in the order they arrive. Before, each of them
// carried the header: 1216 bytes a member, on every member's disk, for the
// 20% of the messages that 64 senders sent in those moments (docs/
// BENCHMARKS.md, "History"). If the carrier is lost, the host drops the
// message after it (or the log refuses it), and it is sealed again with
// the header (resealOutbox, retryRefused).
func (g *group) needsHeader(p *pending, key *crypto.SenderKey) bool {
	if _, ok := g.st.KeyRegistered(g.n.self.Sign, key.ID); ok {
		return false
	}
	return !g.carriedBefore(p, key.ID)
}

// carriedBefore reports whether the header of this node's sender key id
// goes with a queued message other than p (its latest carrier, still
// queued as it was sealed).
func (g *group) carriedBefore(p *pending, id [crypto.KeyIDSize]byte) bool {
	c := g.keyUse[id].carrier
	return c != nil && c != p && g.outbox[c.id] == c && c.headerKey == id
}

// sealingKey is senderKey, rotated: after Config.RotateMessages messages
// sealed under the same key, or once it is Config.RotateAfter old, this
// node seals under a new key (whose header every member opens), so that a
// leaked sender key opens a bounded stretch of messages. (A restart starts
// a new key: senderKey.)
func (g *group) sealingKey() *crypto.SenderKey {
	key := g.senderKey()
	u := g.keyUse[key.ID]
	if u.born.IsZero() {
		u.born = time.Now()
	}
	// A key whose header went to identity keys is replaced as soon as
	// every member has a prekey (keys_group.go).
	// So is one whose floor advanced (keyfloor.go): it can no longer be
	// sealed in a header, should the group need it again.
	if u.sealed >= g.n.cfg.RotateMessages || time.Since(u.born) >= g.n.cfg.RotateAfter ||
		(g.fallback[key.ID] && len(g.prekeyGaps()) == 0) || key.Floor() > 0 {
		delete(g.keyUse, key.ID)
		delete(g.fallback, key.ID)
		key = g.keys.Rotate(g.st.Epoch)
		u = keyUse{born: time.Now()}
	}
	u.sealed++
	g.keyUse[key.ID] = u
	// Kept before anything is sealed under it: a queued message is opened
	// again after a restart, to be sealed anew.
	g.n.keys.keep(g.id, key)
	return key
}

// keyUse is how much this node sealed under one of its sender keys.
type keyUse struct {
	sealed int
	born   time.Time
	// carrier is the queued message sealed last with the key's header,
	// while the group has not registered the key (needsHeader).
	carrier *pending
}

// senderKey returns this node's sender key for the current epoch: the one it
// seals with already, or else a new one. A key of this node's from before
// a restart is not sealed under again: the node does not know which
// counters of its chain it used, and each message key is to seal one
// message (a new key costs one key header a restart).
func (g *group) senderKey() *crypto.SenderKey {
	return g.keys.SealingKey(g.st.Epoch, nil)
}

// propose proposes a queued message. A proposal raft did not take (no
// leader, a leadership transfer) is retried from the outbox by retryOutbox;
// ids make the retries idempotent.
func (g *group) propose(p *pending) {
	p.proposed = time.Now()
	if p.waitFrom.IsZero() {
		p.waitFrom = p.proposed
	}
	p.leader, p.term = g.leader, 0
	if g.fork != nil {
		return
	}
	// One held (confhold.go) may yet be dropped as it is released: it is
	// proposed again after the wait of a forwarded one, not only when the
	// leadership ends.
	held := g.holdsProposals()
	if err := g.proposeFrame(p.frame); err != nil {
		g.fig.failed.Add(1)
	} else if g.role == raft.StateLeader && !held {
		p.term = g.term
	}
}

// proposeAgain reports whether p, queued, is to be proposed (again) now.
// A message this node appended to its own log as the host is lost only if
// that leadership ends before it commits, and then the leader or the term
// changes: proposing it again meanwhile, because committing takes long on a
// loaded machine, only put copies in the log that the state machine
// refuses (TestKeyHeaderOncePerKey under load: 17 messages twice). A
// message forwarded to the host may be lost on the way or dropped there
// without a word, so it is proposed again once it waited long enough.
func (g *group) proposeAgain(p *pending, now time.Time) bool {
	switch {
	case p.held || p.proposed.IsZero() || p.leader != g.leader:
		return true
	case p.term != 0:
		return p.term != g.term || g.role != raft.StateLeader
	}
	return now.Sub(p.proposed) >= 4*g.n.cfg.RetryInterval
}

func (g *group) retryOutbox() {
	if len(g.outbox) == 0 || g.leader == raft.None {
		return
	}
	if g.retryRefused(time.Now()) {
		g.resealOutbox() // and proposes
		return
	}
	g.proposeQueued()
}

// quotaItems returns what ps, queued messages of this node in order, count
// against its quota.
func quotaItems(ps []*pending) []state.QuotaItem {
	items := make([]state.QuotaItem, len(ps))
	for i, p := range ps {
		items[i] = state.QuotaItem{Time: p.at, Size: len(p.frame)}
	}
	return items
}

// fitsQuota reports whether p, a new message, may be proposed at once: no
// message is held before it, and after the messages on their way (every
// other one queued) it is within this member's quota as the log stands.
func (g *group) fitsQuota(p *pending) bool {
	// Mostly the quota has room for everything queued, in any order: then
	// neither the sort nor the pass over the queue below is needed, which
	// under load cost each new message O(n log n) in the queue's length
	// (4% of a loaded node's CPU at 1,024 senders).
	n, size := 1, uint64(len(p.frame))
	for _, q := range g.outbox {
		if q.held {
			return false
		}
		if q != p {
			n, size = n+1, size+uint64(len(q.frame))
		}
	}
	if g.st.QuotaRoom(g.n.self.Sign, n, size) {
		return true
	}
	queue := make([]*pending, 0, len(g.outbox))
	for _, q := range g.sortedPending() {
		if q != p {
			queue = append(queue, q)
		}
	}
	queue = append(queue, p)
	fit, _ := g.st.CheckQuota(g.n.self.Sign, quotaItems(queue))
	return fit == len(queue)
}

// proposeQueued proposes the queued messages that are due, in order, as far
// as this member's quota allows, and holds the rest back: a message over
// quota would only be refused by the host or rejected by the state machine,
// so it waits here, and every retry tick looks again. A message goes when
// it fits: as it is signed, or else (its signing time would count in a
// window used up since) sealed and signed again now, which is when it is
// really sent. Each message is accepted at most once whatever happens
// (ids), and none overtakes another.
//
// A message on its way is proposed again when the leader changed since the
// last proposal (it may have been lost with the old leader), or, forwarded
// to the host, when it has been waiting long enough that it was probably
// dropped (proposeAgain). A retry of a message that did commit is ignored
// when applied (same id).
func (g *group) proposeQueued() {
	list := g.sortedPending()
	items := quotaItems(list)
	self := g.n.self.Sign
	now := time.Now()
	resealed := -1
	for i := 0; i < len(list); {
		fit, why := g.st.CheckQuota(self, items)
		for ; i < fit; i++ {
			p := list[i]
			if g.proposeAgain(p, now) {
				p.held = false
				g.propose(p)
			}
		}
		if i == len(list) {
			return
		}
		p := list[i]
		signed := items[i].Time
		items[i].Time = now.UnixNano()
		if n, _ := g.st.CheckQuota(self, items[:i+1]); n == i+1 && resealed != i {
			resealed = i
			if err := g.seal(p); err != nil {
				g.n.log.Error().Err(err).Msg("cannot re-seal a queued message")
				items[i].Time = signed
			} else {
				g.outboxPut = append(g.outboxPut, p)
				items[i] = state.QuotaItem{Time: p.at, Size: len(p.frame)}
				p.held, p.waitFrom = true, time.Time{} // proposed in the next round, now that it fits
				continue
			}
		}
		if !p.held {
			g.n.log.Info().Str("group", g.id.String()).Int("held", len(list)-i).Str("reason", why.Error()).Msg("holding messages back until this member's quota allows")
		}
		for ; i < len(list); i++ {
			list[i].held, list[i].waitFrom = true, time.Time{}
		}
	}
}

func (g *group) sortedPending() []*pending {
	out := make([]*pending, 0, len(g.outbox))
	for _, p := range g.outbox {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].sentAt.Equal(out[j].sentAt) {
			return out[i].sentAt.Before(out[j].sentAt)
		}
		return bytes.Compare(out[i].id[:], out[j].id[:]) < 0
	})
	return out
}

func (g *group) commitOutbox(id [16]byte) {
	p := g.outbox[id]
	if p == nil {
		return
	}
	delete(g.outbox, id)
	g.fig.commitLatency.observe(time.Since(p.sentAt).Seconds())
	g.outboxDone = append(g.outboxDone, append([]byte(nil), id[:]...))
	p.markDurable()
	for _, w := range p.waiters {
		close(w)
	}
}

// outboxItems returns the outbox writes waiting for the next transaction:
// the queued messages sent (or sealed again) since the last one.
func (g *group) outboxItems() []store.OutboxItem {
	items := make([]store.OutboxItem, 0, len(g.outboxPut))
	for _, p := range g.outboxPut {
		if g.outbox[p.id] == p {
			items = append(items, store.OutboxItem{ID: p.id[:], Frame: p.frame})
		}
	}
	return items
}

// outboxWritten acknowledges the messages whose outbox write has just been
// committed to disk.
func (g *group) outboxWritten() {
	if g.publishDue && len(g.outboxPut) > 0 {
		// A send this write answers is counted in the view first: the
		// turn publishes the view of its sends only after its drain
		// (enqueue), and a send's own write (makeDurable) may be drained
		// in the same turn as its enqueue.
		g.publish()
	}
	for _, p := range g.outboxPut {
		if p.stored {
			continue
		}
		p.markDurable()
		if g.outbox[p.id] == p {
			m := g.pendingMessage(p)
			g.publishMessage(m)
		}
	}
	g.outboxPut = g.outboxPut[:0]
}

// makeDurable writes the waiting outbox writes now unless durable, the
// channel of one of them, says it is on disk already: a send is about to
// be acknowledged as queued.
func (g *group) makeDurable(durable chan struct{}) error {
	select {
	case <-durable:
		return nil
	default:
	}
	return g.flushOutbox(false)
}

// flushOutbox writes the waiting outbox writes now (for a send about to be
// acknowledged as queued), and with all set, everything put off: the latest
// commit index and the outbox deletes (at the retry tick and a clean stop).
func (g *group) flushOutbox(all bool) error {
	if len(g.outboxPut) == 0 && (!all || (len(g.outboxDone) == 0 && g.unsavedHS == nil)) {
		return nil
	}
	if err := g.persist(nil, nil); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}
