package node

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func (g *group) handleReady(rd raft.Ready) error {
	// A Ready is written to disk (one bbolt transaction, fsynced) when it
	// has entries or a new term or vote, or when it commits a membership
	// change. Each write carries everything put off meanwhile: the outbox
	// writes of messages sent since the last one (group commit: one fsync
	// for all of them; see enqueue) and deletes. A Ready that only
	// moves the commit index otherwise writes nothing; the new index rides
	// with the next write. raft allows that: a commit index is never needed
	// for safety, a restarted member learns it again from the host. But
	// raft rebuilds its configuration at start from the membership changes
	// up to the stored commit index (after the snapshot's configuration,
	// if there is one), so that index must cover every change applied: a
	// member that forgot a join could count itself the only voter and lead
	// alone (the fault-schedule runner found exactly that when every
	// commit-only Ready was skipped). Deletes of committed messages from
	// the outbox ride along too: a lost delete is harmless, since at start
	// a queued message that the state (replayed, or restored from a
	// snapshot) has accepted is dropped (maybeRestoreOutbox).
	//
	// A leader sends its appends and heartbeats before its own write, so
	// that the followers' writes overlap the leader's (raft thesis 10.2.1;
	// etcd does the same). That is safe because raft counts the leader's
	// own copy of an entry only at Advance, after the write below, and
	// because nothing it sends early depends on a term or vote that is
	// not yet on disk: early sending is off in a Ready that changes them.
	//
	// Forwarded proposals (MsgProp) leave early too, from any member: they
	// carry a signed message and nothing of this node's raft state.
	if g.fork != nil {
		rd.Messages = nil // halted: nothing leaves (fork.go)
	}
	rd.Messages = g.restoredSends(rd.Messages)
	msgs := g.sendEarly(rd.Messages, g.leadsWithSameVote(rd))
	hs := rd.HardState
	if hs != nil && raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		// Before the entries, which follow it.
		if err := g.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// The committed entries' signatures and messages are checked on every
	// core while this Ready is written (precheck.go).
	pre := g.startPrecheck(rd.CommittedEntries)
	write := len(rd.Entries) > 0 || hasConfChange(rd.CommittedEntries)
	if hs != nil && !write && g.keepsVote(hs) {
		g.unsavedHS = proto.Clone(hs).(*pb.HardState)
	} else if hs != nil || write {
		if err := g.persist(hs, rd.Entries); err != nil {
			return err
		}
	}
	if hs != nil {
		if err := g.storage.mem.SetHardState(hs); err != nil {
			return err
		}
		if c, last := hs.GetCommit(), g.fig.commitSeen; c > last {
			g.fig.committed.Add(c - last)
			g.fig.commitSeen = c
		}
	}
	// Into memory only once in the store: an entry raft reads below the
	// memory's first index must be in the store (see logStore).
	if err := g.storage.append(rd.Entries); err != nil {
		return err
	}
	if g.fromBackup {
		// Each Ready, not only when the commit index moves: the target
		// may be at or below the index restored, and the entry at the
		// commit index must be of the current term (restored.go). After
		// the append, which may hold that entry.
		g.endRestoredHold(g.rn.BasicStatus().GetCommit())
	}
	g.noteConfTail(rd.Entries)
	g.noteConfHold(rd.Entries)
	g.sendRaft(msgs)
	changed := false
	wasLeader := g.role == raft.StateLeader
	if rd.SoftState != nil {
		if g.leader != rd.SoftState.Lead || g.role != rd.SoftState.RaftState {
			changed = true
		}
		if rd.SoftState.Lead != g.leader && rd.SoftState.Lead != raft.None {
			g.fig.leaderChanges.Add(1)
			g.pl.leaderSince = time.Now() // samples.go: a handover is no silence
		}
		switch {
		case rd.SoftState.Lead != raft.None:
			g.noLeaderSince = time.Time{}
		case g.noLeaderSince.IsZero():
			g.noLeaderSince = time.Now()
		}
		g.leader, g.role = rd.SoftState.Lead, rd.SoftState.RaftState
	}
	g.endRestoredHoldAsHost()
	// After the leader is known: the answer to the append that made it
	// known is the first time this node heard it.
	g.noteTransferCampaign(rd.Messages)
	if rd.HardState != nil && rd.HardState.GetTerm() != g.term && rd.HardState.GetTerm() != 0 {
		g.term = rd.HardState.GetTerm()
		changed = true
	}
	g.noteHost()
	if len(rd.CommittedEntries) > 0 {
		if pre != nil {
			pre.startOpening()
			g.pre = pre
		}
		for _, e := range rd.CommittedEntries {
			g.snapBytes += len(e.GetData())
		}
		g.appliedAt = time.Now()
		g.apply(rd.CommittedEntries)
		g.snapWork += time.Since(g.appliedAt)
		g.pre = nil
		if err := g.ids.Err(); err != nil {
			// The state may have taken a retried message for a new one.
			return fmt.Errorf("stop the group: %w", err)
		}
		if len(g.pendingHeads) > 0 {
			g.checkPendingHeads()
		}
		if g.maybeRestoreOutbox() || g.resealDue {
			g.resealDue = false
			g.resealOutbox()
		}
		g.restoreTentative()
		changed = true
	}
	g.rn.Advance(rd)
	g.releaseProposals()
	if !wasLeader && g.role == raft.StateLeader {
		g.maybeLead() // at once, not at the next upkeep: voter changes wait for it
	}
	g.maybeSnapshot()
	if err := g.storage.trim(g.st.Applied, g.n.cfg.MemLogBytes); err != nil {
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot compact the log in memory")
	}
	if g.bootstrap && !g.campaigned && g.st.Applied >= 1 {
		// Campaign is ignored until raft knows the bootstrap configuration
		// is applied, which it learns at Advance (see GOTCHAS.md); now it
		// does, so the creator leads at once instead of after an election
		// timeout.
		g.campaigned = true
		_ = g.rn.Campaign()
	}
	if changed {
		g.publish()
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
	return nil
}

// leadsWithSameVote reports whether this node leads after rd and rd leaves
// the persisted term and vote as they are, which is when the leader may send
// its replication messages before its own write.
func (g *group) leadsWithSameVote(rd raft.Ready) bool {
	role := g.role
	if rd.SoftState != nil {
		role = rd.SoftState.RaftState
	}
	if role != raft.StateLeader {
		return false
	}
	return rd.HardState == nil || raft.IsEmptyHardState(rd.HardState) || g.keepsVote(rd.HardState)
}

// keepsVote reports whether hs, a Ready's hard state not yet handed to the
// storage, leaves the term and vote as they are: the storage's are those
// on disk, since every Ready that changes them is written.
func (g *group) keepsVote(hs *pb.HardState) bool {
	prev, _, err := g.storage.InitialState()
	return err == nil && prev.GetTerm() == hs.GetTerm() && prev.GetVote() == hs.GetVote()
}

// sendEarly sends the messages among msgs that need not wait for this
// Ready's write (forwarded proposals, and a leader's appends and heartbeats
// when replicate is set) and returns the others.
func (g *group) sendEarly(msgs []*pb.Message, replicate bool) []*pb.Message {
	var early, rest []*pb.Message
	for _, m := range msgs {
		switch t := m.GetType(); {
		case t == pb.MsgProp, replicate && (t == pb.MsgApp || t == pb.MsgHeartbeat):
			early = append(early, m)
		default:
			rest = append(rest, m)
		}
	}
	if len(early) > 0 {
		g.sendRaft(early)
	}
	return rest
}

// persist writes, in one fsynced transaction, the hard state hs (or, when
// nil, one whose write was put off) and entries, with the outbox writes
// and deletes waiting, and acknowledges the messages written.
func (g *group) persist(hs *pb.HardState, entries []*pb.Entry) error {
	if hs == nil {
		hs = g.unsavedHS
	}
	if limit := max(g.commitCap, g.storedCommit); g.commitCap != 0 && hs != nil && hs.GetCommit() > limit {
		// As a crash before the lazy write would leave it, and never
		// below what a write that had to be durable stored already
		// (storeHeldCommit): the commit index on disk never goes back.
		hs = proto.Clone(hs).(*pb.HardState)
		hs.Commit = proto.Uint64(limit)
	}
	start := time.Now()
	if err := g.n.store.SaveRaft(g.id[:], hs, entries, g.outboxItems(), g.outboxDone); err != nil {
		return err
	}
	if hs != nil {
		g.storedCommit = hs.GetCommit()
	}
	took := time.Since(start)
	g.n.fig.fsync.observe(took.Seconds())
	g.noteWrite(took)
	g.unsavedHS = nil
	g.wrote = true
	g.outboxDone = g.outboxDone[:0]
	g.outboxWritten()
	return nil
}

// storeHeldCommit writes the hard state now, with the commit index in
// memory, unless the one on disk covers the current membership epoch and
// the log index applied already. A restart applies the log up to the stored
// commit index before it hears from any host, and holds the tentative
// messages it stored again (restoreTentative) only if it finds what it
// checked them against when it took them (saveTentative): the epoch they
// were sealed in, and the applied index their order was bounded by
// (holdTentative: maxOrderJump). The commit index is otherwise written
// lazily, with the next write (handleReady).
func (g *group) storeHeldCommit() error {
	if g.storedCommit >= max(g.st.Epoch, g.st.Applied) {
		return nil
	}
	hs, _, err := g.storage.mem.InitialState()
	if err != nil {
		return err
	}
	if err := g.n.store.SaveRaft(g.id[:], hs, nil, nil, nil); err != nil {
		return err
	}
	g.storedCommit = hs.GetCommit()
	if g.unsavedHS != nil && g.unsavedHS.GetCommit() <= g.storedCommit {
		g.unsavedHS = nil
	}
	return nil
}

// hasConfChange reports whether entries hold a membership change.
func hasConfChange(entries []*pb.Entry) bool {
	for _, e := range entries {
		if e.GetType() != pb.EntryNormal {
			return true
		}
	}
	return false
}
