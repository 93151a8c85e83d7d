package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/election"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Placement: raft decides who MAY lead; election.Placer decides who SHOULD,
// and this file feeds it and carries out its decisions. Each member pings
// the others with signed pings and keeps a robust RTT and the pong times per
// peer; every ping interval (and on a pong while a decision is due sooner)
// it hands those, raft's role, term and progress, and the committed members
// and latency maps to the placer, and does what the placer decides: propose
// this member's latency map, hand leadership over, propose a voter change,
// or campaign. Nothing here can break raft's safety: it only calls
// TransferLeadership and Campaign and proposes ordinary, signed,
// one-voter-at-a-time configuration changes, which raft itself orders and
// checks.

type rttSample struct {
	key  [32]byte
	ms   float64
	ok   bool
	sent time.Time // when the ping went out (see measures)
	// gone says that the peer's address refused the connection: its
	// process is gone (see goneErr). Not a measurement: a report from
	// the transport, which may come from a raft send as well as a ping.
	gone bool
	// lostLog says that the peer refused this node's heartbeat of term as
	// committing beyond its log (lostlog.go). Not a measurement either.
	lostLog bool
	term    uint64
}

type peerLatency struct {
	est         election.Estimator
	lastPong    time.Time
	since       time.Time // when this node started pinging the peer
	failedSince time.Time // the first failed ping since lastPong
	gone        time.Time // the first report since lastPong that the peer's process is gone
	silence     silences  // the peer's recent silences: its raft messages overdue (samples.go)
	unanswered  silences  // the peer's recent silences to pings: no pong for a ping interval and more (samples.go)
}

// placementState is the group's side of placement: what it measured of
// each peer, and the policy's state machine (election.Placer) it steps.
type placementState struct {
	peers        map[[32]byte]*peerLatency
	started      time.Time
	placer       election.Placer
	ranking      election.Ranking     // the last step's, for the group's view
	transferTerm uint64               // the term of this node's last campaign on a leadership transfer
	forcedTerm   uint64               // the term of this node's last forced campaign (forceCampaign)
	raftHeard    map[uint64]time.Time // when each raft peer's last message arrived (samples.go)
	leaderSince  time.Time            // when this node last came to know a new leader (samples.go)
	stall        span                 // this node's last stall: its raft tick late (samples.go)
	lateAgain    bool                 // this node's ticks came late more than once within lateTicks (cutoff.go)
	leaderHeard  time.Time            // when this node last answered its leader
	voteGranted  time.Time            // when this node last granted another a vote
	wake         *time.Timer          // steps placement when a decision is due between ticks
	lastLogged   string
	keepHosting  bool // a censor in a test, which never hands over (export_censor_test.go)
	keepVoters   bool // a test that changes the voters itself (export_confhold_test.go)
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
			g.sample(k, url)
		}()
	}
}

// sample pings member k at url and hands the result to the group's
// goroutine as an RTT sample, timed from when the ping went out.
func (g *group) sample(k [32]byte, url string) {
	sent := time.Now()
	ms, ok, gone := g.ping(k, url)
	select {
	case g.rttc <- rttSample{key: k, ms: ms, ok: ok, gone: gone, sent: sent}:
	case <-g.stopc:
	}
}

// ping sends one signed ping and checks the signed pong: it must come from
// the pinged member, be addressed to us, and echo our nonce. Both carry their
// sender's raft view (attest.go); the pong's is recorded.
func (g *group) ping(key [32]byte, url string) (ms float64, ok, gone bool) {
	nonce := make([]byte, pingNonceLen)
	rand.Read(nonce)
	own := g.ownView()
	payload := encodePing(nonce, pingKindPing, own, g.pingExtra(own, key))
	frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypePing, Group: g.id, To: key, Payload: payload})
	if err != nil {
		return 0, false, false
	}
	ctx, cancel := context.WithTimeout(g.n.ctx, peerRequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := g.n.cfg.Link.Post(ctx, url, frame)
	rtt := time.Since(start)
	var be *behindError
	if errors.As(err, &be) {
		// The member does not know this node yet: it was away.
		g.n.onBehindAnswer(g, key, be)
		return 0, false, false
	}
	if err != nil {
		return 0, false, goneErr(err)
	}
	env, err := crypto.Verify(resp)
	var back []byte
	var kind byte
	var rv raftView
	var x pingExtra
	if err == nil {
		back, kind, rv, x, err = decodePing(env.Payload)
	}
	// A node that predates raft views echoes our whole payload: kind ping,
	// and our own view, which is not its report.
	if err != nil || env.Type != crypto.TypePong || env.Sender != key || env.To != g.n.self.Sign || !bytes.Equal(back, nonce) {
		g.n.reject(env, "bad pong", err)
		return 0, false, false
	}
	// A pong rejected for its head changes nothing (as a ping does not):
	// the head is checked before the view, suspicion or read mark is kept.
	var c headClaim
	if x.statement != nil {
		if c, err = parseHeadClaim(g.id, key, x.statement); err != nil {
			g.n.reject(env, "bad head statement", err)
			return 0, false, false
		}
	}
	if kind == pingKindPong {
		// Only a pong of kind 2 is the member's report: an echo of kind
		// 1 carries this node's own view, flags and read mark.
		g.noteAttestation(key, rv, x)
		g.noteSuspicion(key, rv, x)
		g.noteRead(key, x)
		g.notePair(key, x)
	}
	if x.statement != nil {
		g.noteHead(c)
	}
	return float64(rtt) / float64(time.Millisecond), true, false
}

func (g *group) onRTT(s rttSample) {
	if s.lostLog {
		g.onLostLog(s.key, s.term, time.Now())
		return
	}
	p := g.pl.peers[s.key]
	if p == nil {
		p = &peerLatency{since: time.Now()}
		g.pl.peers[s.key] = p
	}
	now := time.Now()
	if s.ok {
		g.notePongGap(p, now)
		if g.measures(s, p, now) {
			g.fig.rtt.observe(s.ms / 1000)
			p.est.Add(s.ms)
			g.fitTicks()
		} else {
			g.fig.leftOut.Add(1)
		}
		p.lastPong, p.failedSince, p.gone = now, time.Time{}, time.Time{}
	} else if p.failedSince.IsZero() {
		p.failedSince = now
	}
	if s.gone && p.gone.IsZero() {
		p.gone = now
		if k, _, ok := g.memberByRaft(g.leader); ok && g.leader != raft.None && k == s.key && g.role != raft.StateLeader {
			// The host's process is gone: its best backup need not
			// wait for the next ping interval to take over.
			g.placementStep(now)
			return
		}
		// Shown offline now (answers), not at the next ping interval.
		g.publish()
		g.n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	}
	// A new leader need not wait for the next tick: after a host crash
	// the handover to the best backup is due at once, and pongs arrive
	// between ticks, the first of them about when raft's progress shows
	// the target caught up.
	if !g.left && g.st.Members[g.n.self.Sign] != nil && g.pl.placer.Pending(g.role == raft.StateLeader) {
		g.placementStep(now)
	}
}

// placementTick runs every ping interval on the group goroutine: it pings
// the peers and steps the placement policy.
func (g *group) placementTick() {
	if g.left || g.st.Members[g.n.self.Sign] == nil {
		return
	}
	g.refreshStatement()
	if g.fork != nil {
		// Halted: the pings go on (they carry this node's statement, and
		// show who is online), the placement policy does not.
		g.pingPeers()
		return
	}
	now := time.Now()
	for k := range g.st.Members {
		// Every member gets an entry, pinged or not (a member without a
		// URL cannot be), so that the dead set knows since when it could
		// have answered.
		if k != g.n.self.Sign && g.pl.peers[k] == nil {
			g.pl.peers[k] = &peerLatency{since: now}
		}
	}
	g.pingPeers()
	g.placementStep(now)
}

// placementStep steps the placement policy and carries out its decision.
func (g *group) placementStep(now time.Time) {
	if g.fork != nil {
		return
	}
	d := g.pl.placer.Step(now, g.observations())
	g.pl.ranking = d.Ranking
	g.logRanking(d)
	g.carryOut(now, d)
	g.publish()
	if !d.Wake.IsZero() {
		g.wakeAt(d.Wake)
	}
}

// wakeAt steps placement again at t, on the group's goroutine, whatever
// the ticks do: the best backup's campaign is due then, to the tick of
// raft's timing, which a ping interval is far coarser than.
func (g *group) wakeAt(t time.Time) {
	if g.pl.wake != nil {
		g.pl.wake.Stop()
	}
	g.pl.wake = time.AfterFunc(time.Until(t), func() {
		_ = g.do(g.n.ctx, func() {
			if !g.left && g.st.Members[g.n.self.Sign] != nil {
				g.placementStep(time.Now())
			}
		})
	})
}

// placeVoters steps the voter side of placement alone. It runs every retry
// interval, more often than placementTick, so that a new group gets its
// voters quickly; raft refuses a second change while one is pending anyway.
func (g *group) placeVoters() {
	// Only the host the log names changes voters (state.State.Host); a new
	// leader's lead entry comes first (maybeLead).
	if g.role != raft.StateLeader || g.left || g.st.Host != g.n.self.Sign {
		return
	}
	now := time.Now()
	g.carryOut(now, g.pl.placer.StepVoters(now, g.observations()))
}

// observations gathers what placement decides from: raft's role, term and
// progress, the committed members and latency maps, and the pong times and
// RTTs measured here.
func (g *group) observations() election.Observations {
	now := time.Now()
	o := election.Observations{
		Self:         g.n.selfID,
		IsLeader:     g.role == raft.StateLeader,
		HasLeader:    g.leader != raft.None,
		PreCandidate: g.role == raft.StatePreCandidate,
		Term:         g.term,
		TransferTerm: g.pl.transferTerm,
		LeaderHeard:  g.pl.leaderHeard,
		CutOff:       g.hostCutOff(now),
		VoteGranted:  g.pl.voteGranted,
		MaxVoters:    g.st.MaxVoters,
		MinVoters:    state.MinVoters(len(g.st.Members), g.st.MaxVoters),
		Reports:      map[string]map[string]float64{},
		Relayed:      map[string]map[string]bool{},
		Peers:        map[string]election.Peer{},
		Started:      g.pl.started,
		Intervals: election.Intervals{
			Ping: g.n.cfg.PingInterval, Latency: g.n.cfg.LatencyInterval,
			TransferCooldown: g.n.cfg.TransferCooldown, Retry: g.n.cfg.RetryInterval,
			Hysteresis:      g.n.cfg.Hysteresis,
			ElectionTimeout: g.timing.electionTimeout(),
			Heartbeat:       g.timing.heartbeat(),
		},
	}
	var st raft.Status
	if o.IsLeader {
		// Progress is the leader's alone.
		st = g.raftStatus()
	}
	// Member ids as strings, once each: a string is bech32 work, and the
	// reports below name every pair.
	ids := make(map[[32]byte]string, len(g.st.Members))
	// A pre-candidate, or a member whose pre-vote was refused, still
	// watches the host it followed in its term (watchedHost): as that
	// host's best backup it takes over when the host is cut off.
	host := g.watchedHost()
	for _, m := range g.st.MemberList() {
		id := m.ID.String()
		ids[m.ID.Sign] = id
		_, tracked := st.Progress[m.RaftID]
		o.Members = append(o.Members, election.Member{ID: id, Order: m.Order, Voter: m.Voter, Tracked: tracked, CaughtUp: caughtUp(st, m.RaftID)})
		if m.RaftID == host.lead {
			o.Leader = id
		}
		if m.Voter && (m.RaftID == g.raftID && g.deposedRecently(now) || m.RaftID != g.raftID && g.withholdTransfer(m.RaftID, now)) {
			if o.Shunned == nil {
				o.Shunned = map[string]bool{}
			}
			o.Shunned[id] = true
		}
	}
	o.Logs = g.silentLogs(now, ids)
	for from, rep := range g.st.Latency {
		fid, ok := ids[from]
		if !ok {
			continue
		}
		out := map[string]float64{}
		for to, v := range rep {
			if tid, ok := ids[to]; ok {
				ms, relayed := state.SplitRTT(v)
				out[tid] = ms
				if relayed {
					if o.Relayed[fid] == nil {
						o.Relayed[fid] = map[string]bool{}
					}
					o.Relayed[fid][tid] = true
				}
			}
		}
		o.Reports[fid] = out
	}
	for k, p := range g.pl.peers {
		id, ok := ids[k]
		if !ok {
			continue
		}
		rtt, ok := p.est.Value()
		o.Peers[id] = election.Peer{Since: p.since, LastPong: p.lastPong, FailedSince: p.failedSince, Gone: p.gone, RTT: rtt, HasRTT: ok,
			Relayed: g.n.cfg.Path != nil && g.n.cfg.Path(k) == "relayed"}
	}
	return o
}

// carryOut does what a placement step decided: it proposes this node's
// latency map, hands leadership over, or proposes a voter change. Nothing
// here can break raft's safety: a transfer and an ordinary, signed,
// one-voter configuration change are raft's own, ordered and checked by it.
func (g *group) carryOut(now time.Time, d election.Decision) {
	for _, note := range d.Notes {
		g.n.log.Debug().Str("group", g.id.String()).Msg(note)
	}
	if d.Campaign && d.Force {
		g.forceCampaign()
	} else if d.Campaign {
		g.campaign()
	}
	if d.Publish != nil && g.proposeLatency(d.Publish, d.PublishRelayed) == nil {
		g.pl.placer.Published(now)
	}
	if d.TransferTo != "" && !g.pl.keepHosting {
		if id, err := identity.ParsePublicID(d.TransferTo); err == nil {
			if m := g.st.Members[id.Sign]; m != nil && g.withholdTransfer(m.RaftID, now) {
				g.fig.withheld.Add(1)
			} else if m != nil {
				g.n.log.Info().Str("group", g.id.String()).Str("to", g.namesakes().label(m.ID.String(), m.Name)).Interface("dead", d.Dead).Strs("preference", d.Ranking.Preference).Msg("handing over leadership to a better-placed member")
				g.transferLeader(m.RaftID)
			}
		}
	}
	if d.ChangeVoters && g.st.Host == g.n.self.Sign && !g.pl.keepVoters {
		target, voter, ct := d.Voters.Promote, true, pb.ConfChangeAddNode
		if d.Voters.Demote != "" {
			target, voter, ct = d.Voters.Demote, false, pb.ConfChangeAddLearnerNode
		}
		id, err := identity.ParsePublicID(target)
		if err != nil {
			return
		}
		if err := g.proposeConf(crypto.TypePromote, &state.TargetBody{Target: id.Sign[:], Voter: voter}, ct, state.RaftID(id.Sign)); err != nil {
			g.n.log.Debug().Err(err).Msg("voter change proposal")
		}
	}
}

// proposeLatency proposes this node's latency map, member id -> RTT in ms,
// with the peers it reaches only through a relay marked.
func (g *group) proposeLatency(m map[string]float64, relayed map[string]bool) error {
	var body state.LatencyBody
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id, err := identity.ParsePublicID(k)
		if err != nil {
			continue
		}
		body.Peers = append(body.Peers, id.Sign[:])
		us := uint32(math.Min(m[k]*1000, state.RelayedBit-1))
		if relayed[k] {
			us |= state.RelayedBit
		}
		body.RTTus = append(body.RTTus, us)
	}
	return g.proposeEntry(crypto.TypeLatencyMap, &body)
}

// campaignTransfer is the context etcd raft puts on the vote requests of a
// campaign that a leadership transfer started (MsgTimeoutNow); voters use it
// to grant the vote despite having heard from the leader recently.
const campaignTransfer = "CampaignTransfer"

// noteTransferCampaign reads what placement needs from this node's outgoing
// raft messages: the term of a campaign this node started because the
// leader handed leadership over to it (placement put such a leader where it
// is); when this node last answered its leader's heartbeat or append,
// which is when it last heard from it (the best backup's campaign is timed
// from it); and when it last granted another member a vote (the best
// backup does not campaign against an election under way).
func (g *group) noteTransferCampaign(msgs []*pb.Message) {
	for _, m := range msgs {
		switch {
		case m.GetType() == pb.MsgVote && string(m.GetContext()) == campaignTransfer:
			// A forced campaign looks the same to raft, but nobody
			// handed over: the backup that takes over ranked itself
			// first without the lost host, from maps measured with it
			// (or, with the ranking incomplete, was the first voter
			// to join). Counted as placed, it started settled, and
			// hysteresis kept the group on it when another member was
			// better by less than a fifth (TestPlacementOptimalHostAndFailover
			// under CI load); as an elected leader it ranks again
			// without the lost host first.
			if m.GetTerm() != g.pl.forcedTerm {
				g.pl.transferTerm = m.GetTerm()
			}
		case g.leader != raft.None && m.GetTo() == g.leader && (m.GetType() == pb.MsgHeartbeatResp || m.GetType() == pb.MsgAppResp):
			g.pl.leaderHeard = time.Now()
		case (m.GetType() == pb.MsgPreVoteResp || m.GetType() == pb.MsgVoteResp) && !m.GetReject():
			g.pl.voteGranted = time.Now()
		case m.GetType() == pb.MsgVoteResp && m.GetReject():
			g.rejectedForcedVote(m)
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
func (g *group) logRanking(d election.Decision) {
	if g.n.log.GetLevel() > zerolog.DebugLevel {
		return
	}
	name := map[string]string{}
	for _, m := range g.st.Members {
		name[m.ID.String()] = m.Name
	}
	r := d.Ranking
	pref := make([]string, 0, len(r.Preference))
	for _, id := range r.Preference {
		pref = append(pref, fmt.Sprintf("%s:%.2f/%d", name[id], r.Score[id], r.Reachable[id]))
	}
	dead := []string{}
	for id := range d.Dead {
		dead = append(dead, name[id])
	}
	sort.Strings(dead)
	leader := g.role == raft.StateLeader
	line := fmt.Sprint(pref, dead, d.Complete, leader)
	if line == g.pl.lastLogged {
		return
	}
	g.pl.lastLogged = line
	g.n.log.Debug().Str("group", g.id.String()).Strs("preference", pref).Strs("dead", dead).Int("edges", len(r.Edges)).Bool("complete", d.Complete).Bool("leader", leader).Msg("ranking")
}

// raftStatus is raft's status of this group, for the leader's progress.
func (g *group) raftStatus() raft.Status { return g.rn.Status() }

// campaign asks raft to start an election with this node as candidate.
func (g *group) campaign() {
	if g.fromBackup {
		return // restored.go
	}
	if err := g.rn.Campaign(); err != nil {
		g.n.log.Debug().Err(err).Str("group", g.id.String()).Msg("placement: campaign")
	}
}

// forceCampaign starts the election a leadership transfer starts: the
// other voters grant their votes although they heard from the leader within
// their election timeout, since its process is gone (see
// election.Placer). raft's own message for it, MsgTimeoutNow, is stepped
// locally as if the lost leader had sent it; it carries no term, so raft
// takes it as local, and nothing else reads it. It is counted.
func (g *group) forceCampaign() {
	if g.fromBackup {
		return // restored.go
	}
	if g.deposedRecently(time.Now()) {
		// The voters drop it (dropShunnedTransfer), but its higher
		// term would still unseat the host they elected instead.
		g.n.log.Debug().Str("group", g.id.String()).Msg("placement: no forced campaign from a host the voters deposed")
		return
	}
	if g.role == raft.StatePreCandidate {
		// raft ignores MsgTimeoutNow from a pre-candidate: its pre-vote,
		// sent again, is what it can do (election.Placer repeats it
		// while the host stays cut off).
		g.campaign()
		return
	}
	m := &pb.Message{Type: pb.MsgTimeoutNow.Enum(), From: proto.Uint64(g.leader), To: proto.Uint64(state.RaftID(g.n.self.Sign))}
	if err := g.rn.Step(m); err != nil {
		g.n.log.Debug().Err(err).Str("group", g.id.String()).Msg("placement: forced campaign")
		return
	}
	st := g.rn.BasicStatus()
	g.pl.forcedTerm = st.GetTerm()
	g.fig.forced.Add(1)
	g.n.log.Info().Str("group", g.id.String()).Msg("the host is gone or cut off; this member, its best backup, takes over")
}

// transferLeader asks raft to hand this group's leadership to the member
// with raft id to.
func (g *group) transferLeader(to uint64) { g.rn.TransferLeader(to) }
