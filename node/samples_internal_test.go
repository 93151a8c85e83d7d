package node

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// TestMeasuresLeavesOutSilences: a pong's round trip is a sample unless
// more than half of it overlaps the member's silences or this node's
// last stall, or this node's raft tick is overdue as it arrives (it stood
// still and has yet to take the late tick).
func TestMeasuresLeavesOutSilences(t *testing.T) {
	now := time.Now()
	g := &group{timing: LAN, lastTick: now.Add(-10 * time.Millisecond)}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	trip := rttSample{ok: true, sent: ago(time.Second)}
	for _, c := range []struct {
		name    string
		silence span
		stall   span
		want    bool
	}{
		{"no silence", span{}, span{}, true},
		{"a silence before the ping", span{ago(3 * time.Second), ago(2 * time.Second)}, span{}, true},
		{"the member silent through it", span{ago(2 * time.Second), ago(20 * time.Millisecond)}, span{}, false},
		{"the member silent for a tenth of it", span{ago(500 * time.Millisecond), ago(400 * time.Millisecond)}, span{}, true},
		{"this node stood still through it", span{}, span{ago(900 * time.Millisecond), ago(50 * time.Millisecond)}, false},
		{"this node late by a tenth of it (a loaded machine)", span{}, span{ago(300 * time.Millisecond), ago(200 * time.Millisecond)}, true},
		{"a third each", span{ago(time.Second), ago(600 * time.Millisecond)}, span{ago(400 * time.Millisecond), ago(200 * time.Millisecond)}, false},
	} {
		g.pl.stall = c.stall
		if got := g.measures(trip, &peerLatency{silence: silences{c.silence}}, now); got != c.want {
			t.Errorf("%s: measures = %v, want %v", c.name, got, c.want)
		}
	}

	// The tick is overdue: this node stood still until now.
	g.pl.stall = span{}
	g.lastTick = ago(800 * time.Millisecond)
	if g.measures(trip, &peerLatency{}, now) {
		t.Error("a round trip this node stood still through was taken for a sample")
	}
	if g.pl.stall.to != now {
		t.Errorf("the overdue tick was not recorded as a stall: %+v", g.pl.stall)
	}
}

// TestFarMemberNotOverdue: a member whose raft messages come one round
// trip apart, farther than two heartbeats, is not silent between them; it
// is once they are late by two of its round trips.
func TestFarMemberNotOverdue(t *testing.T) {
	ids := seededIdentities(t, 2)
	st := votersOf(crypto.GroupID{3}, ids)
	far := ids[1].Public().Sign
	p := &peerLatency{}
	p.est.Add(160)
	g := &group{n: &Node{self: ids[0].Public()}, st: st, timing: LAN}
	g.pl.peers = map[[32]byte]*peerLatency{far: p}
	now := time.Now()
	g.pl.raftHeard = map[uint64]time.Time{state.RaftID(far): now.Add(-150 * time.Millisecond)}
	g.markSilentPeers(now)
	if lastSilence(p.silence) != (span{}) {
		t.Fatalf("a member 160 ms away, heard 150 ms ago, was counted silent: %+v", lastSilence(p.silence))
	}
	heard := now.Add(-400 * time.Millisecond)
	g.pl.raftHeard[state.RaftID(far)] = heard
	g.markSilentPeers(now)
	// Silent from when it was overdue: two of its round trips after it
	// was last heard.
	if lastSilence(p.silence) != (span{heard.Add(320 * time.Millisecond), now}) {
		t.Fatalf("a member 160 ms away, heard 400 ms ago, was not counted silent for the last 80 ms: %+v", lastSilence(p.silence))
	}
	// Long silent: no longer counted (it may have stopped talking to this
	// node for another reason: the host moved).
	p.silence = nil
	g.pl.raftHeard[state.RaftID(far)] = now.Add(-silenceMemory - time.Second)
	g.markSilentPeers(now)
	if lastSilence(p.silence) != (span{}) {
		t.Fatalf("a member silent for longer than silenceMemory was counted silent: %+v", lastSilence(p.silence))
	}
	// And forgotten, as a departed member is.
	if _, ok := g.pl.raftHeard[state.RaftID(far)]; ok {
		t.Fatal("a member silent for longer than silenceMemory is still remembered")
	}
}

// TestHandoverIsNoSilence: a member that stops talking to this node because
// another came to lead (this node knew the new leader within the member's
// overdue time: a handover) is not counted silent; one that stopped well
// before a new leader came (a cut) is.
func TestHandoverIsNoSilence(t *testing.T) {
	ids := seededIdentities(t, 3)
	st := votersOf(crypto.GroupID{4}, ids)
	old, next := ids[1].Public().Sign, ids[2].Public().Sign
	p := &peerLatency{}
	now := time.Now()
	g := &group{n: &Node{self: ids[0].Public()}, st: st, timing: LAN, role: raft.StateFollower, leader: state.RaftID(next)}
	g.pl.peers = map[[32]byte]*peerLatency{old: p, next: {}}
	heard := now.Add(-time.Second)
	g.pl.raftHeard = map[uint64]time.Time{state.RaftID(old): heard, state.RaftID(next): now}

	g.pl.leaderSince = heard.Add(30 * time.Millisecond) // a handover
	g.markSilentPeers(now)
	if lastSilence(p.silence) != (span{}) {
		t.Fatalf("the host that handed over was counted silent: %+v", lastSilence(p.silence))
	}
	g.pl.leaderSince = heard.Add(300 * time.Millisecond) // a cut, then an election
	g.markSilentPeers(now)
	if want := (span{heard.Add(2 * LAN.heartbeat()), now}); lastSilence(p.silence) != want {
		t.Fatalf("the host cut off: silence %+v, want %+v", lastSilence(p.silence), want)
	}
}

// TestPongGap: a pong that comes after no pong from its member for a ping
// interval and more marks the member silent to pings from then on; pongs a
// ping interval apart, each later than the last (a member moving away),
// do not.
func TestPongGap(t *testing.T) {
	g := &group{n: &Node{cfg: Config{PingInterval: time.Second}}, timing: LAN}
	now := time.Now()
	p := &peerLatency{lastPong: now.Add(-1050 * time.Millisecond)}
	p.est.Add(10)
	g.notePongGap(p, now)
	if lastSilence(p.unanswered) != (span{}) {
		t.Fatalf("a pong 1.05 s after the last, pings a second apart, marked a silence: %+v", lastSilence(p.unanswered))
	}
	p.lastPong = now.Add(-3 * time.Second)
	g.notePongGap(p, now)
	if want := (span{p.lastPong.Add(time.Second + 2*LAN.heartbeat()), now}); lastSilence(p.unanswered) != want {
		t.Fatalf("no pong for 3 s: silence %+v, want %+v", lastSilence(p.unanswered), want)
	}
	// The pings in flight through it are no samples; one sent after it
	// ended is.
	if g.measures(rttSample{ok: true, sent: now.Add(-2 * time.Second)}, p, now) {
		t.Fatal("a ping in flight through the silence was taken for a sample")
	}
	if !g.measures(rttSample{ok: true, sent: now.Add(time.Millisecond)}, p, now.Add(3*time.Millisecond)) {
		t.Fatal("a ping sent after the silence was left out")
	}
}

// TestHoldPongsTrickleIn: the pongs held through a member's silence come
// over hundreds of milliseconds on a loaded machine, and a gap between two
// of them is a silence of its own; the pongs after it, in flight through
// the whole hold, are still no samples.
func TestHoldPongsTrickleIn(t *testing.T) {
	g := &group{n: &Node{cfg: Config{PingInterval: 100 * time.Millisecond}}, timing: LAN}
	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	p := &peerLatency{}
	p.est.Add(1)
	// The first pong after a hold of 1.8 s.
	p.lastPong = ago(2100 * time.Millisecond)
	g.notePongGap(p, ago(250*time.Millisecond))
	// The next a quarter of a second later: a gap of its own.
	p.lastPong = ago(250 * time.Millisecond)
	g.notePongGap(p, now)
	if g.measures(rttSample{ok: true, sent: ago(1700 * time.Millisecond)}, p, now) {
		t.Fatal("a pong in flight through the hold, after a gap, was taken for a sample")
	}
	if got := len(p.unanswered); got != 2 {
		t.Fatalf("the hold and the gap after it: %d silences recorded, want 2: %+v", got, p.unanswered)
	}
	// Forgotten once no pong in flight through it can come.
	g.notePongGap(p, now.Add(silenceMemory+time.Second))
	if got := len(p.unanswered); got != 1 {
		t.Fatalf("%d silences kept after silenceMemory, want the last one: %+v", got, p.unanswered)
	}
}

// lastSilence returns the last of s, or the zero span.
func lastSilence(s silences) span {
	if len(s) == 0 {
		return span{}
	}
	return s[len(s)-1]
}

// votersOf returns the state of group gid with ids as its voters.
func votersOf(gid crypto.GroupID, ids []*identity.Identity) *state.State {
	st := state.New(gid)
	for _, id := range ids {
		k := id.Public().Sign
		st.Members[k] = &state.Member{ID: id.Public(), RaftID: state.RaftID(k), Voter: true}
	}
	return st
}
