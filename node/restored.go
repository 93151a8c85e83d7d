package node

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/state"
)

// A group restored from a backup (demes restore; store.MarkRestored) is
// older on this node than what the node may have acknowledged or voted for
// before it was lost, and raft counts on neither being forgotten: a voter
// that forgot an entry it acknowledged can help elect a member that lacks
// it, so that a committed message is lost (three voters: the host and this
// node held it, the third member lags; the host dies, this node comes back
// from its backup and votes for the third), and one that forgot its vote
// can vote twice in a term. So until it has caught up, the restored node
// takes part in no election: it asks for no vote, grants none but to the
// host it follows since the restore and to the other voter of a group of
// two (below), and takes no leadership handed to it. Caught up means its
// log reaches the commit index of the first append a host sent it after
// the restore, with an entry of the current term there (restoredCaughtUp):
// that host holds every entry committed before its term (raft's election
// rule) and every one committed in it, so the log this node reaches then
// holds every committed entry it ever acknowledged. The mark is then
// cleared from the store.
//
// Meanwhile the group works as with one voter offline: it commits if the
// others are a majority, and if they are not, it waits for a member that
// did not lose its log, rather than lose a message.

const reasonRestoredVote = "election message of a restored group"

// restoredHoldsElections reports whether m is a message of an election
// (a vote or pre-vote request, or a host handing its leadership over) that
// this node, restored and not caught up, must not step. It also notes the
// commit index of the first append a host sends it, and the latest host
// that sent it one (or a heartbeat, refused or not: beyondLogHost): that
// host's requests for its vote are granted as raft grants them. A host
// that finds a member lacking entries it acknowledged steps down, so that
// a new term resets what raft believes the member holds (lostlog.go), and
// where no other voter can host, as in a group of two, it is elected again
// only with this node's vote. Its log holds every entry this node
// acknowledged to it. So do the requests of the other voter of a group of
// two, on its word (onlyOtherVoter): it holds every committed entry.
//
// Not covered: a vote this node cast, before it was lost, for a host of a
// later term that then died before it sent this node anything, while the
// host of an older term, cut off from the group but not yet stepped down,
// reached this node first after the restore: that older host may then be
// elected without the entries this node acknowledged to the later one.
func (g *group) restoredHoldsElections(m *pb.Message) bool {
	if !g.fromBackup {
		return false
	}
	switch m.GetType() {
	case pb.MsgVote, pb.MsgPreVote:
		from := m.GetFrom()
		return from == 0 || from != g.restoredHost && from != g.beyondLogHost.Load() && !g.onlyOtherVoter(from)
	case pb.MsgTimeoutNow:
		return true
	case pb.MsgApp, pb.MsgHeartbeat:
		if m.GetTerm() < g.term {
			// A deposed host's, late: raft ignores it, and its commit
			// index can lag the group's.
			return false
		}
		if m.GetTerm() >= g.restoredHostTerm {
			g.restoredHost, g.restoredHostTerm = m.GetFrom(), m.GetTerm()
		}
		if m.GetType() == pb.MsgApp && g.restoredTarget == 0 && m.GetCommit() > 0 {
			g.restoredTarget = m.GetCommit()
		}
	}
	return false
}

// restoredSoloGrace is how long a group restored from a backup in which
// this node is the only voter waits for word from the group before it
// elects itself: see restoredHoldsTick.
const restoredSoloGrace = 15 * time.Second

// restoredHoldsTick reports whether raft's tick is held back at now: while
// this node, restored and knowing no host, is the only voter of its
// restored configuration, for restoredSoloGrace after the group started.
// raft elects a lone voter on its own vote, with no message that the hold
// on vote requests could drop. But the backup may be older than the
// group's other voters: a group backed up while its creator was its only
// member, joined by others since. Elected alone, the restored copy
// committed what its person sent on a history the group never had, told
// them it was in the order, and, having a host, refused the group's
// traffic as a stranger's for good (TestRestoredSoleVoterAlone). Held, it
// knows no host, so the traffic of a member that knows it is read, and it
// catches up from it (catchup.go): the group's other members reach it
// within a few retries when they are online. A group that really has no
// other voter waits restoredSoloGrace once after a restore. Not covered:
// a group that gained voters after the backup, all of them offline for
// the whole grace (docs/PROTOCOL.md, "A member restored from a backup").
func (g *group) restoredHoldsTick(now time.Time) bool {
	if !g.fromBackup || g.leader != raft.None || g.restoredHost != 0 || now.Sub(g.restoredSince) >= restoredSoloGrace {
		return false
	}
	if g.rn == nil {
		// Starting (the first view): the state's voters, from which
		// raft's configuration is about to be built.
		vs := g.st.Voters()
		return len(vs) == 1 && vs[0] == g.n.self.Sign
	}
	// raft's own configuration, which decides whether it elects itself
	// alone.
	ids := g.rn.Status().Config.Voters.IDs()
	_, self := ids[g.raftID]
	return self && len(ids) == 1
}

// restoredSends returns msgs without this node's own vote and pre-vote
// requests while it is restored and not caught up: raft's election timer
// still fires, but its campaign goes nowhere (a pre-vote raises no term).
func (g *group) restoredSends(msgs []*pb.Message) []*pb.Message {
	if !g.fromBackup {
		return msgs
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if t := m.GetType(); t == pb.MsgVote || t == pb.MsgPreVote {
			continue
		}
		out = append(out, m)
	}
	return out
}

// endRestoredHold clears the restored mark once this node's commit index
// reaches the target noted by restoredHoldsElections (the entries up to it
// are on disk: a follower's commit index never passes its log, which
// handleReady has written) and holds an entry of the current term.
func (g *group) endRestoredHold(commit uint64) {
	if !g.fromBackup || g.restoredTarget == 0 || commit < g.restoredTarget {
		return
	}
	t, err := g.storage.Term(commit)
	if err != nil || !restoredCaughtUp(commit, g.restoredTarget, t, g.rn.BasicStatus().GetTerm()) {
		return // the next Ready looks again
	}
	g.clearRestored(commit)
}

// restoredCaughtUp reports whether a restored node whose commit index is
// commit, the entry there of term commitTerm, has caught up with target
// in term: commit reached target, and the entry there is of the current
// term. The commit index of a new host's first append can lag entries
// committed in an earlier term, among them some this node acknowledged
// before it was lost, which its log may not hold yet when its commit index
// reaches that target (helper-79's review). A host commits an entry of its
// own term only once it holds every entry committed before it (raft's
// election rule), at lower indices, and this node's log matches the
// host's up to its commit index: so once that entry is of the current term,
// this node holds them all.
func restoredCaughtUp(commit, target, commitTerm, term uint64) bool {
	return commit >= target && commitTerm == term
}

// endRestoredHoldAsHost ends the hold of a node that leads the group.
// Held, it asks no one for a vote, so it was elected on its own vote alone,
// as the only voter of its configuration, and no other host will ever send
// it the append the hold waits for: left marked, it stayed so for good, and
// a restart once the group had a second voter left the two refusing each
// other's votes. Its configuration may be older than the group's, though
// (voters promoted after the backup), and then its election was no
// election, so the hold does not end at once: once its configuration has
// another voter, the target is the index after its commit index, which
// commits only with that voter's acknowledgement of this node's log
// (endRestoredHold).
func (g *group) endRestoredHoldAsHost() {
	if !g.fromBackup {
		return
	}
	if g.role != raft.StateLeader {
		if g.restoredAsHost {
			// Deposed first: the next host's append sets the target.
			g.restoredTarget, g.restoredAsHost = 0, false
		}
		return
	}
	if g.restoredTarget != 0 || g.confState == nil {
		return
	}
	voters := 0
	for _, ids := range [][]uint64{g.confState.GetVoters(), g.confState.GetVotersOutgoing()} {
		for _, id := range ids {
			if id != g.raftID {
				voters++
			}
		}
	}
	if voters == 0 {
		return
	}
	g.restoredTarget, g.restoredAsHost = g.rn.BasicStatus().GetCommit()+1, true
}

func (g *group) clearRestored(commit uint64) {
	if err := g.n.store.ClearRestored(g.id[:]); err != nil {
		// Held on: the next Ready tries again.
		g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot clear the restored mark of a group that caught up")
		return
	}
	g.fromBackup = false
	g.publishDue = true // status says so no more
	g.n.log.Info().Str("group", g.id.String()).Uint64("index", commit).
		Msg("this node's copy of the group, restored from a backup, has caught up: it takes part in elections again")
}

// onlyOtherVoter reports whether the member of raft id id, which this
// node counts as a voter (admit checked it: by the restored copy or by a
// chain checked while catching up), said in its latest ping or pong that
// the two are the group's only voters (pingPair): its applied
// configuration has exactly the two, and its log holds no membership
// change after it (pairOf). Every entry committed since that configuration
// needed its acknowledgement, and a change of it too, so it would be in
// its log; and it applied every entry up to it, those committed under
// earlier configurations among them. So it holds every committed entry,
// and without this node's vote it could never be elected: a group of two
// whose host was restored would elect no host again.
//
// The word is the whole proof, not the restored copy's count, which is
// older than the group's. A copy that still counted a third voter, one
// that left or was demoted since the backup, refused the other's vote
// requests and the group never elected a host again (the churn and restore
// fault schedules, seed 353036; TestRestoredHostOfAGroupShrunkToTwo). One
// that counts the other a learner refuses its requests before this
// (askPairForLog). A copy that counts two where the
// group has three since (a voter added after the backup) is not misled
// either: the other applied the third voter's promotion, or holds it in
// its log, and says nothing (TestRestoredOtherVoterOfAnOlderPair). A group
// that gained a voter whose promotion the other took but never learned
// committed is then left with no host for good (docs/PROTOCOL.md, "A
// member restored from a backup").
func (g *group) onlyOtherVoter(id uint64) bool {
	return id != 0 && g.pairSaid.Load() == id
}

// askPairForLog answers a vote request that admission refused as from a
// non-voter (raft id from, member k) with a behind notice, as a stranger's
// traffic is answered (catchup.go), when this node's copy is restored and
// k's latest ping or pong said that the two are the group's only voters:
// k was a learner, or no voter yet, when the backup was taken, and was
// promoted since. The copy's count refuses its vote requests for good, and
// it is the one member that can host (the other voter is this node, held),
// so the group elected no host again (demes bench chaos --churn --restore
// --nodes 5, seed 353002). k pushes the committed entries after this
// node's applied index; the chain of membership is checked from this
// node's state, and the members it names are trusted provisionally
// (trustChain): k, a voter by the chain, is admitted, and granted the vote
// on its word (onlyOtherVoter). k's word alone admits nothing. At most one
// notice per behindInterval and group; nil when none is due.
func (n *Node) askPairForLog(g *group, v *view, k [32]byte, from uint64) error {
	if !v.restored || from == 0 || g.pairSaid.Load() != from {
		return nil
	}
	return n.askForLog(g, v, k, reasonAskedPairForLog, "the other voter of a group of two, as it says, asked for a vote that this node's restored copy counts as a learner's: asking it for the log")
}

// reasonAskedPairForLog is the reason a vote request is refused with a
// behind notice by askPairForLog, as counted.
const reasonAskedPairForLog = "vote from a non-voter: asked it for the log"

// otherOfPair returns the other voter when the state counts exactly two
// voters, this node and that one (pairOf).
func (g *group) otherOfPair() ([32]byte, bool) {
	voters, self := g.st.Voters(), g.n.self.Sign
	switch {
	case len(voters) != 2:
	case voters[0] == self:
		return voters[1], true
	case voters[1] == self:
		return voters[0], true
	}
	return [32]byte{}, false
}

// noteConfTail notes the last membership change among entries appended
// to this node's log (pairOf).
func (g *group) noteConfTail(entries []*pb.Entry) {
	for _, e := range entries {
		if e.GetType() != pb.EntryNormal && e.GetIndex() > g.confTail {
			g.confTail = e.GetIndex()
			g.publishDue = true
		}
	}
}

// pairOf returns the other voter when this node's applied configuration
// has exactly two voters, itself and that one, and its log holds no
// membership change it has not applied; zero otherwise. Its pings and
// pongs to that voter say so (pingPair): a restored copy of the group
// grants that voter its vote on that word only (onlyOtherVoter). Every
// entry committed in such a configuration needed this node's
// acknowledgement, and so did any change of it, so this node's log holds
// every committed entry. A change appended but replaced since (raft
// truncated it) holds the word back until the log applied past it.
func (g *group) pairOf() [32]byte {
	if g.st.Applied < g.confTail {
		return [32]byte{}
	}
	other, _ := g.otherOfPair()
	return other
}

// notePair keeps whether member k's ping or pong said that the two are the
// group's only voters (pingPair). Safe from any goroutine.
func (g *group) notePair(k [32]byte, x pingExtra) {
	id := state.RaftID(k)
	if x.flags&pingPair != 0 {
		g.pairSaid.Store(id)
		return
	}
	g.pairSaid.CompareAndSwap(id, 0)
}

// noteRestoredStranger records that k, a member this node does not know,
// sent the group's traffic while this node's restored copy leads the group
// alone: elected as its only voter once restoredSoloGrace was over. The
// group most likely gained members after the backup and went on without
// this copy, which has committed alone since on a history the group never
// had, and which refuses their catch-up (the chain of membership they push
// does not follow from its state). Not mended here (docs/PROTOCOL.md, "A
// member restored from a backup"); said, so that the split is not silent.
// Safe from any goroutine; it reports whether k is the first, whose
// status the group's goroutine is then to publish.
func (g *group) noteRestoredStranger(k [32]byte) bool {
	if !g.restoredStranger.CompareAndSwap(nil, &k) {
		return false
	}
	g.n.log.Warn().Str("group", g.id.String()).Str("member", shortKey(k)).Msg("a member this node's restored copy does not know sent the group's traffic while the copy leads alone: the group may have gone on without it since the backup")
	return true
}

// restoredText is what status says of a group restored from a backup that
// has not caught up yet, or "".
func (v *view) restoredText() string {
	if !v.restored {
		return ""
	}
	if v.restoredStranger != nil {
		return fmt.Sprintf("this node's copy of the group was restored from a backup in which it was the group's only voter, and it went on alone; since then a member it does not know (signing key %s...) sent the group's traffic: the group most likely gained members after the backup and went on without this copy, and what it commits may not reach them", shortKey(*v.restoredStranger))
	}
	if v.restoredAlone {
		return fmt.Sprintf("this node's copy of the group was restored from a backup in which it is the group's only voter: it waits up to %d seconds to hear from the group's other members, who may have joined since, before it goes on alone", int(restoredSoloGrace.Seconds()))
	}
	return "this node's copy of the group was restored from a backup: it votes for no new host (but the one it follows) and asks for no vote until it has caught up with a host"
}
