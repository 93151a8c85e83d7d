package node

import (
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The host holds new proposals while its log holds a membership change it
// has not applied.
//
// raft switches a host to a new configuration when the host applies the
// change, not when it appends or commits it. Until then the host counts
// acknowledgements by the old configuration: an entry appended after a
// change that shrinks the voters to a pair could commit on the word of the
// member leaving, without the other voter of the pair. That voter then says,
// truthfully as far as its log goes, that it holds every entry the pair
// committed (pingPair), and a restored copy of the host elects it on that
// word (onlyOtherVoter): the entry would be lost if the host's own copy of
// it was lost too. Held until the change is applied, every entry after it
// commits under the new configuration.
//
// The hold lasts one commit round of the change and covers every proposal
// the host appends: its own (proposeFrame) and those members forwarded
// (takeForwarded), whichever of them proposed the change. What members forwarded goes through the host's gate
// (quota.go) as it is released, against the state the change made: a
// message sealed in the epoch a leave or a removal closed is dropped
// there, not put in the log to be refused. Membership changes themselves
// are not held: raft takes one at a time and turns a second into an empty
// entry.

const (
	// maxHeldProposals and maxHeldBytes bound what a host holds while a
	// change is unapplied; beyond them a proposal is dropped as raft drops
	// one without a host, and its author proposes it again.
	maxHeldProposals = 4096
	maxHeldBytes     = 16 << 20
	// maxHeldPerMember and maxHeldBytesPerMember bound what one member
	// forwards into the hold, so that one member cannot fill it and have
	// everyone else's messages dropped while a change is unapplied
	// (TestOneMemberCannotFillTheHold).
	maxHeldPerMember      = maxHeldProposals / 16
	maxHeldBytesPerMember = maxHeldBytes / 16
)

// heldProposal is a proposal the host holds (confHold): its own, or one a
// member forwarded, which passes the gate as it is released.
type heldProposal struct {
	m         *pb.Message
	forwarded bool
}

// confHold is the state of the hold.
type confHold struct {
	// last is the index of the last membership change in this node's
	// log, or of one below the applied index; kept exact when raft
	// replaces the log's tail (noteConfHold).
	last uint64
	// proposed is set when raft took a membership change, this node's or
	// one a member forwarded, whose entry no Ready has shown yet: raft
	// appends it at once, as host.
	proposed bool
	held     []heldProposal
	bytes    int
	// of counts the forwarded proposals held, and their bytes, by the
	// member that forwarded them.
	of map[uint64]heldShare
}

// heldShare is what one member forwarded into the hold.
type heldShare struct{ n, bytes int }

// holdsProposals reports whether this node hosts with a membership change
// in its log that it has not applied.
func (g *group) holdsProposals() bool {
	if !g.ch.proposed && g.ch.last <= g.st.Applied {
		return false
	}
	// raft's role, not g.role: a node elected in this loop turn appends
	// what it is handed before the next Ready says it leads.
	return g.rn.BasicStatus().RaftState == raft.StateLeader
}

// noteConfHold notes the membership changes among entries, the entries a
// Ready appends to this node's log. Where they replace the log's tail,
// a change in the replaced part is gone: the last change is looked for
// again among the entries kept, down to the applied index.
func (g *group) noteConfHold(entries []*pb.Entry) {
	g.ch.proposed = false
	if len(entries) == 0 {
		return
	}
	if first := entries[0].GetIndex(); first <= g.ch.last {
		g.ch.last = 0
		if lo := g.st.Applied + 1; lo < first {
			if kept, err := g.storage.Entries(lo, first, 1<<62); err == nil {
				for _, e := range kept {
					if e.GetType() != pb.EntryNormal {
						g.ch.last = e.GetIndex()
					}
				}
			} else {
				// Unknown: held until the log is applied past the tail.
				g.ch.last = entries[len(entries)-1].GetIndex()
			}
		}
	}
	for _, e := range entries {
		if e.GetType() != pb.EntryNormal {
			g.ch.last = max(g.ch.last, e.GetIndex())
		}
	}
}

// proposeFrame proposes frame, an entry this node signed or one its gate
// took (proposeOrphans), or holds it while a membership change is
// unapplied (holdsProposals).
func (g *group) proposeFrame(frame []byte) error {
	if !g.holdsProposals() {
		return g.rn.Propose(frame)
	}
	m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(g.raftID), Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: frame}}}
	if !g.holdProposal(heldProposal{m: m}) {
		return raft.ErrProposalDropped
	}
	return nil
}

// takeForwarded steps a proposal a member forwarded, or what the host's
// gate lets through of it (quota.go), unless the hold keeps it
// (holdsProposals).
func (g *group) takeForwarded(m *pb.Message) {
	if g.holdsProposals() {
		if !g.holdProposal(heldProposal{m: m, forwarded: true}) {
			g.n.log.Debug().Str("group", g.id.String()).Msg("dropped a forwarded proposal: the hold while a membership change is applied is full")
		}
		return
	}
	g.stepForwarded(m)
}

// stepForwarded steps what the host's gate lets through of m, a proposal a
// member forwarded (quota.go).
func (g *group) stepForwarded(m *pb.Message) {
	m, taken := g.gateProposal(m)
	if m == nil {
		return
	}
	if err := g.stepSafely(m); err != nil {
		g.n.log.Debug().Err(err).Str("type", m.GetType().String()).Msg("raft step")
		return
	}
	if hasConfChange(m.GetEntries()) {
		// A member's own leave, say: as a host, raft appended it at once,
		// and what follows it in this turn is held (proposeConfFrame).
		g.ch.proposed = true
	}
	g.hostQuota.noteTaken(taken)
	g.n.checkAhead([]*pb.Message{m}) // what the host took (see HandleFrame)
}

// holdProposal queues h, unless the queue is full.
func (g *group) holdProposal(h heldProposal) bool {
	size := proto.Size(h.m)
	if len(g.ch.held) >= maxHeldProposals || g.ch.bytes+size > maxHeldBytes {
		return false
	}
	if h.forwarded {
		from := h.m.GetFrom()
		sh := g.ch.of[from]
		if sh.n >= maxHeldPerMember || sh.bytes+size > maxHeldBytesPerMember {
			return false
		}
		if g.ch.of == nil {
			g.ch.of = map[uint64]heldShare{}
		}
		g.ch.of[from] = heldShare{n: sh.n + 1, bytes: sh.bytes + size}
	}
	g.ch.held = append(g.ch.held, h)
	g.ch.bytes += size
	return true
}

// releaseProposals appends what the hold kept, in order, once the change
// is applied. A node that no longer hosts drops it, as raft drops a
// deposed host's entries that did not commit: the authors propose them
// again (proposeAgain, retryOutbox), to the host they know.
func (g *group) releaseProposals() {
	if len(g.ch.held) == 0 || g.holdsProposals() {
		return
	}
	held := g.ch.held
	g.ch.held, g.ch.bytes, g.ch.of = nil, 0, nil
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		g.fig.failed.Add(uint64(len(held)))
		return
	}
	for _, h := range held {
		switch {
		case h.forwarded && hasConfChange(h.m.GetEntries()) && g.holdsProposals():
			// raft takes one change at a time: behind one released
			// just now it turns this one into an empty entry. Held
			// again, each change would cost everything behind it a
			// commit round, and a member streaming changes would keep
			// the members' messages waiting for as long as it likes
			// (TestStreamedChangesDoNotHoldTheOthers).
			g.stepForwarded(h.m)
		case h.forwarded:
			g.takeForwarded(h.m) // held again behind a change released before it
		case g.holdsProposals():
			if !g.holdProposal(h) {
				g.fig.failed.Add(1)
			}
		default:
			if err := g.stepSafely(h.m); err != nil {
				g.fig.failed.Add(1)
			}
		}
	}
}
