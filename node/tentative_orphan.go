package node

import (
	"bytes"
	"encoding/hex"
	"sort"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/state"
)

// Only its author's outbox proposes a tentative message to the log. An
// author that loses the message after others were shown it (its store put
// back from an older backup, a laptop lost for good) would leave it shown
// tentative on the members that hold it, never ordered, until its sender
// key is deleted: a message others were shown, lost. So a host that holds
// another member's tentative message proposes it itself once the author
// has had time to. The frame is the author's signed chat envelope, exactly
// as the author proposes it, so the state machine takes it as the author's
// (the author's quota, key and message id), and a copy the author proposes
// as well is refused as a duplicate id: the message commits once.
//
// Only the host proposes: a member forwards only entries it signed (the
// host's gate, quota.go, so that no member spends another's quota). The
// host puts the message through that gate as if its author had forwarded
// it, so that a message already committed or on its way, or one over its
// author's quota, costs the log nothing (an author that hands the host a
// thousand tentative messages gets in no more than it could propose). A
// member that holds such a message without hosting hands it to the host
// instead, as tentative delivery hands a message to any member (the frame
// is still the author's, checked as such: takeTentative), and the host
// proposes it once it has held it as long.

// orphanAfter is how long this node must have held a message, and hosted,
// before it proposes the message itself: an author that is online
// proposes its queued messages within a retry interval of learning the
// host, so a group back from a stall has committed them by then.
const orphanAfter = 5 * time.Second

// orphanMaxWait bounds the wait before a message is proposed again, if
// the state machine refused it (its author over quota, say): the waits
// double from orphanAfter up to this.
const orphanMaxWait = 5 * time.Minute

// orphanBatch bounds the messages proposed in one upkeep.
const orphanBatch = 64

// orphanTries is this node's proposals of a held message as the host.
type orphanTries struct {
	last time.Time
	n    int
}

// due reports whether the message is to be proposed (again) at now.
func (o orphanTries) due(now time.Time) bool {
	if o.n == 0 {
		return true
	}
	return now.Sub(o.last) >= min(orphanAfter<<min(o.n, 8), orphanMaxWait)
}

// proposeOrphans proposes, as the host, the tentative messages of other
// members held here that have waited orphanAfter since this node took them
// and since it hosts, in the order they are shown (a sender key's header
// goes with its first message); a member that does not host hands them to
// the host it has followed as long (relayOrphans). Each is proposed only
// in the membership epoch it was sealed in: one of an earlier epoch would
// be refused, and its author seals it anew under the same id once it
// learns of the new one.
func (g *group) proposeOrphans(now time.Time) {
	host := g.role == raft.StateLeader
	if g.fork != nil || g.left || len(g.tent) == 0 || g.leader == raft.None || now.Sub(g.pl.leaderSince) < orphanAfter {
		return
	}
	var to [32]byte
	var url string
	if host && g.holdsProposals() {
		return // gated against the change once it is applied (confhold.go)
	}
	if !host {
		k, m, ok := g.memberByRaft(g.leader)
		if !ok || g.relayBusy {
			return
		}
		if to, url = k, g.peerURL(k, m.url); url == "" {
			return
		}
	}
	var due [][16]byte
	for id, h := range g.tent {
		if h.ref.Epoch == g.st.Epoch && now.Sub(h.at) >= orphanAfter && h.orphan.due(now) {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return
	}
	sort.Slice(due, func(i, j int) bool {
		a, b := g.tent[due[i]], g.tent[due[j]]
		if a.m.Order != b.m.Order {
			return a.m.Order < b.m.Order
		}
		return bytes.Compare(due[i][:], due[j][:]) < 0
	})
	if len(due) > orphanBatch {
		due = due[:orphanBatch]
	}
	// The frames not waiting in tentPut are read from the store, those
	// only, in one read: not every message held, as many as a thousand of
	// each member's (maxTentativeHeld), each up to crypto.MaxBody, at
	// every upkeep that has one due.
	var want [][]byte
	for _, id := range due {
		if _, ok := g.tentPut[string(id[:])]; !ok {
			want = append(want, bytes.Clone(id[:]))
		}
	}
	stored, err := g.tentStore.TentativeOf(g.id[:], want)
	if err != nil {
		g.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot read the tentative messages held here to propose them")
		return
	}
	var relay []tentativeItem
	size := 0
	for _, id := range due {
		h := g.tent[id]
		tries := h.orphan
		h.orphan = orphanTries{last: now, n: h.orphan.n + 1}
		data, ok := g.tentPut[string(id[:])]
		if !ok {
			if data, ok = stored[string(id[:])]; !ok {
				continue // not stored (a failing disk): its author hands it over again
			}
		}
		var it tentativeItem
		if err := state.Decode(data, &it); err != nil {
			continue // checked when stored and when held again
		}
		if g.st.Members[h.author] == nil {
			continue // dropped at the next upkeep (dropFormerTentative)
		}
		if !host {
			if size > 0 && size+len(it.Frame) > tentativeChunk {
				h.orphan = tries // due with the next request
				continue
			}
			size += len(it.Frame)
			relay = append(relay, it)
			continue
		}
		// Through the host's gate, as if its author had forwarded it: a
		// copy on its way or committed, one over the author's quota, a
		// keeper's, or one the sender key rule refuses is dropped there
		// rather than put in the log to be refused. The holder opened the
		// message, which says nothing of the rule: a header sealed to the
		// host alone opens here, and the messages under its key with it
		// (adversary.TestTentativeOrphansNotRefused). A header proposed
		// before in this upkeep counts as on its way (hostQuota.carried).
		m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(h.author)), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: it.Frame}}}
		m, taken := g.gateProposal(m)
		if m == nil {
			continue
		}
		if err := g.proposeFrame(it.Frame); err != nil {
			g.fig.failed.Add(1)
			continue
		}
		g.hostQuota.noteTaken(taken)
		g.n.log.Info().Str("group", g.id.String()).Str("message", hex.EncodeToString(id[:4])).
			Str("author", shortKey(h.author)).Int("try", h.orphan.n).
			Msg("proposing another member's message held here tentative: its author has not proposed it since this node hosts")
	}
	if len(relay) > 0 {
		g.relayOrphans(to, url, relay)
	}
}

// relayOrphans hands items, other members' tentative messages held here
// that their authors have not proposed, to the host k at url, from its own
// goroutine, one request at a time. The host holds them as their authors'
// (takeTentative) and proposes them (proposeOrphans); its answer changes
// nothing here: the messages stay shown until the log commits them, and
// are handed over again, less and less often, until then.
func (g *group) relayOrphans(k [32]byte, url string, items []tentativeItem) {
	frame, err := g.signTentative(k, items)
	if err != nil {
		return
	}
	g.relayBusy = true
	g.n.log.Info().Str("group", g.id.String()).Int("messages", len(items)).Str("host", shortKey(k)).
		Msg("handing the host other members' messages held here tentative: their authors have not proposed them")
	g.postAsync(url, frame, func(_ []byte, err error) {
		if err != nil {
			g.n.log.Debug().Err(err).Str("host", shortKey(k)).Msg("handing the host tentative messages")
		}
		_ = g.do(g.n.ctx, func() { g.relayBusy = false })
	})
}
