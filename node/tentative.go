package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Tentative delivery (issue 18; docs/PROTOCOL.md, "Tentative delivery").
// Ordering a message needs a majority of the voters; conversation must not.
// When a group cannot commit (no host for a while, or nothing committed
// while a message waits), each queued message of this node also goes
// directly to every member it can reach, as the signed chat frame it
// proposes, in a signed [crypto.TypeTentative] envelope. The receiver checks
// it as it would check the log entry's record (the author is a member, the
// record opens under the author's sender key of the current epoch and its
// signature holds), shows it at once as tentative, and answers with the ids
// it holds. When the log commits the message (the same id, so once), it
// takes its place in the group's order and stops being tentative.
//
// Tentative messages come after every committed message, in the order of
// a Lamport clock: a message's order is one more than the largest of the
// log index its author had applied, the orders of the tentative messages it
// had seen, and its own previous order. So a reply comes after what it
// answers, and each author's messages keep the order it wrote them in.
// Messages that do not know of each other (two members who cannot reach
// each other) are ordered by that number, then time and id: the same on
// every node, though not the order the log will give them.

const (
	// stallAfter is how long a group has known no host before a message
	// goes directly to the members at once: long enough that an ordinary
	// failover (well under a second) sends nothing twice.
	stallAfter = time.Second
	// tentativeAfter is how long a message waits for its commit, in a
	// group that commits nothing meanwhile, before it goes directly to the
	// members (the host may look alive but have lost its majority).
	tentativeAfter = time.Second
	// tentativeChunk bounds the frames of one tentative envelope.
	tentativeChunk = 256 << 10
	// maxTentativeHeld is how many tentative messages of one author a
	// member holds: a member cannot fill another's memory with messages
	// that never commit.
	maxTentativeHeld = 1000
	// maxOrderJump bounds how far ahead of this node's clock a tentative
	// message's order may be, so that no member can push its messages to
	// the end for good or run the clock out.
	maxOrderJump = 1 << 20
	// stuckCheck is how often a send whose message went directly to the
	// members checks whether the group can commit soon.
	stuckCheck = 100 * time.Millisecond
)

// tentativeItem is one message in a tentative envelope: its order and the
// author's signed chat frame, exactly as proposed to the log.
type tentativeItem struct {
	_     struct{} `cbor:",toarray"`
	Order uint64
	Frame []byte
}

type tentativeBody struct {
	_     struct{} `cbor:",toarray"`
	Items []tentativeItem
}

// deliveredBody lists the ids of the messages a member holds, answering a
// tentative envelope.
type deliveredBody struct {
	_   struct{} `cbor:",toarray"`
	IDs [][]byte
}

// heldMessage is another member's tentative message held here: what is
// shown, its author, and the sender key and counter+1 it is sealed under
// (crypto.Opened.Counter), so that it goes when the key is deleted or its
// floor passes it (forgetDeletedTentative), as a committed message does.
type heldMessage struct {
	m      Message
	author [32]byte
	ref    crypto.KeyRef
	c1     uint64
	at     time.Time   // when this node took it (or held it again after a start)
	orphan orphanTries // this node's own proposals of it, as the host (tentative_orphan.go)
}

// nextOrder returns the order of a new message of this node.
func (g *group) nextOrder() uint64 {
	g.lamport = max(g.lamport, g.st.Applied) + 1
	return g.lamport
}

// stalled reports whether the group has known no host for stallAfter.
func (g *group) stalled(now time.Time) bool {
	return g.leader == raft.None && !g.noLeaderSince.IsZero() && now.Sub(g.noLeaderSince) >= stallAfter
}

// tentativeDue reports whether p, queued, should go directly to the
// members now.
func (g *group) tentativeDue(p *pending, now time.Time) bool {
	if p.held || !p.stored {
		// Over quota: it waits, and is not sent anywhere. Not on disk
		// yet: a crash could lose it after others showed it.
		return false
	}
	if g.stalled(now) {
		return true
	}
	return now.Sub(p.sentAt) >= tentativeAfter && now.Sub(g.progressAt) >= tentativeAfter
}

// tickTentative hands queued messages to the members as soon as the group
// is stalled, rather than at the next upkeep: the first message after a
// host is lost for good reaches the others a tick after stallAfter. Only
// messages not handed to anyone yet: members that did not take one are
// tried again at the upkeep, not at every tick.
func (g *group) tickTentative() {
	if len(g.outbox) == 0 || !g.stalled(time.Now()) {
		return
	}
	fresh := false
	for _, p := range g.outbox {
		if p.attempted == nil && !p.held {
			fresh = true
			break
		}
	}
	if !fresh {
		return
	}
	if len(g.outboxPut) > 0 {
		if err := g.flushOutbox(false); err != nil {
			return // the upkeep stops the group on it
		}
	}
	g.deliverTentative(time.Now())
}

// deliverTentative sends the queued messages that are due to every member
// that does not hold them yet, one request per member at a time.
func (g *group) deliverTentative(now time.Time) {
	if g.fork != nil || g.left || len(g.outbox) == 0 {
		return
	}
	var due []*pending
	for _, p := range g.sortedPending() {
		if g.tentativeDue(p, now) {
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return
	}
	v := g.view.Load()
	others := others(v, g.n.self.Sign)
	if others == 0 {
		// Nobody else reads (a member alone with keepers): there is
		// nobody to hand the message to, and a send waits no longer.
		for _, p := range due {
			p.tried(g.n.self.Sign, 0)
		}
		return
	}
	for k, m := range v.members {
		if k == g.n.self.Sign || g.tentBusy[k] || m.keeper {
			continue // a keeper reads nothing
		}
		url := g.peerURL(k, m.url)
		var batch []*pending
		size := 0
		for _, p := range due {
			if at, ok := p.delivered[k]; ok && !g.recheckDue(p, at, now) {
				continue
			}
			if url == "" {
				p.tried(k, others)
				continue
			}
			if size > 0 && size+len(p.frame) > tentativeChunk {
				break
			}
			batch = append(batch, p)
			size += len(p.frame)
		}
		if len(batch) > 0 {
			g.tentBusy[k] = true
			g.postTentative(k, url, batch)
		}
	}
}

// postTentative sends batch to the member k at url from its own goroutine
// and hands the answer to the group's goroutine.
func (g *group) postTentative(k [32]byte, url string, batch []*pending) {
	items := make([]tentativeItem, len(batch))
	for i, p := range batch {
		items[i] = tentativeItem{Order: p.order, Frame: p.frame}
	}
	frame, err := g.signTentative(k, items)
	if err != nil {
		delete(g.tentBusy, k)
		return
	}
	g.postAsync(url, frame, func(resp []byte, err error) {
		var held map[[16]byte]bool
		gone := unanswered(err)
		if err == nil {
			held, err = g.readDelivered(k, resp)
			if err != nil {
				g.n.reject(nil, "bad delivered answer", err)
			}
		}
		_ = g.do(g.n.ctx, func() { g.tentativeAnswered(k, batch, held, gone) })
	})
}

// signTentative signs items as a tentative envelope to member k; a
// failure is logged.
func (g *group) signTentative(k [32]byte, items []tentativeItem) ([]byte, error) {
	payload, err := state.Encode(&tentativeBody{Items: items})
	var frame []byte
	if err == nil {
		frame, err = g.n.sign(&crypto.Envelope{Type: crypto.TypeTentative, Group: g.id, To: k, Payload: payload})
	}
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot sign tentative messages")
	}
	return frame, err
}

// readDelivered checks a member's answer to a tentative envelope and
// returns the ids it holds.
func (g *group) readDelivered(k [32]byte, resp []byte) (map[[16]byte]bool, error) {
	env, err := crypto.Verify(resp)
	if err != nil {
		return nil, err
	}
	if env.Type != crypto.TypeDelivered || env.Sender != k || env.To != g.n.self.Sign || env.Group != g.id {
		return nil, fmt.Errorf("not the member's delivered answer to us: %w", crypto.ErrMalformed)
	}
	var b deliveredBody
	if err := state.Decode(env.Payload, &b); err != nil {
		return nil, fmt.Errorf("delivered answer: %w", err)
	}
	held := make(map[[16]byte]bool, len(b.IDs))
	for _, id := range b.IDs {
		if len(id) == 16 {
			held[[16]byte(id)] = true
		}
	}
	return held, nil
}

// tentativeAnswered records which messages of batch member k holds, and
// whether it answered at all: one that did not is offline as far as a send
// waiting for the group is concerned, until it answers a ping again.
func (g *group) tentativeAnswered(k [32]byte, batch []*pending, held map[[16]byte]bool, gone bool) {
	delete(g.tentBusy, k)
	others := others(g.view.Load(), g.n.self.Sign)
	if gone {
		g.tentGone[k] = time.Now()
	} else {
		delete(g.tentGone, k)
		g.tentSeen[k] = time.Now()
	}
	changed := false
	now := time.Now()
	for _, p := range batch {
		if g.outbox[p.id] != p {
			continue // committed meanwhile
		}
		_, had := p.delivered[k]
		switch {
		case held[p.id]:
			p.delivered[k] = now
			changed = changed || !had
		case had && !gone && held != nil:
			// It answered, without this message: it no longer holds it
			// (its store lost it, or it restarted from an older copy).
			// Not counted any more, and handed over again.
			delete(p.delivered, k)
			changed = true
		}
		p.tried(k, others)
	}
	if changed {
		for _, p := range batch {
			if g.outbox[p.id] == p {
				m := g.pendingMessage(p)
				g.publishMessage(m)
			}
		}
	}
}

// recheckDue reports whether a member that last said at that it holds p,
// queued, is to be asked again now. A member may lose a message after it
// said so (its store lost it, it was put back from a backup), and the
// author, whose message must reach every member or be shown as not held
// by them, would otherwise never know. It asks again after 20 retry
// intervals, and after half the message's age if that is longer, at most
// every tentativeRecheckMax: one request of the messages due at a time, as
// any handing over, and fewer the longer a group stays stalled.
func (g *group) recheckDue(p *pending, at, now time.Time) bool {
	wait := min(max(20*g.n.cfg.RetryInterval, now.Sub(p.sentAt)/2), tentativeRecheckMax)
	return now.Sub(at) >= wait
}

// tentativeRecheckMax bounds how long a member that said it holds a queued
// message goes without being asked again (recheckDue).
const tentativeRecheckMax = 10 * time.Minute

// others counts the members other than self that read messages: not the
// keepers.
func others(v *view, self [32]byte) int {
	n := 0
	for k, m := range v.members {
		if k != self && !m.keeper {
			n++
		}
	}
	return n
}

// tried records that the first attempt to hand p to member k is over, and
// tells a send that waits once every one of the others members has had one.
func (p *pending) tried(k [32]byte, others int) {
	if p.attempted == nil {
		p.attempted = map[[32]byte]bool{}
	}
	p.attempted[k] = true
	if len(p.attempted) >= others && p.firstRound != nil {
		close(p.firstRound)
		p.firstRound = nil
	}
}

// tentativeMessages returns the messages not in the group's order yet,
// this node's queued ones and others' held ones, in the order shown (see
// the top of this file).
func (g *group) tentativeMessages() []Message {
	out := make([]Message, 0, len(g.outbox)+len(g.tent))
	// Changes are not listed; they take effect once committed.
	for _, p := range g.outbox {
		if m := g.pendingMessage(p); m.Kind == "" {
			out = append(out, m)
		}
	}
	for _, h := range g.tent {
		if h.m.Kind == "" {
			out = append(out, h.m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		if !a.SentAt.Equal(b.SentAt) {
			return a.SentAt.Before(b.SentAt)
		}
		return a.ID < b.ID
	})
	return out
}

// stuck reports whether the group cannot commit soon: it knows no host,
// and a majority of its voters is offline (has not answered a ping for
// three ping intervals), so no election can give it one.
func (g *group) stuck(ctx context.Context) bool {
	v := g.view.Load()
	if v.leader != raft.None {
		return false
	}
	var out bool
	_ = g.do(ctx, func() {
		voters, online := g.votersOnline(time.Now())
		out = voters > 0 && online <= voters/2
	})
	return out
}

// votersOnline counts the group's voters and those online: this node, and
// those that answered a ping or took tentative messages within three ping
// intervals and did not fail to answer tentative messages since.
func (g *group) votersOnline(now time.Time) (voters, online int) {
	for k, m := range g.st.Members {
		if !m.Voter {
			continue
		}
		voters++
		if k == g.n.self.Sign || g.answers(k, now) {
			online++
		}
	}
	return voters, online
}

// answers reports whether member k is online as far as this node knows: it
// answered a ping or took tentative messages within three ping intervals,
// and did not fail to answer tentative messages since. Status shows the
// same (publish), so that what it says and what a send decides agree.
func (g *group) answers(k [32]byte, now time.Time) bool {
	var heard, gone time.Time // the last time k answered; when its machine refused us
	if p := g.pl.peers[k]; p != nil {
		heard, gone = p.lastPong, p.gone
	}
	if g.tentSeen[k].After(heard) {
		heard = g.tentSeen[k]
	}
	return now.Sub(heard) < 3*g.n.cfg.PingInterval && !g.tentGone[k].After(heard) && !gone.After(heard)
}

// waiting says why the group cannot commit now, for a person, or "" when
// it has a host.
func waiting(v *view, host bool, self [32]byte) string {
	if host {
		return ""
	}
	voters, online := 0, 0
	for k, m := range v.members {
		if !m.voter {
			continue
		}
		voters++
		if k == self || v.online[k] {
			online++
		}
	}
	if voters == 0 {
		return ""
	}
	if asleep := voters - online; online <= voters/2 {
		return fmt.Sprintf("%d of %d voters offline: messages reach the members online now and join the group's order when a majority of the voters is back", asleep, voters)
	}
	return "no host yet: the voters are choosing one; messages reach the members online meanwhile"
}
