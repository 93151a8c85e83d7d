package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Placement: raft decides who MAY lead; this file decides who SHOULD. Each
// member pings the others with signed pings, keeps a robust RTT per peer,
// and commits its latency map when it changes materially. Every member ranks
// the members from the committed maps with package election; the leader
// hands leadership to a clearly better candidate and adjusts the voter set
// one change at a time. Nothing here can break raft's safety: it only calls
// TransferLeadership and proposes ordinary, signed, one-voter-at-a-time
// configuration changes, which raft itself orders and checks.

type rttSample struct {
	key [32]byte
	ms  float64
	ok  bool
}

type peerLatency struct {
	est      election.Estimator
	lastPong time.Time
	since    time.Time // when this node started pinging the peer
}

type placementState struct {
	peers         map[[32]byte]*peerLatency
	lastPublish   time.Time
	lastTransfer  time.Time
	lastVoterMove time.Time
	started       time.Time
	ranking       election.Ranking
	complete      bool // election.Complete holds for ranking
	lastLogged    string

	// The leader's side; unsettle resets most of it when this node
	// becomes leader or the membership changes.
	wasLeader      bool
	candidate      string // the hysteresis path's candidate
	candidateSince time.Time
	// settled is false while this leader has yet to make its first
	// placement decision: raft elected it on its own, or the membership
	// changed since it was placed. Until then it acts without hysteresis,
	// but only on complete rankings (see placeLeader).
	settled      bool
	settleBy     time.Time // after this, settle for hysteresis anyway
	top          string    // the member first in every complete ranking...
	topSince     time.Time // ...since this time
	membership   [2]int    // member count and highest join order, to see changes
	transferTerm uint64    // the term of this node's last campaign on a leadership transfer
}

func (g *group) pingPeers() {
	v := g.view.Load()
	if !v.self {
		return
	}
	g.pingMembers(v, func([32]byte) bool { return true })
}

// pingMembers pings, each from its own goroutine, the other members of view
// v that want says to, and hands each result to the group's goroutine as an
// RTT sample.
func (g *group) pingMembers(v *view, want func(key [32]byte) bool) {
	for k, m := range v.members {
		if k == g.n.self.Sign || m.url == "" || !want(k) {
			continue
		}
		k, url := k, g.peerURL(k, m.url)
		g.n.wg.Add(1)
		go func() {
			defer g.n.wg.Done()
			ms, ok := g.ping(k, url)
			select {
			case g.rttc <- rttSample{key: k, ms: ms, ok: ok}:
			case <-g.stopc:
			}
		}()
	}
}

// ping sends one signed ping and checks the signed pong: it must come from
// the pinged member, be addressed to us, and echo our nonce. Both carry their
// sender's raft view (attest.go); the pong's is recorded.
func (g *group) ping(key [32]byte, url string) (float64, bool) {
	nonce := make([]byte, pingNonceLen)
	rand.Read(nonce)
	payload := encodePing(nonce, pingKindPing, g.ownView())
	frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypePing, Group: g.id, To: key, Payload: payload})
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(g.n.ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := g.n.cfg.Link.Post(ctx, url, frame)
	rtt := time.Since(start)
	if err != nil {
		return 0, false
	}
	env, err := crypto.Verify(resp)
	var back []byte
	var kind byte
	var rv raftView
	if err == nil {
		back, kind, rv, err = decodePing(env.Payload)
	}
	// A node that predates raft views echoes our whole payload: kind ping,
	// and our own view, which is not its report.
	if err != nil || env.Type != crypto.TypePong || env.Sender != key || env.To != g.n.self.Sign || !bytes.Equal(back, nonce) {
		g.n.reject(env, "bad pong", err)
		return 0, false
	}
	if kind == pingKindPong {
		g.noteAttestation(key, rv)
	}
	return float64(rtt) / float64(time.Millisecond), true
}

func (g *group) onRTT(s rttSample) {
	p := g.pl.peers[s.key]
	if p == nil {
		p = &peerLatency{since: time.Now()}
		g.pl.peers[s.key] = p
	}
	if s.ok {
		p.est.Add(s.ms)
		p.lastPong = time.Now()
	}
}

// dead reports the members this node has not heard a pong from recently.
// Right after start nobody is dead yet: there was no time to ping. Nor is a
// member that just joined, until it has had as long to answer: counting it
// dead would leave it out of the ranking as if the ranking were complete.
func (g *group) deadSet() map[string]bool {
	dead := map[string]bool{}
	grace := 3 * g.n.cfg.PingInterval
	if time.Since(g.pl.started) < grace {
		return dead
	}
	for k, m := range g.st.Members {
		if k == g.n.self.Sign {
			continue
		}
		p := g.pl.peers[k]
		switch {
		case p == nil:
			// Not pinged yet: placementTick adds the member at its next tick.
		case p.lastPong.IsZero():
			if time.Since(p.since) > grace {
				dead[m.ID.String()] = true
			}
		case time.Since(p.lastPong) > grace:
			dead[m.ID.String()] = true
		}
	}
	return dead
}

// rank ranks the members from the committed latency maps and this node's
// dead set, and reports whether the ranking is complete (see
// election.Complete).
func (g *group) rank() (election.Ranking, bool) {
	in := election.Input{Dead: g.deadSet(), Reports: map[string]map[string]float64{}, MaxVoters: g.st.MaxVoters}
	for _, m := range g.st.MemberList() {
		in.Members = append(in.Members, m.ID.String())
	}
	for from, rep := range g.st.Latency {
		fm := g.st.Members[from]
		if fm == nil {
			continue
		}
		out := map[string]float64{}
		for to, ms := range rep {
			if tm := g.st.Members[to]; tm != nil {
				out[tm.ID.String()] = ms
			}
		}
		in.Reports[fm.ID.String()] = out
	}
	r := election.Rank(in)
	return r, election.Complete(in, r)
}

// placementTick runs every ping interval on the group goroutine.
func (g *group) placementTick() {
	if g.left || g.st.Members[g.n.self.Sign] == nil {
		return
	}
	now := time.Now()
	for k := range g.st.Members {
		// Every member gets an entry, pinged or not (a member without a
		// URL cannot be), so that deadSet knows since when it could have
		// answered.
		if k != g.n.self.Sign && g.pl.peers[k] == nil {
			g.pl.peers[k] = &peerLatency{since: now}
		}
	}
	g.pingPeers()
	g.maybePublishLatency()
	g.pl.ranking, g.pl.complete = g.rank()
	g.logRanking()
	g.placeLeader()
	g.publish()
}

func (g *group) latencyMap() map[string]float64 {
	out := map[string]float64{}
	for k, p := range g.pl.peers {
		m := g.st.Members[k]
		if m == nil {
			continue
		}
		if v, ok := p.est.Value(); ok && time.Since(p.lastPong) < 3*g.n.cfg.PingInterval {
			out[m.ID.String()] = v
		}
	}
	return out
}

func (g *group) maybePublishLatency() {
	if g.leader == raft.None || time.Since(g.pl.lastPublish) < g.n.cfg.LatencyInterval {
		return
	}
	cur := g.latencyMap()
	// Compare with the map the log holds for this node, not with the last
	// one proposed: a proposal can be lost without an error (forwarded to
	// a host that has just crashed, or dropped during a leadership
	// transfer), and the committed map, which every member ranks from,
	// would then stay stale until the measurements drift again. After a
	// host crash that is exactly when the new host ranks.
	committed := map[string]float64{}
	for k, ms := range g.st.Latency[g.n.self.Sign] {
		if m := g.st.Members[k]; m != nil {
			committed[m.ID.String()] = ms
		}
	}
	if len(cur) == 0 || !election.Material(committed, cur) {
		return
	}
	var body state.LatencyBody
	keys := make([]string, 0, len(cur))
	for k := range cur {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id, err := identity.ParsePublicID(k)
		if err != nil {
			continue
		}
		body.Peers = append(body.Peers, id.Sign[:])
		body.RTTus = append(body.RTTus, uint32(math.Min(cur[k]*1000, math.MaxUint32)))
	}
	if err := g.proposeEntry(crypto.TypeLatencyMap, &body); err == nil {
		g.pl.lastPublish = time.Now()
	}
}

// placeLeader is the leader's side of placement: transfer to a better host,
// and move the voter set towards the ranking, one change at a time.
//
// Hysteresis keeps a host that placement put in its place from being moved
// by noise. A leader that raft elected on its own (the creator, or whoever
// timed out first after a failure) was not put there by placement, and
// neither was any leader for a membership it was not placed for: such a
// leader is unsettled. It hands over to the member that tops the ranking, or
// settles if that is itself, without hysteresis, since with hysteresis
// whoever happens to lead would stay even when another member is better by
// less than the hysteresis. It acts only on complete rankings (see
// election.Complete), and only once the same member has been first in every
// complete ranking for two publication intervals: after a failure or a
// join, the latency maps arrive one by one and the ranking passes through
// intermediate states, and a host that settled in one of them would be kept
// there by hysteresis for good.
func (g *group) placeLeader() {
	isLeader := g.role == raft.StateLeader
	now := time.Now()
	membership := g.membership()
	if isLeader && !g.pl.wasLeader {
		// A leader that campaigned because the previous one handed over
		// to it was placed by the ranking: it starts settled.
		g.pl.settled = g.pl.transferTerm == g.term && g.term != 0
		g.unsettle(now, membership, "new leader")
	} else if isLeader && membership != g.pl.membership {
		g.pl.settled = false
		g.unsettle(now, membership, "membership changed")
	}
	g.pl.wasLeader = isLeader
	if !isLeader {
		return
	}
	r := g.pl.ranking
	self := g.n.selfID
	if !g.pl.settled && g.pl.complete {
		if g.pl.top == "" {
			// The first complete ranking since this leader became
			// unsettled: however long the data took to arrive, leave
			// time for a top to stand for two latency intervals.
			g.pl.settleBy = later(g.pl.settleBy, now.Add(4*g.n.cfg.LatencyInterval))
		}
		if top := r.Preference[0]; top != g.pl.top {
			g.pl.top, g.pl.topSince = top, now
		}
	}
	st := g.rn.Status()
	voters := map[string]bool{}
	caught := map[string]bool{}
	for _, m := range g.st.Members {
		id := m.ID.String()
		if m.Voter {
			voters[id] = true
		}
		caught[id] = caughtUp(st, m.RaftID)
	}
	if now.Sub(g.pl.lastTransfer) < g.n.cfg.TransferCooldown {
		g.placeVoters()
		return
	}
	// Never mix a transfer with a configuration change in flight: the
	// target cannot campaign until it has applied the change, and the
	// transfer would be lost.
	if now.Sub(g.pl.lastVoterMove) < 2*g.n.cfg.RetryInterval {
		return
	}
	target, ok := "", false
	if !g.pl.settled {
		// Only the top member, confirmed by the ranking of this very
		// tick, and only once it is a caught-up voter: wait rather than
		// settle for the second best, which hysteresis would then keep.
		if g.pl.complete && now.Sub(g.pl.topSince) >= 2*g.n.cfg.LatencyInterval {
			if g.pl.top == self {
				g.n.log.Debug().Str("group", g.id.String()).Msg("placement: this leader is the top candidate; hysteresis from now on")
				g.pl.settled = true
			} else if voters[g.pl.top] && caught[g.pl.top] {
				target, ok = g.pl.top, true
			}
		}
		if !ok && !g.pl.settled && now.After(g.pl.settleBy) {
			// No complete ranking stood still for long enough (a member
			// that never publishes, a lasting asymmetric partition, a
			// top that keeps changing): keep what there is, and let
			// hysteresis decide from the next tick on.
			g.n.log.Debug().Str("group", g.id.String()).Msg("placement: no stable complete ranking in time; hysteresis from now on")
			g.pl.settled = true
		}
	} else {
		target, ok = election.ShouldTransfer(r, self, voters, caught, g.n.cfg.Hysteresis)
		if !ok || target != g.pl.candidate {
			// Latency maps arrive one by one, so the ranking passes through
			// intermediate states after a change; move only once the same
			// candidate has stood for two publication intervals, so that
			// leadership moves once, straight to where it belongs.
			g.pl.candidate, g.pl.candidateSince = target, now
			ok = false
		} else if now.Sub(g.pl.candidateSince) < 2*g.n.cfg.LatencyInterval {
			ok = false
		}
	}
	if ok {
		if id, err := identity.ParsePublicID(target); err == nil {
			if m := g.st.Members[id.Sign]; m != nil {
				g.n.log.Info().Str("group", g.id.String()).Str("to", m.Name).Bool("settled", g.pl.settled).Interface("dead", g.deadSet()).Strs("preference", r.Preference).Msg("handing over leadership to a better-placed member")
				// An unsettled leader stays unsettled: if the transfer
				// fails, it tries again after the cooldown.
				g.pl.lastTransfer = now
				g.rn.TransferLeader(m.RaftID)
				return
			}
		}
	}
	g.placeVoters()
}

// unsettle starts (or restarts) an unsettled leader's search for its first
// placement decision; for a leader that starts settled it only clears what
// the previous term saw. The search is bounded in time: long enough to
// notice a crashed member (3 ping intervals), for every member to publish
// its map again (one latency interval, and a ping interval to notice), and
// for the top to stand for two latency intervals, with room to spare; and
// at least four latency intervals after the first complete ranking.
func (g *group) unsettle(now time.Time, membership [2]int, why string) {
	g.pl.membership = membership
	// Neither path may act on what it saw before: a candidate or top from
	// an earlier term, or from before the membership changed.
	g.pl.top, g.pl.topSince = "", time.Time{}
	g.pl.candidate, g.pl.candidateSince = "", time.Time{}
	if g.pl.settled {
		return
	}
	g.pl.settleBy = now.Add(10*g.n.cfg.PingInterval + 4*g.n.cfg.LatencyInterval)
	g.n.log.Debug().Str("group", g.id.String()).Str("why", why).Time("by", g.pl.settleBy).Msg("placement: unsettled; no hysteresis until a complete ranking has stood still")
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// membership sums up the member set for placeLeader to notice changes:
// every join raises the highest join order (orders are never reused) and
// every leave or removal lowers the count, so any change of the set between
// two looks changes the pair.
func (g *group) membership() [2]int {
	last := 0
	for _, m := range g.st.Members {
		last = max(last, m.Order)
	}
	return [2]int{len(g.st.Members), last}
}

// placeVoters moves the voter set one change towards the ranking's. It runs
// more often than placeLeader so that a new group gets its voters quickly;
// raft refuses a second change while one is pending anyway.
func (g *group) placeVoters() {
	if g.role != raft.StateLeader || g.left || time.Since(g.pl.lastVoterMove) < g.n.cfg.RetryInterval {
		return
	}
	// Nor a configuration change while a leadership transfer may be under
	// way (see placeLeader).
	if time.Since(g.pl.lastTransfer) < g.n.cfg.TransferCooldown && !g.pl.lastTransfer.IsZero() {
		return
	}
	r := g.pl.ranking
	if len(r.Preference) == 0 {
		r, _ = g.rank()
	}
	self := g.n.selfID
	st := g.rn.Status()
	caught := map[string]bool{}
	var current []string
	for _, m := range g.st.Members {
		id := m.ID.String()
		if m.Voter {
			current = append(current, id)
		}
		caught[id] = caughtUp(st, m.RaftID)
	}
	sort.Strings(current)
	dead := g.deadSet()
	for _, m := range g.st.Members {
		if _, ok := st.Progress[m.RaftID]; ok && !caught[m.ID.String()] && !m.Voter {
			// A learner that has not caught up is not ready to vote. (Liveness
			// comes from our signed pings, not raft's RecentActive flag, which
			// CheckQuorum clears every election timeout: sampled in phase with that
			// reset, every learner looked dead.)
			dead[m.ID.String()] = true
		}
	}
	ch, ok := election.NextVoterChange(r, current, dead, self, g.st.MaxVoters)
	if !ok {
		return
	}
	target, voter, ct := ch.Promote, true, pb.ConfChangeAddNode
	if ch.Demote != "" {
		target, voter, ct = ch.Demote, false, pb.ConfChangeAddLearnerNode
	}
	id, err := identity.ParsePublicID(target)
	if err != nil {
		return
	}
	g.pl.lastVoterMove = time.Now()
	if err := g.proposeConf(crypto.TypePromote, &state.TargetBody{Target: id.Sign[:], Voter: voter}, ct, state.RaftID(id.Sign)); err != nil {
		g.n.log.Debug().Err(err).Msg("voter change proposal")
	}
}

// campaignTransfer is the context etcd raft puts on the vote requests of a
// campaign that a leadership transfer started (MsgTimeoutNow); voters use it
// to grant the vote despite having heard from the leader recently.
const campaignTransfer = "CampaignTransfer"

// noteTransferCampaign records the term of a campaign this node started
// because the leader handed leadership over to it, as seen in its outgoing
// messages. Placement put such a leader where it is (see placeLeader).
func (g *group) noteTransferCampaign(msgs []*pb.Message) {
	for _, m := range msgs {
		if m.GetType() == pb.MsgVote && string(m.GetContext()) == campaignTransfer {
			g.pl.transferTerm = m.GetTerm()
		}
	}
}

// caughtUp reports whether a member's log, as the leader's progress tracker
// sees it, is within 5 entries of the commit index: close enough to take
// over leadership or to vote.
func caughtUp(st raft.Status, id uint64) bool {
	pr, ok := st.Progress[id]
	return ok && pr.Match+5 >= st.GetCommit()
}

// logRanking logs this node's ranking at debug level whenever it changes,
// with member names and each member's score and reach, so that a test log
// shows what every placement decision was based on.
func (g *group) logRanking() {
	if g.n.log.GetLevel() > zerolog.DebugLevel {
		return
	}
	name := map[string]string{}
	for _, m := range g.st.Members {
		name[m.ID.String()] = m.Name
	}
	r := g.pl.ranking
	pref := make([]string, 0, len(r.Preference))
	for _, id := range r.Preference {
		pref = append(pref, fmt.Sprintf("%s:%.2f/%d", name[id], r.Score[id], r.Reachable[id]))
	}
	dead := []string{}
	for id := range g.deadSet() {
		dead = append(dead, name[id])
	}
	sort.Strings(dead)
	leader := g.role == raft.StateLeader
	line := fmt.Sprint(pref, dead, g.pl.complete, leader)
	if line == g.pl.lastLogged {
		return
	}
	g.pl.lastLogged = line
	g.n.log.Debug().Str("group", g.id.String()).Strs("preference", pref).Strs("dead", dead).Int("edges", len(r.Edges)).Bool("complete", g.pl.complete).Bool("leader", leader).Msg("ranking")
}
