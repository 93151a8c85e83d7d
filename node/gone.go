package node

import (
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/election"
	"github.com/demes/demes/state"
)

// Noticing that the host's process is gone. A follower hears from its host
// every heartbeat; raft alone notices the host's loss only when the
// election timeout passes without one, and the other voters refuse to vote
// until theirs has passed too. Three reports say sooner that the host's
// process is gone, rather than cut off: a ping to it that the host's
// machine refuses (connection refused), a raft message to it refused the
// same way, and the close of its libp2p connection ([Node.PeerGone]). Each
// becomes an rttSample with gone set; the host's best backup then takes
// over with a campaign the others join at once (election.Placer,
// forceCampaign). A cut link gives none of them: it is left to the
// election timeout, as before.

// probe is the state of the probe of a silent host: at most one ping to it
// in flight.
type probe struct {
	inFlight atomic.Bool
	last     time.Time // the group goroutine's
}

// probeLeader pings the host at once when it has been silent for two
// heartbeats, so that a host whose process is gone is known to be gone
// within a round trip (its machine refuses the ping). It runs on every raft
// tick, on the group's goroutine; a silent host that lives (slow, or behind
// a cut link) costs one ping per heartbeat interval, one at a time.
func (g *group) probeLeader(now time.Time) {
	if g.role == raft.StateLeader || g.leader == raft.None || g.left || g.pr.inFlight.Load() {
		return
	}
	hb := g.timing.heartbeat()
	if now.Sub(g.pl.leaderHeard) < 2*hb || now.Sub(g.pr.last) < hb {
		return
	}
	k, vm, ok := g.memberByRaft(g.leader)
	if !ok || vm.url == "" || k == g.n.self.Sign {
		return
	}
	g.pr.last = now
	g.pr.inFlight.Store(true)
	g.n.wg.Add(1)
	go func() {
		defer g.n.wg.Done()
		defer g.pr.inFlight.Store(false)
		g.sample(k, vm.url)
	}()
}

// reportGone tells the group's goroutine, from any goroutine, that member
// k's process is gone. A full channel drops the report: the probe of a
// silent host reports again.
func (g *group) reportGone(k [32]byte) {
	select {
	case g.rttc <- rttSample{key: k, gone: true}:
	default:
	}
}

// PeerGone tells the node that the process of the member with identity key
// k is gone: its libp2p connection closed. Each group that counts it as its
// host lets its best backup take over at once (see gone.go).
func (n *Node) PeerGone(k [32]byte) {
	for _, g := range n.groupsNow() {
		g.reportGone(k)
	}
}

// forcedVote is the last transfer campaign of another member this node was
// asked to vote in (the group goroutine's).
type forcedVote struct {
	from, term uint64
	// logTerm and index are the candidate's last log entry, as its vote
	// request gave them.
	logTerm, index uint64
	// host is this node's leader when the first request of a failover
	// came: the host that went silent.
	host uint64
	// logs are the voters' last log entries as they reported them in that
	// silence (silentLogs), this node's own among them, and each
	// candidate's of the failover as its request gave it.
	logs map[string]election.LogPos
	done uint64 // the term this node took over in after refusing one
}

// noteForcedVote records a request for a vote in a transfer campaign,
// before raft sees it: the campaign of a host's best backup after the host's
// process is gone is one (forceCampaign), as is a handover.
func (g *group) noteForcedVote(m *pb.Message) {
	if m.GetType() == pb.MsgVote && string(m.GetContext()) == campaignTransfer {
		g.fv.from, g.fv.term = m.GetFrom(), m.GetTerm()
		g.fv.logTerm, g.fv.index = m.GetLogTerm(), m.GetIndex()
		// The first request of a failover comes while this node still
		// follows the silent host: it notes the host, and the logs
		// reported in the silence, before raft sees the request, which
		// ends the silence (a new term, no host). A later one of the same
		// failover (a refuser that took over, refused in turn) finds no
		// host: it keeps both, and adds what it learns. A pre-candidate
		// has no leader, but still watches the host it followed in its
		// term (watchedHost), the one that went silent.
		if host := g.watchedHost().lead; host != raft.None || g.fv.host == raft.None {
			g.fv.host = host
			g.fv.logs = g.silentLogs(time.Now(), g.memberIDs())
		}
		// The candidate's log as its request gives it, not as it
		// reported it: a member that reported a longer log than it has
		// cannot make the others pass themselves over.
		if _, c, ok := g.memberByRaft(m.GetFrom()); ok {
			if g.fv.logs == nil {
				g.fv.logs = map[string]election.LogPos{}
			}
			g.fv.logs[c.id.String()] = election.LogPos{Term: m.GetLogTerm(), Index: m.GetIndex()}
		}
	}
}

// firstBackup reports whether this node comes first, in its placement's
// latest preference, among the voters other than host and candidate (raft
// ids) whose logs are not known to be behind another's (the logs the
// voters reported in the silence before the failover's first vote request,
// and each candidate's of the failover as its request gave it): of the
// members that refuse a backup behind them, the one that takes over, and
// one whose own campaign the others would not refuse in turn.
func (g *group) firstBackup(host, candidate uint64) bool {
	byID := make(map[string]*state.Member, len(g.st.Members))
	for _, m := range g.st.Members {
		byID[m.ID.String()] = m
	}
	behind := election.LogsBehind(g.fv.logs)
	for _, id := range g.pl.ranking.Preference {
		m := byID[id]
		if m == nil || !m.Voter || m.RaftID == host || m.RaftID == candidate || behind[id] {
			continue
		}
		return m.RaftID == g.raftID
	}
	return false
}

// rejectedForcedVote runs when this node refuses a vote: if it refused the
// transfer campaign it was asked to vote in, while its host has been
// silent for two heartbeats, because the candidate's log was behind its
// own, the backup named by the ranking was a message or two behind: this
// node, more up to date, takes over at once instead of leaving the group
// without a host until an election timeout passes. Once per term.
//
// Only for that reason: a voter also refuses a candidate in a term it has
// voted in already. When several members more up to date than the backup
// refused it and each took over, each voted for itself and refused the
// others' campaigns; taking that refusal for a backup behind them, each
// took over again, a term higher, and the group elected no host for 25 to
// 43 s while thousands of campaigns went round (BenchmarkCutFailover, 1 cut
// in 20 to 40). And only the first of them in the placement's preference
// takes over, so that they do not split the vote; if that one cannot (its
// link is cut too), the election timeout elects another.
func (g *group) rejectedForcedVote(m *pb.Message) {
	if !g.takeOverAfterRefusal(m, time.Now()) {
		return
	}
	term := g.fv.term
	// Not in the middle of handling a Ready: stepped on the group's
	// goroutine as a request.
	time.AfterFunc(0, func() {
		_ = g.do(g.n.ctx, func() {
			if g.term == term && g.leader == raft.None && g.role != raft.StateLeader {
				g.forceCampaign()
			}
		})
	})
}

// takeOverAfterRefusal is rejectedForcedVote's decision on m, this node's
// refusal of a vote, at now: whether this node takes over (it records that
// it did, for the term).
func (g *group) takeOverAfterRefusal(m *pb.Message, now time.Time) bool {
	hb := g.timing.heartbeat()
	if m.GetTo() != g.fv.from || m.GetTerm() != g.fv.term || g.fv.done == g.fv.term || now.Sub(g.pl.leaderHeard) < 2*hb {
		return false
	}
	if !g.aheadOf(g.fv.logTerm, g.fv.index) || !g.firstBackup(g.fv.host, g.fv.from) {
		return false
	}
	g.fv.done = g.fv.term
	return true
}
