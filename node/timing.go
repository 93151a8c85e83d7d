package node

import (
	"time"
)

// Raft's timing follows the network (issue 20, item 7). The configured
// profile (LAN by default) is a floor: on a LAN, or across a continent, a
// group keeps its fast failover. Where a voter's round trip leaves raft too
// little margin, the group's ticks lengthen so that its election timeout is
// at least electionRTTs round trips: a peer queue carries one batch at a
// time, so a follower hears its host about once per round trip, and a host
// whose followers' answers take longer than an election timeout steps down
// (check quorum). Without this a group whose members are 350 ms or more
// apart could not keep a host at all (TestWANHighLatency). Every member
// derives its own ticks from its own measurements: raft needs no agreement
// on them.

const (
	// electionRTTs is how many of the slowest voter's round trips the
	// election timeout covers at least: one for the heartbeat's interval,
	// one for its delay and jitter, and one so that, when the host is cut
	// off, the cut-off path (cutoff.go: two round trips of silence, then
	// the voters' reports) usually has the best backup campaign before
	// raft's own timers fire at the others. With two, those timers often
	// fired first, a round trip or less apart, and split the vote: in
	// BenchmarkWAN (round trips up to 283 ms), 54 of 60 cuts within
	// 1 s + 3 RTT with two, 40 of 40 with three (and the cuts' median
	// 0.78 to 0.91 s against 0.95 to 1.05 s), alternating runs.
	electionRTTs = 3
	// timingHysteresis is how far the fitting tick must move from the
	// current one, as a fraction of it, before the group changes its
	// ticks: a round trip that wanders within it changes nothing.
	timingHysteresis = 0.2
	// maxTick bounds the ticks however slow the network: an election
	// timeout of 10 s at the default 10 ticks.
	maxTick = time.Second
)

// fitTiming returns the timing for a group whose slowest voter's smoothed
// round trip is rtt: base, or base with ticks long enough that the election
// timeout is electionRTTs round trips, rounded up to 10 ms and at most
// maxTick.
func fitTiming(base Timing, rtt time.Duration) Timing {
	need := time.Duration(electionRTTs) * rtt / time.Duration(max(base.ElectionTicks, 1))
	if need <= base.Tick {
		return base
	}
	need = min((need+9*time.Millisecond)/(10*time.Millisecond)*(10*time.Millisecond), maxTick)
	t := base
	t.Tick = max(need, base.Tick)
	return t
}

// slowestVoterRTT is the largest smoothed round trip this node measured to
// a voter of the group, other than itself.
func (g *group) slowestVoterRTT() time.Duration {
	var worst float64
	for k, p := range g.pl.peers {
		m := g.st.Members[k]
		if m == nil || !m.Voter || k == g.n.self.Sign {
			continue
		}
		if ms, ok := p.est.Value(); ok && ms > worst {
			worst = ms
		}
	}
	return time.Duration(worst * float64(time.Millisecond))
}

// fitTicks moves the group's raft ticks to the timing its voters' round
// trips call for, when it differs from the current one by more than the
// hysteresis. It runs on the group's goroutine after each RTT sample.
func (g *group) fitTicks() {
	rtt := g.slowestVoterRTT()
	want := fitTiming(g.n.cfg.Timing, rtt)
	cur := g.timing.Tick
	if d := want.Tick - cur; d.Abs() <= time.Duration(float64(cur)*timingHysteresis) {
		return // the same ticks, or within the hysteresis
	}
	g.timing = want
	if g.ticker != nil {
		g.ticker.Reset(want.Tick)
		// The next tick comes a new tick from now: the gap to it is no
		// lateness (cutoff.go), though it may exceed the new tick's bound.
		g.lastTick = time.Now()
	}
	g.n.log.Info().Str("group", g.id.String()).Dur("slowest_rtt", rtt).Dur("tick", want.Tick).
		Dur("election_timeout", want.electionTimeout()).Msg("raft's ticks follow the voters' round trips")
}
