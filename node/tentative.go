package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/content"
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

// heldMessage is another member's tentative message held here.
type heldMessage struct {
	m      Message
	author [32]byte
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
			if p.delivered[k] {
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
	payload, err := state.Encode(&tentativeBody{Items: items})
	var frame []byte
	if err == nil {
		frame, err = g.n.sign(&crypto.Envelope{Type: crypto.TypeTentative, Group: g.id, To: k, Payload: payload})
	}
	if err != nil {
		g.n.log.Warn().Err(err).Msg("cannot sign tentative messages")
		delete(g.tentBusy, k)
		return
	}
	g.n.wg.Add(1)
	go func() {
		defer g.n.wg.Done()
		ctx, cancel := context.WithTimeout(g.n.ctx, peerRequestTimeout)
		resp, err := g.n.cfg.Link.Post(ctx, url, frame)
		cancel()
		var held map[[16]byte]bool
		gone := unanswered(err)
		if err == nil {
			held, err = g.readDelivered(k, resp)
			if err != nil {
				g.n.reject(nil, "bad delivered answer", err)
			}
		}
		_ = g.do(g.n.ctx, func() { g.tentativeAnswered(k, batch, held, gone) })
	}()
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
	for _, p := range batch {
		if g.outbox[p.id] != p {
			continue // committed meanwhile
		}
		if held[p.id] && !p.delivered[k] {
			p.delivered[k] = true
			changed = true
		}
		p.tried(k, others)
	}
	if changed {
		for _, p := range batch {
			if g.outbox[p.id] == p {
				m := g.pendingMessage(p)
				g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
			}
		}
	}
}

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

// takeTentative checks another member's tentative messages and holds those
// that pass, answering with the ids this node holds (tentative or
// committed). A message that does not pass is refused and counted alone:
// the others still count.
func (n *Node) takeTentative(ctx context.Context, g *group, env *crypto.Envelope) ([]byte, error) {
	var b tentativeBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.Items) == 0 {
		return nil, n.reject(env, "malformed tentative messages", err)
	}
	type checked struct {
		order  uint64
		id     [16]byte
		sealed []byte
		info   *crypto.SealedInfo
		frame  []byte
	}
	var cs []checked
	for _, it := range b.Items {
		c, err := crypto.Verify(it.Frame)
		if err != nil || c.Type != crypto.TypeChat || c.Sender != env.Sender || c.Group != g.id {
			// Only the author sends its own messages, for this group.
			n.reject(env, "tentative message not the sender's own chat message", err)
			continue
		}
		var body state.ChatBody
		if err := state.Decode(c.Payload, &body); err != nil || len(body.ID) != 16 {
			n.reject(env, "malformed tentative message", err)
			continue
		}
		info, err := crypto.ReadSealed(body.Sealed)
		if err != nil {
			n.reject(env, "malformed tentative message", err)
			continue
		}
		cs = append(cs, checked{order: it.Order, id: [16]byte(body.ID), sealed: body.Sealed, info: info, frame: it.Frame})
	}
	var ids [][]byte
	err := g.do(ctx, func() {
		for _, c := range cs {
			if err := g.holdTentative(env.Sender, c.order, c.id, c.sealed, c.info, c.frame); err != nil {
				// One reason for all (the cause is in the log): the
				// reason is a metric label, and causes carry numbers.
				n.reject(env, "tentative message refused", err)
				continue
			}
			ids = append(ids, c.id[:])
		}
		g.saveTentative()
		g.publish()
	})
	if err != nil {
		return nil, err
	}
	payload, err := state.Encode(&deliveredBody{IDs: ids})
	if err != nil {
		return nil, err
	}
	return n.sign(&crypto.Envelope{Type: crypto.TypeDelivered, Group: g.id, To: env.Sender, Payload: payload})
}

// errTentative marks a tentative message this node does not hold.
var errTentative = errors.New("tentative message")

// holdTentative opens a tentative message of author and holds it, unless
// it is held or committed already, and records its frame in the store
// (unless frame is nil: it is read from there). It runs on the group's
// goroutine.
func (g *group) holdTentative(author [32]byte, order uint64, id [16]byte, sealed []byte, info *crypto.SealedInfo, frame []byte) error {
	if _, ok := g.st.MsgIDs[id]; ok {
		return nil // committed: held, and in order
	}
	if _, ok := g.tent[id]; ok {
		return nil
	}
	am := g.st.Members[author]
	if am == nil || g.st.Members[g.n.self.Sign] == nil {
		return fmt.Errorf("%w: its author is not a member here", errTentative)
	}
	if info.Epoch != g.st.Epoch {
		// Sealed for another membership than this node's: one of the two
		// is behind, and the log will sort it out.
		return fmt.Errorf("%w: sealed in membership epoch %d, this node is in %d", errTentative, info.Epoch, g.st.Epoch)
	}
	if g.tentBy[author] >= maxTentativeHeld {
		return fmt.Errorf("%w: %d of the author's messages wait already", errTentative, g.tentBy[author])
	}
	if limit := max(g.lamport, g.st.Applied) + maxOrderJump; order > limit || order == 0 {
		return fmt.Errorf("%w: order %d out of range", errTentative, order)
	}
	key, err := g.keys.Open(crypto.KeyRef{Sender: author, Epoch: info.Epoch, ID: info.KeyID}, sealed)
	if err != nil {
		return err
	}
	opened, err := crypto.OpenMessage(key, g.id, sealed, author, id)
	if err != nil {
		return err
	}
	m := Message{
		ID: hex.EncodeToString(id[:]), Author: g.idText(am.ID), Name: am.Name,
		SentAt: time.Unix(0, opened.Time).UTC(), State: StateTentative, GroupID: g.id.String(), Order: order,
	}
	cnt, perr := content.Parse(opened.Body)
	content.Show(&m, cnt, perr)
	if frame != nil {
		// Ciphertext only, as the log; written with the others of its
		// envelope (saveTentative).
		if data, err := state.Encode(&tentativeItem{Order: order, Frame: frame}); err == nil {
			g.tentPut[string(id[:])] = data
		}
	}
	g.tent[id] = &heldMessage{m: m, author: author}
	g.tentBy[author]++
	g.lamport = max(g.lamport, order)
	if m.Kind == "" {
		// A change is shown once committed, on its target.
		g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
	}
	return nil
}

// committedTentative drops the tentative copy of a message the log has
// committed, whose text is text as committed. An author that signed
// another text under the same id had the members shown a message that is
// not the one in the order: the order's wins, and it is counted.
func (g *group) committedTentative(id [16]byte, text string, readable bool) {
	if h, ok := g.tent[id]; ok {
		if readable && h.m.Text != text {
			g.n.countReject("tentative message changed at its commit", "an author committed another text than it had handed over tentatively; the committed one is shown")
		}
		delete(g.tent, id)
		if g.tentBy[h.author]--; g.tentBy[h.author] <= 0 {
			delete(g.tentBy, h.author)
		}
		if _, unsaved := g.tentPut[string(id[:])]; unsaved {
			delete(g.tentPut, string(id[:]))
		} else {
			g.tentDrop = append(g.tentDrop, append([]byte(nil), id[:]...))
		}
	}
}

// saveTentative writes the tentative messages taken and forgets those
// committed since the last call, in one transaction. A failed write costs
// only their survival of a restart (a restart drops the committed ones
// anyway), so it is logged, not fatal.
func (g *group) saveTentative() {
	if len(g.tentPut) == 0 && len(g.tentDrop) == 0 {
		return
	}
	if err := g.n.store.UpdateTentative(g.id[:], g.tentPut, g.tentDrop); err != nil {
		g.n.log.Warn().Err(err).Msg("cannot store tentative messages; they are shown until a restart")
	}
	clear(g.tentPut)
	g.tentDrop = g.tentDrop[:0]
}

// restoreTentative holds again, once after a start when the log is
// replayed, the tentative messages stored before: each is checked again as
// when it arrived, and forgotten if it committed meanwhile or no longer
// passes (its author left, a new membership epoch).
func (g *group) restoreTentative() {
	if g.tentRestored || g.st.Applied < g.replayTo {
		return
	}
	g.tentRestored = true
	stored, err := g.n.store.Tentative(g.id[:])
	if err != nil || len(stored) == 0 {
		return
	}
	var drop [][]byte
	for key, data := range stored {
		id := []byte(key)
		var it tentativeItem
		ok := state.Decode(data, &it) == nil && len(id) == 16
		var c *crypto.Envelope
		var body state.ChatBody
		var info *crypto.SealedInfo
		if ok {
			c, err = crypto.Verify(it.Frame)
			ok = err == nil && c.Type == crypto.TypeChat && c.Group == g.id
		}
		if ok {
			ok = state.Decode(c.Payload, &body) == nil && len(body.ID) == 16 && [16]byte(body.ID) == [16]byte(id)
		}
		if ok {
			info, err = crypto.ReadSealed(body.Sealed)
			ok = err == nil
		}
		if !ok || g.holdTentative(c.Sender, it.Order, [16]byte(id), body.Sealed, info, nil) != nil {
			drop = append(drop, id)
			continue
		}
		if _, held := g.tent[[16]byte(id)]; !held {
			drop = append(drop, id) // committed meanwhile
		}
	}
	g.tentDrop = append(g.tentDrop, drop...)
	g.saveTentative()
	g.publish()
}

// dropFormerTentative drops the tentative messages of authors that are no
// longer members: theirs will not commit any more.
func (g *group) dropFormerTentative() {
	n := len(g.tent)
	for id, h := range g.tent {
		if g.st.Members[h.author] == nil {
			g.committedTentative(id, "", false)
		}
	}
	if len(g.tent) != n {
		g.publish()
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
		var heard time.Time // the last time k answered: a pong, or tentative messages
		if p := g.pl.peers[k]; p != nil {
			heard = p.lastPong
		}
		if g.tentSeen[k].After(heard) {
			heard = g.tentSeen[k]
		}
		if k == g.n.self.Sign || (now.Sub(heard) < 3*g.n.cfg.PingInterval && !g.tentGone[k].After(heard)) {
			online++
		}
	}
	return voters, online
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
