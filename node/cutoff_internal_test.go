package node

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// TestHostCutOffNeedsAMajority: a follower counts its host cut off only
// when a majority of the voters, itself among them, no longer hear it: its
// own silence alone, or with reports that are stale (from before it last
// heard the host), about another host or term, or from the host itself or
// a non-voter, is not enough.
func TestHostCutOffNeedsAMajority(t *testing.T) {
	ids := seededIdentities(t, 6)
	key := func(i int) [32]byte { return ids[i].Public().Sign }
	st := state.New(crypto.GroupID{1})
	for i := range ids {
		st.Members[key(i)] = &state.Member{ID: ids[i].Public(), RaftID: state.RaftID(key(i)), Voter: i < 5}
	}
	now := time.Now()
	heard := now.Add(-time.Second)
	host := state.RaftID(key(0))
	g := &group{
		n:  &Node{self: ids[1].Public()},
		st: st, timing: LAN, role: raft.StateFollower, leader: host, term: 7,
	}
	g.pl.leaderHeard = heard
	rv := raftView{term: 7, lead: host}
	report := func(i int, v raftView, at time.Time) {
		if g.silent == nil {
			g.silent = map[[32]byte]silentReport{}
		}
		g.silent[key(i)] = silentReport{view: v, at: at}
	}

	// Five voters (0 the host, 1 this node), one learner (5): three of
	// the five must not hear the host.
	if g.hostCutOff(now) {
		t.Fatal("cut off on this node's silence alone")
	}
	report(2, rv, now)
	report(0, rv, now)                            // the host itself: not a voter's word about it
	report(5, rv, now)                            // a learner
	report(3, raftView{term: 6, lead: host}, now) // another term
	report(4, rv, heard.Add(-time.Millisecond))   // before this node last heard the host
	if g.hostCutOff(now) {
		t.Fatalf("cut off with one good report: %+v", g.silent)
	}
	report(4, rv, now)
	if !g.hostCutOff(now) {
		t.Fatal("not cut off with this node and two other voters silent")
	}
	g.pl.leaderHeard = now.Add(-10 * time.Millisecond)
	if g.hostCutOff(now) {
		t.Fatal("cut off although this node heard the host 10 ms ago")
	}
}

// TestOwnLatenessEndsOnceHostAnswered: a follower whose own tick came late
// counts its host silent only after it answered the host since; from then
// on a silence is the host's, although lateTicks have not passed.
func TestOwnLatenessEndsOnceHostAnswered(t *testing.T) {
	ids := seededIdentities(t, 3)
	st := votersOf(crypto.GroupID{1}, ids)
	now := time.Now()
	host := state.RaftID(ids[0].Public().Sign)
	g := &group{n: &Node{self: ids[1].Public()}, st: st, timing: LAN, role: raft.StateFollower, leader: host, term: 7}
	// This node stood still for 600 ms, until 300 ms ago: its late tick
	// keeps it from counting its host silent for lateTicks heartbeats.
	g.pl.stall = span{now.Add(-900 * time.Millisecond), now.Add(-300 * time.Millisecond)}
	g.lateUntil = g.pl.stall.to.Add(lateTicks * LAN.heartbeat())
	if !now.Before(g.lateUntil) {
		t.Fatal("the test's stall is too old to matter")
	}
	g.pl.leaderHeard = now.Add(-950 * time.Millisecond)
	if silent, _ := g.hostSilence(now); silent {
		t.Fatal("counted the host silent although it has not answered it since its own stall")
	}
	g.pl.leaderHeard = g.pl.stall.to
	if silent, _ := g.hostSilence(now); silent {
		t.Fatal("counted the host silent having last answered it as the stall ended")
	}
	g.pl.leaderHeard = now.Add(-250 * time.Millisecond)
	if silent, _ := g.hostSilence(now); !silent {
		t.Fatal("did not count the host silent 250 ms after answering it, its own stall over")
	}
	// Ticks late again and again (an overloaded machine): the guard holds
	// its whole time, answered host or not.
	g.pl.lateAgain = true
	if silent, _ := g.hostSilence(now); silent {
		t.Fatal("counted the host silent with its own ticks late more than once in a row")
	}
}

// TestPreCandidateWatchesItsHost: a follower whose own election timer fired
// (raft's pre-candidate: no leader, the same term) still counts the host it
// followed in that term silent, says so in its pings with that host's view,
// and counts the host cut off with the others' reports; once the term moves
// on without a leader (another member's election), it watches no host.
func TestPreCandidateWatchesItsHost(t *testing.T) {
	ids := seededIdentities(t, 5)
	key := func(i int) [32]byte { return ids[i].Public().Sign }
	st := votersOf(crypto.GroupID{1}, ids)
	now := time.Now()
	host := state.RaftID(key(0))
	g := &group{
		n:  &Node{self: ids[1].Public()},
		st: st, timing: LAN, role: raft.StateFollower, leader: host, term: 7, raftID: state.RaftID(key(1)),
	}
	g.noteHost()
	g.pl.leaderHeard = now.Add(-time.Second)
	// Its election timer fires: raft forgets the leader and keeps the
	// term, whose successor its pre-vote asks for.
	g.role, g.leader = raft.StatePreCandidate, raft.None
	g.noteHost()
	rv := raftView{term: 7, lead: host}
	if got := g.watchedHost(); got != rv {
		t.Fatalf("a pre-candidate watches %+v, want the host it followed, %+v", got, rv)
	}
	if silent, _ := g.hostSilence(now); !silent {
		t.Fatal("a pre-candidate does not count its silent host silent")
	}
	g.silent = map[[32]byte]silentReport{key(2): {view: rv, at: now}}
	if g.hostCutOff(now) {
		t.Fatal("cut off with two voters of five")
	}
	g.silent[key(3)] = silentReport{view: rv, at: now}
	if !g.hostCutOff(now) {
		t.Fatal("a pre-candidate does not count its host cut off with two other voters silent")
	}
	// Its pings carry the silence with the host's view, not with no host.
	g.view.Store(&view{term: 7})
	g.silentView.Store(&rv)
	if got := g.ownView(); got != rv {
		t.Fatalf("a silent pre-candidate's pings carry %+v, want %+v", got, rv)
	}
	// Another member's vote request moves the term on: an election is
	// under way, and no host is watched.
	g.role, g.term = raft.StateFollower, 8
	if got := g.watchedHost(); got.lead != raft.None {
		t.Fatalf("watches %+v in a new term without a leader", got)
	}
	if silent, _ := g.hostSilence(now); silent {
		t.Fatal("counts a host silent in a new term without a leader")
	}
}
