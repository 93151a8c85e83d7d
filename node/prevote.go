package node

import (
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Ranked pre-votes. When a host is cut off, raft's own election timers may
// fire on several followers within a few milliseconds of each other, before
// the followers' reports of the silence make a majority and the best backup
// takes over (cutoff.go). Across a wide-area network two of them can each
// win their pre-votes and then split the vote, and the group waits out
// another election timeout without a host (docs/BENCHMARKS.md, "Wide-area
// latencies": one cut in twenty took 2 s that way). So a follower whose
// timer fires holds its pre-vote requests back for its place among the
// backups (election.Placer.BackupRank) times a stagger: the best backup
// asks at once, the next after one stagger, and so on. Meanwhile it grants
// its own pre-vote and vote to a better backup's election, as any
// pre-candidate does, and its held requests are dropped once raft has moved
// on (a host is heard again, or it voted in a later term). The stagger is
// its longest round trip to the other voters (at least two heartbeats):
// time for the better backup's pre-vote to go round, so that its vote
// requests arrive first. A better backup whose log this node knows to be
// behind its own (its vote request said so) is not waited for: it cannot
// win this node's vote, and when the best backup was behind the others,
// waiting for it and the next held the one member that could win back by
// two staggers (a kill took 3 s in BenchmarkWAN).
//
// Only the requests are held, not the timer: raft's leases and terms are as
// they were, and holding or dropping a message is something the network
// does anyway. A backup whose betters are all silent asks after its
// staggers, so a group whose best backup went down with the host still
// elects a host (TestRankedPreVotes).

// preVoteHold is this node's pre-vote requests held back, for the term
// they ask for.
type preVoteHold struct {
	term  uint64
	until time.Time
	msgs  []*pb.Message
}

// holdPreVotes takes out of msgs, a Ready's messages, the pre-vote requests
// of this node's own election that must wait for its place among the
// backups, and returns the rest.
func (g *group) holdPreVotes(msgs []*pb.Message, now time.Time) []*pb.Message {
	return g.holdPreVotesRanked(msgs, now, func() (int, bool) {
		k, _, ok := g.memberByRaft(g.pl.lastHost)
		if !ok || g.st.Members[k] == nil {
			return 0, false
		}
		o := g.observations()
		o.Behind = g.behindSince(pre0Term(msgs) - 1)
		return g.pl.placer.BackupRank(now, o, g.st.Members[k].ID.String())
	})
}

// pre0Term is the term the first pre-vote request of msgs asks for, 1 if
// there is none.
func pre0Term(msgs []*pb.Message) uint64 {
	for _, m := range msgs {
		if m.GetType() == pb.MsgPreVote {
			return m.GetTerm()
		}
	}
	return 1
}

// noteVoteRequest records, before raft sees it, whether a vote or pre-vote
// request comes from a member whose log is behind this node's: that member
// cannot win this node's vote, so its ranked pre-votes do not wait for it.
func (g *group) noteVoteRequest(m *pb.Message) {
	if t := m.GetType(); t != pb.MsgVote && t != pb.MsgPreVote {
		return
	}
	if !g.aheadOf(m.GetLogTerm(), m.GetIndex()) {
		delete(g.pl.behind, m.GetFrom())
		return
	}
	if g.pl.behind == nil {
		g.pl.behind = map[uint64]uint64{}
	}
	g.pl.behind[m.GetFrom()] = m.GetTerm()
}

// behindSince names the members whose vote requests for term or a later
// one came from a log behind this node's.
func (g *group) behindSince(term uint64) map[string]bool {
	var out map[string]bool
	for id, t := range g.pl.behind {
		if t < term {
			continue
		}
		if k, _, ok := g.memberByRaft(id); ok {
			if m := g.st.Members[k]; m != nil {
				if out == nil {
					out = map[string]bool{}
				}
				out[m.ID.String()] = true
			}
		}
	}
	return out
}

// holdPreVotesRanked is holdPreVotes with this node's place among the
// backups given by rank, asked once per term.
func (g *group) holdPreVotesRanked(msgs []*pb.Message, now time.Time, rank func() (int, bool)) []*pb.Message {
	if !slices.ContainsFunc(msgs, func(m *pb.Message) bool { return m.GetType() == pb.MsgPreVote }) {
		return msgs // most Readys: nothing to copy
	}
	var pre, rest []*pb.Message
	for _, m := range msgs {
		if m.GetType() == pb.MsgPreVote && m.GetFrom() == g.raftID {
			pre = append(pre, m)
		} else {
			rest = append(rest, m)
		}
	}
	if len(pre) == 0 {
		return msgs
	}
	h := g.pl.preHold
	if term := pre[0].GetTerm(); h == nil || h.term != term {
		// Once per term asked for: raft asks again, in the same term,
		// each time its timer fires, and the wait runs from the first.
		h = &preVoteHold{term: term, until: now}
		if rank, ok := rank(); ok && rank > 0 {
			h.until = now.Add(time.Duration(rank) * g.preVoteStagger())
			g.n.log.Debug().Str("group", g.id.String()).Int("rank", rank).Dur("wait", h.until.Sub(now)).
				Msg("election timer fired; leaving the better backups time to ask first")
		}
		g.pl.preHold = h
	}
	if !now.Before(h.until) {
		h.msgs = nil
		return msgs
	}
	h.msgs = pre
	return rest
}

// releasePreVotes sends the held pre-vote requests once their wait is over
// (preVotesDue). It runs at every raft tick.
func (g *group) releasePreVotes(now time.Time) {
	if msgs := g.preVotesDue(now); len(msgs) > 0 {
		g.sendRaft(msgs)
	}
}

// preVotesDue returns the held pre-vote requests whose wait is over, if
// this node still runs that election, and forgets them; it drops them when
// raft moved on.
func (g *group) preVotesDue(now time.Time) []*pb.Message {
	h := g.pl.preHold
	if h == nil || len(h.msgs) == 0 || now.Before(h.until) {
		return nil
	}
	msgs := h.msgs
	h.msgs = nil
	if st := g.rn.BasicStatus(); st.RaftState != raft.StatePreCandidate || st.GetTerm()+1 != h.term {
		return nil
	}
	return msgs
}

// preVoteStagger is how long each place among the backups waits: this
// node's longest round trip to another voter, at least two heartbeats.
func (g *group) preVoteStagger() time.Duration {
	d := 2 * g.timing.heartbeat()
	for k, p := range g.pl.peers {
		if m := g.st.Members[k]; m == nil || !m.Voter {
			continue
		}
		if ms, ok := p.est.Value(); ok {
			d = max(d, time.Duration(ms*float64(time.Millisecond)))
		}
	}
	return d
}
