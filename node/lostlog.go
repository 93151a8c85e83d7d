package node

import (
	"errors"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/identity"
)

// A member restored from a backup of its store has lost log entries it had
// acknowledged. Raft never lowers what its leader knows a follower holds,
// so the host's heartbeats then commit beyond the member's log, which the
// member refuses (admit.go: an honest host never sends one), and the
// member never catches up while that host leads. A new term starts every
// member's progress afresh: so the host, told of such a refusal, hands
// leadership to another voter (TestRestoredVoterCatchesUpUnderTheSameHost).
//
// The refusal is the member's word alone: a member that lies about it can
// make its host hand over, at most once every lostLogEvery in a group and
// lostLogPerMember for the same member, and only to a voter that is active,
// caught up and not shunned, in placement's order.

const (
	// lostLogEvery is how often a host hands over for a member that lost
	// its log, in one group.
	lostLogEvery = 30 * time.Second
	// lostLogPerMember is how often the same member's refusal is acted on:
	// once is enough when the handover works.
	lostLogPerMember = 2 * time.Minute
)

// lostLogBody is what a node answers a heartbeat committing beyond its log
// with (the other refusals answer "rejected" alone).
const lostLogBody = "rejected: " + reasonHeartbeatBeyondLog

// lostLogError is a peer's refusal of a heartbeat committing beyond its
// log: HTTP 403, or a libp2p answer 403, with lostLogBody exactly.
type lostLogError struct{ error }

func (e lostLogError) Unwrap() error { return e.error }

// lostLog reports whether err, a peer's answer to a frame this node sent,
// is its refusal of a heartbeat committing beyond its log.
func lostLog(err error) bool {
	var rj *errReject // the simulated network hands back the rejection itself
	return errors.As(err, new(lostLogError)) || errors.As(err, &rj) && rj.reason == reasonHeartbeatBeyondLog
}

// reportLostLog tells the group's goroutine, from a peer queue's goroutine,
// that member k refused this node's heartbeat of term as committing beyond
// its log. A full queue drops the report: the next heartbeat is refused
// again.
func (g *group) reportLostLog(k [32]byte, term uint64) {
	select {
	case g.rttc <- rttSample{key: k, lostLog: true, term: term}:
	default:
	}
}

// heartbeatTerm returns the term of the heartbeats among items, the raft
// messages of a refused frame (the highest; 0 when none is a heartbeat).
func heartbeatTerm(items [][]byte) uint64 {
	var t uint64
	for _, it := range items {
		m := &pb.Message{}
		if proto.Unmarshal(it, m) == nil && m.GetType() == pb.MsgHeartbeat {
			t = max(t, m.GetTerm())
		}
	}
	return t
}

// onLostLog hands leadership over, when this node hosts in term (the term of
// the refused heartbeat) and member k's progress says it holds entries, to
// the first voter in placement's order (then any) other than k that is
// active, caught up and not shunned. A refusal of an earlier term's
// heartbeat, reported after this node was elected again, says nothing of
// this term's progress, which started afresh (helper-54's review).
func (g *group) onLostLog(k [32]byte, term uint64, now time.Time) {
	if g.role != raft.StateLeader || g.fork != nil || g.left || term != g.term {
		return
	}
	m := g.st.Members[k]
	if m == nil || now.Sub(g.lostLogAt) < lostLogEvery || now.Sub(g.lostLogBy[k]) < lostLogPerMember {
		return
	}
	st := g.rn.Status()
	if pr, ok := st.Progress[m.RaftID]; !ok || pr.Match == 0 {
		return // nothing acknowledged that it could have lost
	}
	eligible := func(key [32]byte) (uint64, bool) {
		c := g.st.Members[key]
		if c == nil || !c.Voter || key == k || c.RaftID == g.raftID || g.withholdTransfer(c.RaftID, now) {
			return 0, false
		}
		pr, ok := st.Progress[c.RaftID]
		return c.RaftID, ok && usable(pr) && caughtUp(st, c.RaftID)
	}
	var to uint64
	for _, s := range g.pl.ranking.Preference {
		if id, err := identity.ParsePublicID(s); err == nil {
			if rid, ok := eligible(id.Sign); ok {
				to = rid
				break
			}
		}
	}
	if to == 0 {
		for key := range g.st.Members {
			if rid, ok := eligible(key); ok {
				to = rid
				break
			}
		}
	}
	name := shortKey(k)
	if m.Name != "" {
		name = g.namesakes().label(m.ID.String(), m.Name)
	}
	if to == 0 {
		g.n.log.Warn().Str("group", g.id.String()).Str("member", name).
			Msg("a member lost log entries it had acknowledged (restored from a backup?) and no other voter can host now: it catches up once this node no longer hosts")
		return
	}
	g.lostLogAt = now
	if g.lostLogBy == nil {
		g.lostLogBy = map[[32]byte]time.Time{}
	}
	g.lostLogBy[k] = now
	g.n.log.Warn().Str("group", g.id.String()).Str("member", name).
		Msg("a member lost log entries it had acknowledged (restored from a backup?); handing leadership over, so that a new term lets it catch up")
	g.transferLeader(to)
}

// usable reports whether a voter's progress lets it take over: a voter in
// raft's own configuration, heard from lately.
func usable(pr tracker.Progress) bool { return !pr.IsLearner && pr.RecentActive }
