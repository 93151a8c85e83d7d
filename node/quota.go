package node

import (
	"math"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// The host's side of the quotas (issue 15, item 11): the state machine
// rejects a chat message over its sender's quota, but a rejected entry is
// still in every member's log. So the host looks at the entries members
// forward to it before raft appends them, and drops those that could only
// be rejected: an entry signed by another member than the one forwarding it
// (honest members forward only their own), a chat message already
// committed or on its way, one over its sender's quota counting the
// sender's messages appended but not yet applied, a keeper's, and one the
// sender key rule refuses (sealingTaken: such refusals count against no
// quota). A member flooding the host thus grows the log by its quota and no
// more. Its own node holds its
// messages back before that (outbox.go, proposeQueued).

// Reasons the host drops a forwarded entry, as counted in Status().Rejected
// and logged (once a minute at most per member and reason).
const (
	reasonProposalOverQuota  = "proposal over the member's quota"
	reasonProposalNotOwn     = "proposal of an entry signed by another member"
	reasonProposalLead       = "proposal of a lead entry by a member that does not lead"
	reasonProposalMalformed  = "proposal of a malformed entry"
	reasonProposalDuplicate  = "proposal of a message already committed or on its way"
	reasonProposalTooManyOut = "proposal beyond the messages a member may have on their way"
	reasonProposalUnsealed   = "proposal under a sender key the group does not take"
	reasonProposalKeeperChat = "proposal of a chat message by a keeper"
)

// maxHostPendingAge is how long the host counts a chat entry raft took
// that has not applied (a backstop: see pendingOf); maxHostPendingPerSender
// bounds the entries of one member on their way, whatever its quota, so
// that checking one costs little.
const (
	maxHostPendingAge       = time.Minute
	maxHostPendingPerSender = 4096
)

// hostQuota is what the host keeps of the chat entries it let into raft in
// its current term that are not applied yet, and of the members it found
// over quota. It is owned by the group's goroutine.
type hostQuota struct {
	term    uint64
	senders map[[32]byte][]hostPending // in the order raft took them
	ids     map[[16]byte][32]byte      // their message ids, to their senders
	// carried are the sender keys whose header a chat entry the host let
	// into raft in this term carries: a message under one of them passes
	// the sender key rule once that entry is applied (sealingTaken).
	carried map[crypto.KeyRef]bool
	// closed are the members whose proposals the host dropped as over
	// quota and that have no room for a large message yet (see
	// closedFrameSize).
	closed map[[32]byte]bool
	// control are the members' allowances for entries other than chat
	// messages, by raft id (controlgate.go).
	control map[uint64]*controlBucket
}

// closedFrameSize: while a member is closed, the host refuses its frames
// larger than this as soon as it has read who signed them, without reading
// the rest or checking the signature. From a member to its host, only a
// batch that carries proposals is that large (raft's answers are a few
// dozen bytes each, and a batch holds at most maxBatch of them), and the
// proposals a closed member can make are dropped anyway: so a member
// flooding the host with large messages over its quota costs it what a
// stranger does. A member is open again once a frame of this size fits its
// quota (reopenQuotas, every retry interval).
const closedFrameSize = 64 << 10

type hostPending struct {
	sender [32]byte
	id     [16]byte
	item   state.QuotaItem
	at     time.Time      // when the host took it, to forget it if it never applies
	header *crypto.KeyRef // the sender key whose header it carries, if any
}

// reset forgets everything: a new term, or leadership lost.
func (h *hostQuota) reset(term uint64) {
	h.term = term
	h.senders = map[[32]byte][]hostPending{}
	h.ids = map[[16]byte][32]byte{}
	h.carried = map[crypto.KeyRef]bool{}
	h.closed = map[[32]byte]bool{}
	// The allowances stay (controlgate.go): a bucket refills with time
	// whether this node leads or not, and one refilled by every new term
	// would let a voter that forces elections refill everyone's.
}

// publishClosed makes the closed members known to the peer handler.
func (g *group) publishClosed() {
	c := make(map[[32]byte]bool, len(g.hostQuota.closed))
	for k := range g.hostQuota.closed {
		c[k] = true
	}
	g.closed.Store(&c)
}

// reopenQuotas opens the closed members whose quotas have room for a large
// frame again, and all of them when this node no longer leads.
func (g *group) reopenQuotas() {
	h := &g.hostQuota
	if len(h.closed) == 0 {
		return
	}
	now := time.Now()
	for k := range h.closed {
		queue := h.pendingOf(k, now)
		n, _ := g.st.CheckQuota(k, append(queue, state.QuotaItem{Time: math.MaxInt64, Size: closedFrameSize}))
		if g.role != raft.StateLeader || g.term != h.term || n > len(queue) {
			delete(h.closed, k)
		}
	}
	g.publishClosed()
}

// closedSender reports whether a frame of size bytes signed by signer is
// to be refused unread: this node hosts a group where signer is closed,
// and the frame is larger than closedFrameSize.
func (n *Node) closedSender(signer [32]byte, size int64) bool {
	if size <= closedFrameSize {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.groups {
		// Only while this node leads: the frames a host sends are large
		// (appends), whoever it is.
		if c := g.closed.Load(); c != nil && (*c)[signer] && g.view.Load().leader == g.raftID {
			return true
		}
	}
	return false
}

// gateProposal returns m, a proposal a member forwarded to this node, with
// the entries the host drops taken out (see above), or nil if none is left;
// and the chat entries it lets through, to note once raft took them. It
// looks only when this node leads: a proposal to anyone else is dropped by
// raft or refused by admit. It asks raft, not g.role and g.term: a node
// elected in this turn of the loop leads from the vote that decided it, and
// a voter's frame can carry that vote with proposals behind it, appended
// before the next Ready says it leads (TestGateFromTheFirstProposal).
func (g *group) gateProposal(m *pb.Message) (*pb.Message, []hostPending) {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return m, nil
	}
	h := &g.hostQuota
	if term := st.GetTerm(); h.senders == nil || h.term != term {
		h.reset(term)
		g.publishClosed()
		g.recountUnapplied()
	}
	var (
		keep  []*pb.Entry
		taken []hostPending
	)
	now := time.Now()
	for _, e := range m.GetEntries() {
		if e.GetType() != pb.EntryNormal {
			// A membership change: a member's own leave, or a join it
			// proposes for its invitee (controlgate.go).
			if !g.chargeControl(m.GetFrom(), len(e.GetData()), now) {
				g.dropProposal(nil, reasonProposalOverAllowance, nil)
				continue
			}
			keep = append(keep, e)
			continue
		}
		data := e.GetData()
		sender, typ, ok := peekEntry(data)
		chat := typ == crypto.TypeChat
		switch {
		case !ok:
			g.dropProposal(nil, reasonProposalMalformed, nil)
			continue
		case typ == crypto.TypeLead:
			// A lead entry makes its signer the host as the state machine
			// sees it (state.State.Host): only the host's own goes in.
			g.dropProposal(&sender, reasonProposalLead, nil)
			continue
		case state.RaftID(sender) != m.GetFrom():
			// The signature is not checked here (the state machine does):
			// whoever forwards an entry is a member (admit checked that)
			// and is held to the signer it names, so that one member can
			// spend only its own quota.
			g.dropProposal(&sender, reasonProposalNotOwn, nil)
			continue
		case !chat:
			if reason, err := g.gateControl(m.GetFrom(), sender, typ, e, now); reason != "" {
				g.dropProposal(&sender, reason, err)
				continue
			}
			keep = append(keep, e)
			continue
		}
		// Every chat entry of m is the sender's (checked above). A
		// retry of a message already taken (its sender proposes again
		// when the commit is slow) is a duplicate, not over quota: the
		// id is read first.
		queue := h.pendingOf(sender, now)
		for _, t := range taken {
			queue = append(queue, t.item)
		}
		if len(queue) >= maxHostPendingPerSender {
			g.dropProposal(&sender, reasonProposalTooManyOut, nil)
			continue
		}
		env, err := crypto.ParseTrusted(data)
		if err != nil {
			g.dropProposal(&sender, reasonProposalMalformed, err)
			continue
		}
		var b state.ChatBody
		if err := state.Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
			g.dropProposal(&sender, reasonProposalMalformed, err)
			continue
		}
		id := [16]byte(b.ID)
		done := g.st.MsgIDs.Has(id)
		_, onWay := h.ids[id]
		for _, t := range taken {
			onWay = onWay || t.id == id
		}
		if done || onWay {
			g.dropProposal(&sender, reasonProposalDuplicate, nil)
			continue
		}
		if am := g.st.Members[sender]; am != nil && am.Keeper {
			g.dropProposal(&sender, reasonProposalKeeperChat, nil)
			continue
		}
		header, err := g.sealingTaken(sender, b.Sealed, taken)
		if err != nil {
			g.dropProposal(&sender, reasonProposalUnsealed, err)
			continue
		}
		// Mostly the quota has room for the sender's whole queue and
		// this entry, at any times (state.QuotaRoom): then neither pass
		// below is needed, each O(n) in the queue, for every entry.
		size := uint64(len(data))
		for _, it := range queue {
			size += uint64(max(it.Size, 0))
		}
		item := state.QuotaItem{Time: env.Time, Size: len(data)}
		if g.st.QuotaRoom(sender, len(queue)+1, size) {
			keep = append(keep, e)
			taken = append(taken, hostPending{sender: sender, id: id, item: item, at: now, header: header})
			continue
		}
		// Over quota even at the latest time it could count at: a sender
		// sending large frames past its quota is closed (its frames are
		// then refused unread at the door, see closedSender).
		if n, why := g.st.CheckQuota(sender, append(queue, state.QuotaItem{Time: math.MaxInt64, Size: len(data)})); n <= len(queue) {
			g.dropProposal(&sender, reasonProposalOverQuota, why)
			if !h.closed[sender] && len(data) > closedFrameSize/2 {
				h.closed[sender] = true
				g.publishClosed()
			}
			continue
		}
		if n, why := g.st.CheckQuota(sender, append(queue, item)); n <= len(queue) {
			g.dropProposal(&sender, reasonProposalOverQuota, why)
			continue
		}
		keep = append(keep, e)
		taken = append(taken, hostPending{sender: sender, id: id, item: item, at: now, header: header})
	}
	if len(keep) == 0 {
		return nil, nil
	}
	if len(keep) < len(m.GetEntries()) {
		m.Entries = keep
	}
	return m, taken
}

// recountUnapplied counts, as a new host, the chat entries in its log that
// are not applied yet: appended in an earlier term, they count against
// their senders' quotas once applied as much as those it takes itself.
func (g *group) recountUnapplied() {
	last, err := g.storage.LastIndex()
	if err != nil || last <= g.st.Applied {
		return
	}
	ents, err := g.storage.Entries(g.st.Applied+1, last+1, math.MaxUint64)
	if err != nil {
		return
	}
	var taken []hostPending
	now := time.Now()
	for _, e := range ents {
		if e.GetType() != pb.EntryNormal {
			continue
		}
		env, err := crypto.ParseTrusted(e.GetData())
		if err != nil || env.Type != crypto.TypeChat {
			continue
		}
		var b state.ChatBody
		if state.Decode(env.Payload, &b) != nil || len(b.ID) != 16 {
			continue
		}
		taken = append(taken, hostPending{sender: env.Sender, id: [16]byte(b.ID), item: state.QuotaItem{Time: env.Time, Size: len(e.GetData())}, at: now, header: headerOf(env.Sender, b.Sealed)})
	}
	g.hostQuota.noteTaken(taken)
}

// pendingOf returns what sender's chat entries on their way count against
// its quota, forgetting those taken too long ago to be still on their way
// (entries raft took in this term are applied or lost with the term; this
// is a backstop).
func (h *hostQuota) pendingOf(sender [32]byte, now time.Time) []state.QuotaItem {
	ps := h.senders[sender]
	for len(ps) > 0 && now.Sub(ps[0].at) > maxHostPendingAge {
		delete(h.ids, ps[0].id)
		ps = ps[1:]
	}
	if len(ps) == 0 {
		delete(h.senders, sender)
		return nil
	}
	h.senders[sender] = ps
	out := make([]state.QuotaItem, len(ps), len(ps)+1)
	for i, p := range ps {
		out[i] = p.item
	}
	return out
}

// noteTaken records the chat entries that raft took.
func (h *hostQuota) noteTaken(taken []hostPending) {
	for _, t := range taken {
		if _, ok := h.ids[t.id]; ok {
			continue // a retry in the log: it is accepted once at most
		}
		h.senders[t.sender] = append(h.senders[t.sender], t)
		h.ids[t.id] = t.sender
		if t.header != nil {
			if h.carried == nil {
				h.carried = map[crypto.KeyRef]bool{}
			}
			h.carried[*t.header] = true
		}
	}
}

// sealingTaken returns nil if the state machine's sender key rule will
// take a chat message of sender sealed as sealed, once the entries on
// their way before it are applied: a key header sealed to the group's
// members in its epoch (state.CheckSealed), or a key registered already or
// carried by an entry on its way (carried, or one of taken, let through
// before it in the same proposal). The rule's refusals count against no
// quota, so without this a member could put entries in every member's log
// without bound (adversary.TestHostDropsProposalsTheKeyRuleRefuses). It
// also returns the key whose header the message carries, if any.
//
// An honest message can be dropped here when the host has not applied yet
// the membership change its author sealed it after: its author proposes it
// again (outbox.go), as any dropped proposal.
func (g *group) sealingTaken(sender [32]byte, sealed []byte, taken []hostPending) (*crypto.KeyRef, error) {
	info, err := g.st.CheckSealed(sender, sealed)
	if err == nil {
		return headerRef(sender, info), nil
	}
	i, rerr := crypto.ReadSealed(sealed)
	if rerr != nil || i.HasHeader() || i.Epoch != g.st.Epoch {
		return nil, err
	}
	ref := crypto.KeyRef{Sender: sender, Epoch: i.Epoch, ID: i.KeyID}
	if g.hostQuota.carried[ref] {
		return nil, nil
	}
	for _, t := range taken {
		if t.header != nil && *t.header == ref {
			return nil, nil
		}
	}
	return nil, err
}

// headerRef returns the sender key whose header a sealed message with info
// carries, or nil.
func headerRef(sender [32]byte, info *crypto.SealedInfo) *crypto.KeyRef {
	if info == nil || !info.HasHeader() {
		return nil
	}
	return &crypto.KeyRef{Sender: sender, Epoch: info.Epoch, ID: info.KeyID}
}

// headerOf is headerRef for a sealed payload not read yet.
func headerOf(sender [32]byte, sealed []byte) *crypto.KeyRef {
	info, err := crypto.ReadSealed(sealed)
	if err != nil {
		return nil
	}
	return headerRef(sender, info)
}

// applied forgets a chat entry once applied, accepted or rejected: from
// then on the state counts it, or not.
func (h *hostQuota) applied(res state.Result) {
	if len(h.ids) == 0 || res.Env == nil || res.Env.Type != crypto.TypeChat {
		return
	}
	var id [16]byte
	if res.Chat != nil {
		id = res.Chat.ID
	} else {
		var b state.ChatBody
		if state.Decode(res.Env.Payload, &b) != nil || len(b.ID) != 16 {
			return
		}
		id = [16]byte(b.ID)
	}
	sender, ok := h.ids[id]
	if !ok {
		return
	}
	delete(h.ids, id)
	ps := h.senders[sender]
	for i, p := range ps {
		if p.id == id {
			h.senders[sender] = append(ps[:i:i], ps[i+1:]...)
			break
		}
	}
	if len(h.senders[sender]) == 0 {
		delete(h.senders, sender)
	}
}

// dropProposal counts an entry the host drops and logs it, once a minute
// at most per signer and reason (see Node.reject).
func (g *group) dropProposal(signer *[32]byte, reason string, err error) {
	g.n.rejects.add(reason)
	key := reason
	if signer != nil {
		key += " " + shortKey(*signer)
	}
	if ok, more := g.n.rejectLog.due(key, time.Now()); ok {
		ev := g.n.log.Warn().Str("reason", reason).Str("group", g.id.String()).Int64("more", more)
		if err != nil {
			ev = ev.AnErr("cause", err)
		}
		if signer != nil {
			ev = ev.Str("sender", shortKey(*signer))
		}
		ev.Msg("dropped a forwarded proposal")
	}
}

// peekEntry reads, without decoding or checking anything else, the signer of
// a log entry's frame and the type it says it has: the signer is the
// frame's bytes 1 to 33, and the body, after the signature, is a
// deterministic CBOR array of six whose first item is the type (see
// docs/PROTOCOL.md, Envelopes), one byte for a type below 24 and two
// (0x18, then the type) from 24. An entry that is not what it says is
// rejected by the state machine.
func peekEntry(data []byte) (signer [32]byte, t crypto.Type, ok bool) {
	const body = 1 + 32 + 64
	if len(data) < body+3 || data[0] != crypto.Version || data[body] != 0x86 {
		return signer, 0, false
	}
	copy(signer[:], data[1:33])
	switch b := data[body+1]; {
	case b < 24:
		t = crypto.Type(b)
	case b == 0x18 && data[body+2] >= 24:
		t = crypto.Type(data[body+2])
	default:
		return signer, 0, false
	}
	return signer, t, true
}
