package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/state"
)

// The receiving side of tentative delivery (see tentative.go): another
// member's tentative messages are checked, held, stored with the group and
// shown again after a restart, until the log commits them.

// takeTentative checks another member's tentative messages and holds those
// that pass, answering with the ids this node holds (tentative and
// stored, or committed). A message that does not pass is refused and
// counted alone: the others still count.
func (n *Node) takeTentative(ctx context.Context, g *group, env *crypto.Envelope) ([]byte, error) {
	var b tentativeBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.Items) == 0 {
		return nil, n.reject(env, "malformed tentative messages", err)
	}
	type checked struct {
		author [32]byte
		order  uint64
		id     [16]byte
		sealed []byte
		info   *crypto.SealedInfo
		frame  []byte
	}
	var cs []checked
	for _, it := range b.Items {
		c, err := crypto.Verify(it.Frame)
		if err != nil || c.Type != crypto.TypeChat || c.Group != g.id {
			// The author's signed chat message for this group: from the
			// author, or (below) from a member that holds it and hands it
			// to the host (relayOrphans). Either way it is held as the
			// author's.
			n.reject(env, "tentative message not a chat message of this group", err)
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
		cs = append(cs, checked{author: c.Sender, order: it.Order, id: [16]byte(body.ID), sealed: body.Sealed, info: info, frame: it.Frame})
	}
	// A message carrying its sender key's header first: the author sends
	// the header with one message only (needsHeader), and the others of
	// the batch open with the key it gives.
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].info.HasHeader() && !cs[j].info.HasHeader() })
	var ids [][]byte
	err := g.do(ctx, func() {
		for _, c := range cs {
			if c.author != env.Sender && g.role != raft.StateLeader {
				// Another's message only to the host, which proposes it
				// (proposeOrphans); a member hands any other only its own.
				n.reject(env, "tentative message of another member, to a member that does not host", nil)
				continue
			}
			if err := g.holdTentative(c.author, c.order, c.id, c.sealed, c.info, c.frame); err != nil {
				// One reason for all (the cause is in the log): the
				// reason is a metric label, and causes carry numbers.
				n.reject(env, "tentative message refused", err)
				continue
			}
			ids = append(ids, c.id[:])
		}
		g.saveTentative()
		// Held means stored: the author stops handing a message over to
		// a member that holds it, and counts on it to show the message
		// again after a restart. One this node could not write is shown
		// here, but not answered: the author hands it over again, and
		// the write is tried again with the next one.
		stored := ids[:0]
		for _, id := range ids {
			if _, unsaved := g.tentPut[string(id)]; unsaved {
				n.rejects.add(reasonTentativeUnstored)
				continue
			}
			stored = append(stored, id)
		}
		ids = stored
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

// reasonTentativeUnstored counts, in Status().Rejected, the tentative
// messages this node took but could not write, and so did not answer as
// held.
const reasonTentativeUnstored = "tentative message not stored"

// tentativeStore is what a group needs of the store (store.Store) for the
// tentative messages it holds: an interface of its own so that a test can
// have these writes fail alone (FailTentativeWrites), as the raft log's
// failing writes would stop the group first.
type tentativeStore interface {
	UpdateTentative(gid []byte, put map[string][]byte, drop [][]byte) error
	Tentative(gid []byte) (map[string][]byte, error)
	TentativeOf(gid []byte, ids [][]byte) (map[string][]byte, error)
}

// holdTentative opens a tentative message of author and holds it, unless
// it is held or committed already, and records its frame in the store
// (unless frame is nil: restoreTentative read it from there, and it was
// taken in its epoch). It runs on the group's goroutine.
func (g *group) holdTentative(author [32]byte, order uint64, id [16]byte, sealed []byte, info *crypto.SealedInfo, frame []byte) error {
	if g.st.MsgIDs.Has(id) {
		return nil // committed: held, and in order
	}
	if _, ok := g.tent[id]; ok {
		return nil
	}
	am := g.st.Members[author]
	if am == nil || g.st.Members[g.n.self.Sign] == nil {
		return fmt.Errorf("%w: its author is not a member here", errTentative)
	}
	if am.Keeper {
		// A keeper reads nothing and takes no part in the conversation:
		// the state machine refuses every chat entry it signs, so its
		// message would be shown for good, never ordered (and a host
		// would propose it, refused: tentative_orphan.go).
		return fmt.Errorf("%w: its author is a keeper", errTentative)
	}
	// A message this node took before a restart (restoreTentative) in an
	// epoch the group has left since, but of the author's current
	// membership: a node that does not restart goes on showing it until
	// the log commits it (its author seals it again, under the same id,
	// once it learns of the new epoch), and one that restarts does the
	// same, rather than hide it until the author is back.
	restored := frame == nil && info.Epoch < g.st.Epoch && info.Epoch >= am.JoinedAt
	if info.Epoch != g.st.Epoch && !restored {
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
	ref := crypto.KeyRef{Sender: author, Epoch: info.Epoch, ID: info.KeyID}
	if !g.n.keys.holds(g.id, ref) && g.n.keys.deleted(g.id, ref) {
		// Deleted by the retention policy (keys.go): never opened from
		// its header again, as chatKey refuses it for a committed
		// message, though the header may still open (sealed to identity
		// keys, or to a prekey whose secret is kept). Opened, it would
		// also go back into the key store, for a thief to find.
		return fmt.Errorf("%w: its sender key %x was deleted here: %w", errTentative, ref.ID[:4], crypto.ErrKeyDeleted)
	}
	var key *crypto.SenderKey
	var links *heldLinks // the links a header opened here would keep
	if restored {
		// The ring holds the current epoch's keys only (forgetPastKeys);
		// a past epoch's are in the history, read from the key store at
		// the start, unless the retention policy deleted them: then the
		// message is not read again, and no header is opened for it.
		if key = g.hist.keys[ref]; key == nil {
			return fmt.Errorf("%w: its sender key of epoch %d is no longer kept", errTentative, info.Epoch)
		}
	} else if key = g.keys.Lookup(ref); key == nil {
		var err error
		links = &heldLinks{Secrets: g.n.keys}
		if key, err = crypto.OpenSenderKeyRef(g.n.id, links, g.id, ref, sealed); err != nil {
			return err
		}
	}
	opened, err := crypto.OpenMessage(key, g.id, sealed, author, id)
	if err != nil {
		// A key from the message's own header, which is all the message
		// gave, is not kept, nor the link roots the header carried:
		// messages that never open (no log entry, no quota, not counted
		// among the author's held ones) would each add a key to the
		// ring, the history and the key store, and a root to the key
		// store, each a write to disk on this goroutine
		// (adversary.TestTentativeJunkKeysNotKept,
		// TestTentativeJunkLinksNotKept).
		links.drop()
		return err
	}
	if links != nil {
		g.keys.Add(key)
		links.keep()
	}
	// Into the key store, as chatKey does with a key it opens: once in the
	// ring, the committed messages under it find it there, and a restart
	// from a stored board (boardstore.go) reads only the keys the store
	// holds.
	g.n.keys.keep(g.id, key)
	g.hist.keys[key.Ref()] = key
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
	g.tent[id] = &heldMessage{m: m, author: author, ref: ref, c1: opened.Counter, at: time.Now()}
	g.tentBy[author]++
	g.lamport = max(g.lamport, order)
	if m.Kind == "" {
		// A change is shown once committed, on its target.
		g.publishMessage(m)
	}
	return nil
}

// heldLinks is prekey.Secrets whose new link roots wait in roots until
// keep keeps them: a header's roots are kept only once its message opened.
type heldLinks struct {
	prekey.Secrets
	roots []heldRoot
}

type heldRoot struct {
	prekey [prekey.IDSize]byte
	root   [prekey.LinkRootSize]byte
}

func (h *heldLinks) KeepLink(id [prekey.IDSize]byte, root [prekey.LinkRootSize]byte) {
	h.roots = append(h.roots, heldRoot{prekey: id, root: root})
}

// keep keeps the roots that wait, and clears them.
func (h *heldLinks) keep() {
	for i := range h.roots {
		h.Secrets.KeepLink(h.roots[i].prekey, h.roots[i].root)
	}
	h.drop()
}

// drop clears the roots that wait, unkept (nil: none wait).
func (h *heldLinks) drop() {
	if h == nil {
		return
	}
	for i := range h.roots {
		clear(h.roots[i].root[:])
	}
	h.roots = nil
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
			g.forgetStored(id[:])
		}
	}
}

// maxTentativeDrops bounds the ids of stored tentative messages to forget
// that wait for a write: while writes fail, every message held and then
// committed would otherwise add one, for as long as they fail.
const maxTentativeDrops = 1024

// forgetStored notes that the stored tentative message id is to be
// forgotten at the next write (saveTentative). Past maxTentativeDrops ids
// waiting, it notes instead that the next write forgets every stored one
// this node no longer holds (tentResync), which needs no list.
func (g *group) forgetStored(id []byte) {
	if g.tentResync {
		return
	}
	if len(g.tentDrop) >= maxTentativeDrops {
		g.tentResync, g.tentDrop = true, nil
		return
	}
	g.tentDrop = append(g.tentDrop, bytes.Clone(id))
}

// staleTentative returns the ids of the stored tentative messages this
// node no longer holds, read from the store: what tentDrop would list had
// it not overflowed (tentResync).
func (g *group) staleTentative() ([][]byte, error) {
	stored, err := g.tentStore.Tentative(g.id[:])
	if err != nil {
		return nil, err
	}
	var drop [][]byte
	for k := range stored {
		if len(k) != 16 || g.tent[[16]byte([]byte(k))] == nil {
			drop = append(drop, []byte(k))
		}
	}
	return drop, nil
}

// saveTentative writes the tentative messages taken and forgets those
// committed since the last call, in one transaction. A failed write is not
// fatal: it costs only the messages' survival of a restart. What it held
// stays in tentPut and tentDrop, to be written with the next call (the
// next message taken, or the next upkeep), and until then takeTentative
// does not answer those messages as held. The failure is logged once, not
// at every retry, and so is the first write that succeeds after it. What
// waits is bounded: tentPut by the messages held, tentDrop by
// maxTentativeDrops (forgetStored).
func (g *group) saveTentative() {
	// Until the stored ones are held again after a start
	// (restoreTentative), an overflow forgets none of them.
	resync := g.tentResync && g.tentRestored
	if len(g.tentPut) == 0 && len(g.tentDrop) == 0 && !resync {
		return
	}
	var err error
	if len(g.tentPut) > 0 {
		// Held means shown again after a crash: the restart must reach
		// the epoch the messages were taken in and the index they were
		// checked against (holdTentative), though the commit index that
		// says so is written lazily.
		err = g.storeHeldCommit()
	}
	if err == nil {
		err = g.tentStore.UpdateTentative(g.id[:], g.tentPut, g.tentDrop)
	}
	if err == nil && resync {
		// Read only once a write succeeds, not at every failed retry.
		var drop [][]byte
		if drop, err = g.staleTentative(); err == nil {
			err = g.tentStore.UpdateTentative(g.id[:], nil, drop)
		}
	}
	if err != nil {
		if !g.tentFailing {
			g.tentFailing = true
			g.n.log.Warn().Err(err).Str("group", g.id.String()).
				Msg("cannot store other members' tentative messages: they are shown, but their authors are not told this node holds them, until a write succeeds")
		}
		return
	}
	if g.tentFailing {
		g.tentFailing = false
		g.n.log.Info().Str("group", g.id.String()).Msg("other members' tentative messages are stored again")
	}
	clear(g.tentPut)
	g.tentDrop = g.tentDrop[:0]
	g.tentResync = g.tentResync && !resync
}

// restoreTentative holds again, once after a start when the log is
// replayed, the tentative messages stored before: each is checked again as
// when it arrived, and forgotten if it committed meanwhile or no longer
// passes (its author left, its sender key was deleted, an epoch the
// replayed log has not reached). One sealed in an earlier epoch than the
// replayed log's passes, as it did before the restart (holdTentative).
//
// They are held again in the order they are shown, by order, then id, not
// in the store's: the order bound (maxOrderJump) is checked against the
// clock that the messages before each one moved on, as when they arrived,
// so a chain of messages each far ahead of the last passes again only in
// that order.
func (g *group) restoreTentative() {
	if g.tentRestored || g.st.Applied < g.replayTo {
		return
	}
	g.tentRestored = true
	stored, err := g.tentStore.Tentative(g.id[:])
	if err != nil || len(stored) == 0 {
		return
	}
	type storedItem struct {
		id     [16]byte
		author [32]byte
		order  uint64
		sealed []byte
		info   *crypto.SealedInfo
	}
	var items []storedItem
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
		if !ok {
			drop = append(drop, id)
			continue
		}
		items = append(items, storedItem{id: [16]byte(id), author: c.Sender, order: it.Order, sealed: body.Sealed, info: info})
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].order != items[j].order {
			return items[i].order < items[j].order
		}
		return bytes.Compare(items[i].id[:], items[j].id[:]) < 0
	})
	for _, it := range items {
		if g.holdTentative(it.author, it.order, it.id, it.sealed, it.info, nil) != nil {
			drop = append(drop, it.id[:])
			continue
		}
		if _, held := g.tent[it.id]; !held {
			drop = append(drop, it.id[:]) // committed meanwhile
		}
	}
	for _, id := range drop {
		g.forgetStored(id)
	}
	g.saveTentative()
	g.publish()
}

// forgetDeletedTentative drops the tentative messages held here whose
// sender key the key store deleted, or whose counter its floor passed
// (floors, keyfloor.go): as pruneKeys does for committed messages, so that
// a message is no longer shown once its key is gone, held or committed,
// and its stored frame is forgotten too.
func (g *group) forgetDeletedTentative(floors map[crypto.KeyRef]uint64) {
	n := len(g.tent)
	for id, h := range g.tent {
		if !g.n.keys.holds(g.id, h.ref) || pastFloor(h.c1, floors[h.ref]) {
			g.committedTentative(id, "", false)
		}
	}
	if len(g.tent) != n {
		g.publish()
	}
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
