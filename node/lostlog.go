package node

import (
	"strings"
	"time"

	"go.etcd.io/raft/v3"
)

// A member restored from a backup of its store has lost log entries it had
// acknowledged. Raft never lowers what its leader knows a follower holds,
// so the host's heartbeats then commit beyond the member's log, which the
// member refuses (admit.go: an honest host never sends one), and the
// member never catches up while that host leads. A new term starts every
// member's progress afresh: so the host, told of such a refusal, hands
// leadership to another voter (TestRestoredVoterCatchesUpUnderTheSameHost).

// lostLogEvery is how often a host hands over for a member that lost its
// log: once is enough when it works; a member that keeps claiming it (or a
// transfer that did not complete) gets another try only after this.
const lostLogEvery = 30 * time.Second

// lostLog reports whether err, a peer's answer to frames this node sent,
// is its refusal of a heartbeat committing beyond its log. The refusal's
// reason travels as text over every transport.
func lostLog(err error) bool {
	return err != nil && strings.Contains(err.Error(), reasonHeartbeatBeyondLog)
}

// reportLostLog tells the group's goroutine, from a peer queue's goroutine,
// that member k refused this node's heartbeat as committing beyond its log.
// A full queue drops the report: the next heartbeat is refused again.
func (g *group) reportLostLog(k [32]byte) {
	select {
	case g.rttc <- rttSample{key: k, lostLog: true}:
	default:
	}
}

// onLostLog hands leadership over, when this node hosts, to the voter
// other than member k whose log is the furthest along, at most once every
// lostLogEvery.
func (g *group) onLostLog(k [32]byte, now time.Time) {
	if g.role != raft.StateLeader || g.fork != nil || g.left {
		return
	}
	if !g.lostLogAt.IsZero() && now.Sub(g.lostLogAt) < lostLogEvery {
		return
	}
	g.lostLogAt = now
	st := g.rn.Status()
	var to, best uint64
	for key, m := range g.st.Members {
		if !m.Voter || key == k || m.RaftID == g.raftID || g.withholdTransfer(m.RaftID, now) {
			continue
		}
		if pr, ok := st.Progress[m.RaftID]; ok && (to == 0 || pr.Match > best) {
			to, best = m.RaftID, pr.Match
		}
	}
	name := shortKey(k)
	if m := g.st.Members[k]; m != nil && m.Name != "" {
		name = m.Name
	}
	if to == 0 {
		g.n.log.Warn().Str("group", g.id.String()).Str("member", name).
			Msg("a member lost log entries it had acknowledged (restored from a backup?) and no other voter can host: it catches up once this node no longer hosts")
		return
	}
	g.n.log.Warn().Str("group", g.id.String()).Str("member", name).
		Msg("a member lost log entries it had acknowledged (restored from a backup?); handing leadership over, so that a new term lets it catch up")
	g.transferLeader(to)
}
