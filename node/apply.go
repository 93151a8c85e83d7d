package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

func (g *group) apply(entries []*pb.Entry) {
	g.appliedHere += uint64(len(entries))
	g.progressAt = time.Now()
	g.fig.applied.Add(uint64(len(entries)))
	for _, e := range entries {
		idx := e.GetIndex()
		switch e.GetType() {
		case pb.EntryNormal:
			var res state.Result
			if env := g.n.verified.take(e.GetData()); env != nil {
				res = g.st.ApplyEntryEnv(idx, e.GetData(), env, nil)
			} else {
				res = g.st.ApplyEntry(idx, e.GetData())
			}
			if len(e.GetData()) > 0 && (res.Env == nil || res.Env.Type != crypto.TypeCheckpoint) {
				g.entries++
			}
			g.afterEntry(idx, res)
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			res, cc := applyConfEntry(g.st, e)
			g.logReject(idx, res)
			if res.Err == nil && res.Conf != nil && res.Conf.Kind == state.Remove {
				g.tellRemoved(res.Conf.NodeID, idx)
			}
			g.confState = g.rn.ApplyConfChange(cc)
			g.afterConf(res)
		}
	}
	g.endTrust()
}

// tellRemoved has the host keep telling a member it removes, by the entry
// at index idx, that this entry is committed, for removedTellFor (see
// tellRemovedAgain). Without it, a member whose removal the host commits
// (with other members' acknowledgements) and applies before the member has
// heard that the entry is committed never hears it: raft stops replicating
// to a removed member, which then waits in vain (a `demes leave` that timed
// out although the member left). The host sends what raft would have sent
// next: an append of the entries the member may lack up to idx, with idx as
// the commit index; the member's raft takes what it has already as it is.
//
// Where that append starts matters: raft ignores an append that starts
// before its commit index, and a member may have committed more than the
// host has heard it acknowledge (its answers late or lost). It holds at
// least what it acknowledged (the progress's Match), so an append starting
// at some index of [Match, idx] is taken: the one at its last index, or at
// idx itself (no entries: the commit index alone) if it holds the removal.
// raft's own count of what was sent (Next) is no bound: it falls back to
// Match+1 after a failed send. So the host tries idx and Match first, then
// each index from idx down in turn, one a retry tick.
func (g *group) tellRemoved(id, idx uint64) {
	if g.role != raft.StateLeader || id == g.raftID {
		return
	}
	st := g.rn.Status()
	pr, ok := st.Progress[id]
	if !ok {
		return
	}
	// The state machine has moved it to the former members already.
	for k, m := range g.st.Former {
		if m.RaftID == id && ownURL(k, m.URL) != "" {
			if g.removedPeers == nil {
				g.removedPeers = map[uint64]removedPeer{}
			}
			lo := min(pr.Match, idx)
			rp := removedPeer{key: k, url: ownURL(k, m.URL), term: st.GetTerm(), lo: lo, index: idx, until: time.Now().Add(removedTellFor)}
			g.appendRemoved(id, rp, idx)
			if lo != idx {
				g.appendRemoved(id, rp, lo)
			}
			g.removedPeers[id] = rp
			return
		}
	}
}

// removedTellFor is how long a host keeps telling a removed member that its
// removal is committed.
const removedTellFor = 30 * time.Second

// removedPeer is a member the host removed and keeps telling so: the
// entries up to index (its removal), with index committed, after an index
// of [lo, index]; tries counts the tells after the first.
type removedPeer struct {
	key             [32]byte
	url             string
	term, lo, index uint64
	tries           uint64
	until           time.Time
}

// tellRemovedAgain sends each member removed lately its append again, at
// every retry tick, while this node leads in the term it removed it, each
// time from the next start of its range, from the removal down.
func (g *group) tellRemovedAgain(now time.Time) {
	for id, rp := range g.removedPeers {
		if now.After(rp.until) || g.role != raft.StateLeader || g.term != rp.term {
			delete(g.removedPeers, id)
			continue
		}
		g.appendRemoved(id, rp, rp.index-rp.tries%(rp.index-rp.lo+1))
		rp.tries++
		g.removedPeers[id] = rp
	}
}

// appendRemoved sends removed member id the append of the entries after
// from up to its removal, with the removal as the commit index.
func (g *group) appendRemoved(id uint64, rp removedPeer, from uint64) {
	var ents []*pb.Entry
	if from < rp.index {
		var err error
		if ents, err = g.storage.Entries(from+1, rp.index+1, maxAppendBytes); err != nil {
			return
		}
	}
	prevTerm, err := g.storage.Term(from)
	if err != nil {
		return
	}
	data, err := proto.Marshal(&pb.Message{
		Type: pb.MsgApp.Enum(), From: proto.Uint64(g.raftID), To: proto.Uint64(id),
		Term: proto.Uint64(rp.term), Index: proto.Uint64(from), LogTerm: proto.Uint64(prevTerm),
		Entries: ents, Commit: proto.Uint64(rp.index),
	})
	if err != nil {
		return
	}
	if p := g.n.peerFor(g.peerURL(rp.key, rp.url)); p != nil {
		select {
		case p.q <- &outMsg{g: g, to: rp.key, m: data, id: id}:
		default:
		}
	}
}

// applyConfEntry applies the configuration change entry e to st, and returns
// the result and the change for raft, its node id replaced by the one the
// state machine gave it (0, a no-op for raft, when it refused the change or
// could not decode it: every node refuses it alike).
func applyConfEntry(st *state.State, e *pb.Entry) (state.Result, pb.ConfChangeI) {
	idx := e.GetIndex()
	if e.GetType() == pb.EntryConfChange {
		cc := &pb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			cc = &pb.ConfChange{}
		}
		res := st.ApplyConf(idx, cc.GetNodeId(), confKind(cc.GetType()), cc.GetContext())
		cc.NodeId = proto.Uint64(res.Conf.NodeID)
		return res, cc
	}
	cc := &pb.ConfChangeV2{}
	if err := proto.Unmarshal(e.GetData(), cc); err != nil || len(cc.GetChanges()) != 1 {
		for _, c := range cc.GetChanges() {
			c.NodeId = proto.Uint64(0)
		}
		return st.ApplyConf(idx, 0, 0, nil), cc
	}
	c := cc.GetChanges()[0]
	res := st.ApplyConf(idx, c.GetNodeId(), confKind(c.GetType()), cc.GetContext())
	c.NodeId = proto.Uint64(res.Conf.NodeID)
	return res, cc
}

func confKind(t pb.ConfChangeType) state.ConfKind {
	switch t {
	case pb.ConfChangeAddNode:
		return state.AddVoter
	case pb.ConfChangeAddLearnerNode:
		return state.AddLearner
	case pb.ConfChangeRemoveNode:
		return state.Remove
	}
	return 0
}

func (g *group) logReject(idx uint64, res state.Result) {
	if res.Err == nil {
		return
	}
	// The log is replayed at every start: an entry up to the commit index
	// found on disk was rejected, logged and counted when it was first
	// applied, so it is only noted at debug level.
	ev := g.n.log.Warn()
	if idx <= g.replayTo {
		ev = g.n.log.Debug()
	}
	ev = ev.Str("group", g.id.String()).Uint64("index", idx).Str("reason", res.Err.Error())
	if res.Env != nil {
		ev = ev.Str("sender", shortKey(res.Env.Sender)).Str("type", res.Env.Type.String())
	}
	ev.Msg("rejected log entry")
	if idx > g.replayTo {
		g.n.rejects.add("log entry: " + reasonKey(res.Err))
	}
}

func (g *group) afterConf(res state.Result) {
	g.noteApplied(res)
	if res.Err != nil {
		return
	}
	g.n.log.Debug().Str("group", g.id.String()).Uint64("index", g.st.Applied).Int("members", len(g.st.Members)).Int("voters", len(g.st.Voters())).Msg("membership changed")
	// Once the log names the members, the provisional trust of a join is
	// no longer needed.
	if g.st.Members[g.n.self.Sign] != nil && len(g.provisional) > 0 && g.provUntil == 0 {
		g.provisional = map[[32]byte]viewMember{}
		g.info.Provisional = nil
		_ = g.n.store.CreateGroup(g.id[:], encodeGroupInfo(g.info))
	}
	if g.st.Members[g.n.self.Sign] == nil && g.st.Former[g.n.self.Sign] != nil && !g.left {
		g.left = true
		g.n.log.Info().Str("group", g.id.String()).Msg("this node is no longer a member of the group")
		// A restart restores the group from a snapshot (res.Env nil),
		// which does not say who removed this node: what the stored
		// info says stands (TestRemovedBySurvivesRestart).
		if res.Env != nil {
			g.noteRemovedBy(res.Env)
		}
	}
	// A member removed and invited again joins with a new store, and the
	// log it receives holds its removal before its new join: once that is
	// applied, it is a member again.
	if g.st.Members[g.n.self.Sign] != nil && g.left {
		g.left = false
		g.noteRemovedBy(nil)
	}
	g.epochChanged()
}

// epochChanged follows a new membership epoch (a change of members, or a
// rekey): the keys of the old epoch are forgotten and queued messages
// sealed again under a new key.
func (g *group) epochChanged() {
	if g.keysEpoch != g.st.Epoch {
		g.forgetPastKeys()
		g.keysEpoch = g.st.Epoch
		clear(g.keyUse)
	}
	// Queued messages were sealed under a key of the old epoch; re-seal them
	// now rather than have each rejected once.
	g.resealOutbox()
}

// forgetPastKeys drops from the key ring the keys of the epochs before the
// current one. No message of an old epoch can be accepted any more, so
// their keys are of no use for opening (history keeps those that open the
// messages read, for pages); nor are this node's own, once the outbox is
// restored: resealOutbox seals what it holds under a new key.
func (g *group) forgetPastKeys() {
	g.keys.Forget(g.st.Epoch)
	if g.restored == nil {
		g.keys.ForgetOwn(g.st.Epoch)
	}
}

func (g *group) afterEntry(idx uint64, res state.Result) {
	if res.Err == nil && res.Env != nil && res.Env.Type == crypto.TypeRekey {
		if res.Env.Sender == g.n.self.Sign {
			// A rekey may follow a compromise of this node's memory:
			// the next headers start new links.
			g.links.drop()
		}
		g.epochChanged()
	}
	g.hostQuota.applied(res)
	g.noteApplied(res)
	g.inviteApplied(idx, res)
	if res.Err != nil {
		g.logReject(idx, res)
		// Our own message sealed under a stale or unknown key: re-seal
		// and retry, once the whole batch is applied (a later entry may
		// register the key). Not for a retry of a message that did
		// commit: nothing queued is the worse for it, and under load,
		// where retries are many, each resealing checked the whole outbox
		// again, for seconds a turn.
		if res.Env != nil && res.Env.Sender == g.n.self.Sign && res.Env.Type == crypto.TypeChat && !errors.Is(res.Err, state.ErrDuplicateID) {
			g.ownRejected(res.Env)
			g.resealDue = true
		}
		return
	}
	if res.Env != nil && res.Env.Type == crypto.TypePrekey {
		g.prekeysApplied++
		if res.Env.Sender == g.n.self.Sign && !g.n.cfg.Keeper {
			// A prekey of ours this node no longer holds: others seal
			// to it until the next one is committed.
			g.checkOwnPrekey(res.Env.Payload)
		}
	}
	// Only members list messages: a node applies entries while it is not
	// one yet (a joiner before its join) or not any more.
	if res.Chat == nil || g.st.Members[g.n.self.Sign] == nil {
		return
	}
	if g.n.cfg.Keeper || g.st.Members[g.n.self.Sign].Keeper {
		// A keeper opens nothing; it is no recipient anyway.
		return
	}
	g.deliver(res.Chat, g.st.Members[res.Chat.Sender])
}

// deliver opens an accepted chat message by author (a member at its index)
// and, if this node can read it, lists it and tells the UI; either way, the
// message is no longer queued here.
func (g *group) deliver(c *state.Chat, author *state.Member) {
	m := Message{
		ID:      hex.EncodeToString(c.ID[:]),
		Index:   c.Index,
		State:   StateCommitted,
		GroupID: g.id.String(),
		SentAt:  time.Unix(0, c.Time).UTC(),
	}
	if author != nil {
		m.Author, m.Name = g.idText(author.ID), author.Name
	}
	key, err := g.chatKey(c)
	var opened *crypto.Opened
	if err == nil {
		// The record's own signature too, though the state machine
		// checked the envelope's: a message shown is one that a
		// transcript can prove its author wrote.
		if g.pre != nil {
			g.prechecked++
		}
		if opened = g.ownOpened(c, key); opened == nil {
			opened = g.pre.opened(c.Index, key, c)
		}
		if opened == nil {
			opened, err = crypto.OpenMessage(key, g.id, c.Sealed, c.Sender, c.ID)
		}
	}
	switch {
	case err == nil:
		g.n.keys.saw(g.id, key.Ref(), opened.Counter)
		m.SentAt = time.Unix(0, opened.Time).UTC()
		// The record names the head its author had seen: one of ours
		// before it, or the two histories differ (fork.go).
		g.checkRecordHead(c, opened.Head)
		cnt, listed, perr := g.applyContent(c, m.Author, opened.Body)
		if !listed {
			// A change: it changed its target, if the rules let it.
			g.outboxCommitted(c)
			g.committedTentative(c.ID, "", false)
			return
		}
		content.Show(&m, cnt, perr)
	case errors.Is(err, crypto.ErrNotRecipient):
		// A message from before we joined; not ours to read.
	case errors.Is(err, crypto.ErrMessageKeyDeleted):
		// Below its key's floor (keyfloor.go): deleted by the policy,
		// whatever its header says. (Not a lost key store: a member
		// may send a header naming this node's prekey under an old
		// key of its own at a counter below the floor.)
	case errors.Is(err, prekey.ErrNoLink):
		// Over a key link whose root this node does not hold: lost
		// (a failed write of the key store, a keys.db put back from an
		// older copy), or never given (a forged stanza, which anyone can
		// write). Not a lost key store: no alarm, no rekey (which would
		// not help: the others keep sealing over the same links). A new
		// prekey does: every sender starts new links to it.
		g.linkLost(c)
	case errors.Is(err, crypto.ErrKeyDeleted):
		// Its key is past this node's retention (keys.go): no longer
		// readable here, by design. Unless the retention did not delete
		// it: a key of the current epoch sealed to a prekey whose secret
		// is gone means that the key store was lost, and new keys are
		// needed to read the group again.
		ref := crypto.KeyRef{Sender: c.Sender, Epoch: c.Epoch, ID: c.KeyID}
		if c.Epoch == g.st.Epoch && !g.n.keys.deleted(g.id, ref) && g.namedOwnPrekey(c.Sealed) {
			g.noteKeysLost(fmt.Sprintf("message %d is sealed to a prekey of this node whose secret is not in the key store", c.Index))
		}
	default:
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Uint64("index", c.Index).Msg("cannot open message")
		g.n.rejects.add("open message: " + reasonKey(err))
	}
	if err == nil {
		g.hist.add(m, key, opened.Counter)
	}
	// Only members who can read a message list it.
	g.outboxCommitted(c)
	g.committedTentative(c.ID, m.Text, err == nil)
	if err == nil {
		g.publishMessage(m)
	}
}

// chatKey returns the sender key an accepted chat message is sealed under:
// from the cache, or from the message's own key header, which it then
// caches. The state machine accepted the message, so either its key was
// registered by a header this node applied in the current epoch, as a member
// and so a recipient, or the message carries the header.
//
// A key the ring learns from a header goes to the key store (keys.go); one
// the retention policy deleted is never opened from its header again.
func (g *group) chatKey(c *state.Chat) (*crypto.SenderKey, error) {
	ref := crypto.KeyRef{Sender: c.Sender, Epoch: c.Epoch, ID: c.KeyID}
	if k := g.keys.Lookup(ref); k != nil {
		return k, nil
	}
	if g.n.keys.deleted(g.id, ref) {
		return nil, fmt.Errorf("open sender key %x: %w", ref.ID[:4], crypto.ErrKeyDeleted)
	}
	k, err := g.keys.Open(ref, c.Sealed)
	if err == nil {
		g.n.keys.keep(g.id, k)
		g.hist.keys[ref] = k
	}
	return k, err
}

// idText returns id's text form, kept for the next message by the same
// author: encoding it (bech32) for every message shown cost two thirds as
// much CPU as opening the message.
func (g *group) idText(id identity.PublicID) string {
	t, ok := g.idTexts[id]
	if !ok {
		if g.idTexts == nil || len(g.idTexts) >= 4096 {
			g.idTexts = map[identity.PublicID]string{}
		}
		t = id.String()
		g.idTexts[id] = t
	}
	return t
}

// noteRemovedBy records, in the group's stored info, who removed this node
// when env, the entry that ended its membership, is another member's
// removal, so that status can say "removed by"; a leave of its own, or nil
// (this node is a member again), clears it.
func (g *group) noteRemovedBy(env *crypto.Envelope) {
	by, name := "", ""
	if env != nil && env.Type == crypto.TypeRemove && env.Sender != g.n.self.Sign {
		if m := g.st.MemberOrFormer(env.Sender); m != nil {
			by, name = m.ID.String(), m.Name
		}
	}
	if g.info.RemovedBy == by && g.info.RemovedByName == name {
		return
	}
	g.info.RemovedBy, g.info.RemovedByName = by, name
	if err := g.n.store.CreateGroup(g.id[:], encodeGroupInfo(g.info)); err != nil {
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("could not store who removed this node; status will say it left")
	}
}
