package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"math"
	"sort"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node/fsm"
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
}

type placementState struct {
	peers          map[[32]byte]*peerLatency
	lastPublish    time.Time
	lastTransfer   time.Time
	lastVoterMove  time.Time
	started        time.Time
	wasLeader      bool
	candidate      string
	freshUntil     time.Time
	candidateSince time.Time
	ranking        election.Ranking
}

func (g *group) pingPeers() {
	v := g.view.Load()
	if !v.self {
		return
	}
	for k, m := range v.members {
		if k == g.n.self.Sign || m.url == "" {
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
// the pinged member, be addressed to us, and echo our nonce.
func (g *group) ping(key [32]byte, url string) (float64, bool) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypePing, Group: g.id, To: key, Payload: nonce})
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
	if err != nil || env.Type != crypto.TypePong || env.Sender != key || env.To != g.n.self.Sign || !bytes.Equal(env.Payload, nonce) {
		g.n.reject(env, "bad pong", err)
		return 0, false
	}
	return float64(rtt) / float64(time.Millisecond), true
}

func (g *group) onRTT(s rttSample) {
	p := g.pl.peers[s.key]
	if p == nil {
		p = &peerLatency{}
		g.pl.peers[s.key] = p
	}
	if s.ok {
		p.est.Add(s.ms)
		p.lastPong = time.Now()
	}
}

// dead reports the members this node has not heard a pong from recently.
// Right after start nobody is dead yet: there was no time to ping.
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
		if p == nil || time.Since(p.lastPong) > grace {
			dead[m.ID.String()] = true
		}
	}
	return dead
}

func (g *group) rank() election.Ranking {
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
	return election.Rank(in)
}

// placementTick runs every ping interval on the group goroutine.
func (g *group) placementTick() {
	if g.left || g.st.Members[g.n.self.Sign] == nil {
		return
	}
	g.pingPeers()
	g.maybePublishLatency()
	g.pl.ranking = g.rank()
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
	var body fsm.LatencyBody
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
func (g *group) placeLeader() {
	isLeader := g.role == raft.StateLeader
	if isLeader && !g.pl.wasLeader {
		// Raft elected whoever timed out first. For a while (long enough
		// for a crashed former host to count as dead) this leader hands
		// over to the top live candidate if that is anyone else, without
		// hysteresis: the group should end up where the ranking says, not
		// wherever the election timeouts happened to put it.
		g.pl.freshUntil = time.Now().Add(10*g.n.cfg.PingInterval + 2*g.n.cfg.LatencyInterval)
	}
	g.pl.wasLeader = isLeader
	if !isLeader {
		return
	}
	r := g.pl.ranking
	self := g.n.self.String()
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
	if time.Since(g.pl.lastTransfer) < g.n.cfg.TransferCooldown {
		g.placeVoters()
		return
	}
	// Never mix a transfer with a configuration change in flight: the
	// target cannot campaign until it has applied the change, and the
	// transfer would be lost.
	if time.Since(g.pl.lastVoterMove) < 2*g.n.cfg.RetryInterval {
		return
	}
	target, ok := "", false
	if time.Now().Before(g.pl.freshUntil) {
		// Only the top candidate, once it is dead-free, caught up and a
		// voter; otherwise wait for the next tick rather than settle for
		// the second best, which hysteresis would then keep.
		if len(r.Preference) > 0 && !r.Fallback {
			top := r.Preference[0]
			if top == self {
				g.pl.freshUntil = time.Time{}
			} else if voters[top] && caught[top] {
				target, ok = top, true
			}
		}
	} else {
		target, ok = election.ShouldTransfer(r, self, voters, caught, g.n.cfg.Hysteresis)
		if !ok || target != g.pl.candidate {
			// Latency maps arrive one by one, so the ranking passes through
			// intermediate states after a change; move only once the same
			// candidate has stood for two publication intervals, so that
			// leadership moves once, straight to where it belongs.
			g.pl.candidate, g.pl.candidateSince = target, time.Now()
			ok = false
		} else if time.Since(g.pl.candidateSince) < 2*g.n.cfg.LatencyInterval {
			ok = false
		}
	}
	if ok {
		if id, err := identity.ParsePublicID(target); err == nil {
			if m := g.st.Members[id.Sign]; m != nil {
				g.n.log.Info().Str("group", g.id.String()).Str("to", m.Name).Interface("dead", g.deadSet()).Strs("preference", r.Preference).Msg("handing over leadership to a better-placed member")
				g.pl.lastTransfer = time.Now()
				g.pl.freshUntil = time.Time{}
				g.rn.TransferLeadership(g.n.ctx, g.raftID, m.RaftID)
				return
			}
		}
	}
	g.placeVoters()
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
		r = g.rank()
	}
	self := g.n.self.String()
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
	if err := g.proposeConf(crypto.TypePromote, &fsm.TargetBody{Target: id.Sign[:], Voter: voter}, ct, fsm.RaftID(id.Sign)); err != nil {
		g.n.log.Debug().Err(err).Msg("voter change proposal")
	}
}

// caughtUp reports whether a member's log, as the leader's progress tracker
// sees it, is within 5 entries of the commit index: close enough to take
// over leadership or to vote.
func caughtUp(st raft.Status, id uint64) bool {
	pr, ok := st.Progress[id]
	return ok && pr.Match+5 >= st.GetCommit()
}
