package election

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// world is a group as one member's placer sees it: a latency matrix, who is
// up, who votes, and a clock that the test advances by hand.
type world struct {
	t       *testing.T
	now     time.Time
	started time.Time
	self    string
	ids     []string
	rtt     map[string]map[string]float64 // symmetric, ms
	reports map[string]map[string]float64 // the committed maps
	down    map[string]bool               // crashed: no pongs
	gone    map[string]bool               // crashed, and its address refuses connections
	voters  map[string]bool
	behind  map[string]bool // tracked by the leader but not caught up
	leader  string
	term    uint64
	xfer    uint64 // the term of self's last transfer campaign
	heard   time.Time
	voted   time.Time
	peers   map[string]Peer
	iv      Intervals
	p       Placer
}

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// newWorld has five members a to e: b a hub 5 ms from everyone, c a second
// hub 10 ms from the others, and the rest 30 ms apart. All vote; self leads
// in term 1, elected on its own; every map is committed.
func newWorld(t *testing.T, self string) *world {
	w := &world{
		t: t, now: t0, started: t0, self: self, ids: ids("a b c d e"),
		rtt: map[string]map[string]float64{}, down: map[string]bool{}, gone: map[string]bool{},
		voters: set("a b c d e"), behind: map[string]bool{},
		leader: self, term: 1, peers: map[string]Peer{},
		iv: Intervals{Ping: 100 * time.Millisecond, Latency: time.Second, TransferCooldown: time.Second,
			Retry: 200 * time.Millisecond, Hysteresis: DefaultHysteresis()},
	}
	for _, a := range w.ids {
		for _, b := range w.ids {
			switch {
			case a == b:
			case a == "b" || b == "b":
				w.link(a, b, 5)
			case a == "c" || b == "c":
				w.link(a, b, 10)
			default:
				w.link(a, b, 30)
			}
		}
	}
	w.commitMaps()
	w.pong()
	return w
}

func (w *world) link(a, b string, ms float64) {
	for _, x := range [][2]string{{a, b}, {b, a}} {
		if w.rtt[x[0]] == nil {
			w.rtt[x[0]] = map[string]float64{}
		}
		w.rtt[x[0]][x[1]] = ms
	}
}

// commitMaps commits every live member's map as measured now.
func (w *world) commitMaps() {
	w.reports = map[string]map[string]float64{}
	for _, a := range w.ids {
		if w.down[a] {
			continue
		}
		w.reports[a] = map[string]float64{}
		for _, b := range w.ids {
			if a != b && !w.down[b] {
				w.reports[a][b] = w.rtt[a][b]
			}
		}
	}
}

// pong has every live peer answer self's ping now.
func (w *world) pong() {
	for _, id := range w.ids {
		if id == w.self {
			continue
		}
		p, ok := w.peers[id]
		if !ok {
			p.Since = w.now
		}
		if !w.down[id] {
			p.LastPong, p.RTT, p.HasRTT, p.FailedSince, p.Gone = w.now, w.rtt[w.self][id], true, time.Time{}, time.Time{}
		} else if p.FailedSince.IsZero() {
			p.FailedSince = w.now
		}
		if w.down[id] && w.gone[id] && p.Gone.IsZero() {
			p.Gone = w.now
		}
		w.peers[id] = p
	}
}

func (w *world) obs() Observations {
	o := Observations{
		Self: w.self, IsLeader: w.leader == w.self, HasLeader: w.leader != "", Leader: w.leader,
		Term: w.term, TransferTerm: w.xfer, Reports: w.reports, Peers: maps.Clone(w.peers),
		Started: w.started, Intervals: w.iv, MaxVoters: 5, LeaderHeard: w.heard, VoteGranted: w.voted,
	}
	for i, id := range w.ids {
		o.Members = append(o.Members, Member{ID: id, Order: i + 1, Voter: w.voters[id], Tracked: true, CaughtUp: !w.behind[id] && !w.down[id]})
	}
	return o
}

// step advances the clock by d, has the peers answer, and steps.
func (w *world) step(d time.Duration) Decision {
	w.now = w.now.Add(d)
	w.pong()
	return w.p.Step(w.now, w.obs())
}

// run steps every ping interval for d and returns when and to whom the
// first transfer went, if any.
func (w *world) run(d time.Duration) (time.Duration, string) {
	start := w.now
	for w.now.Sub(start) < d {
		if dec := w.step(w.iv.Ping); dec.TransferTo != "" {
			return w.now.Sub(start), dec.TransferTo
		}
	}
	return 0, ""
}

// crash takes id down; the survivors' committed maps still list it.
func (w *world) crash(id string) { w.down[id] = true }

func TestPlacerSettling(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(w *world)
		within time.Duration
		want   string        // transfer target, "" for none
		after  time.Duration // no earlier than this
	}{
		// An elected leader hands over to the top of a complete ranking
		// once it has stood for two latency intervals, without
		// hysteresis.
		{"elected leader hands over to the top", nil, 5 * time.Second, "b", 2 * time.Second},
		// Not to a top that is not a caught-up voter: it waits (while
		// complete rankings keep coming, past the search's deadline).
		{"top not caught up", func(w *world) { w.behind["b"] = true }, 10 * time.Second, "", 0},
		{"top not a voter", func(w *world) { w.voters["b"] = false }, 10 * time.Second, "", 0},
		// Nor on an incomplete ranking: e has published nothing yet.
		{"incomplete ranking", func(w *world) {
			delete(w.reports, "e")
		}, 2500 * time.Millisecond, "", 0},
		// A leader put in place by a transfer starts settled: the hub is
		// better by more than the hysteresis, so it still moves, but only
		// once the candidate has stood for two latency intervals.
		{"placed leader, clearly better candidate", func(w *world) { w.xfer = w.term }, 5 * time.Second, "b", 2 * time.Second},
		// ...and within the hysteresis it never moves.
		{"placed leader, candidate within hysteresis", func(w *world) {
			w.xfer = w.term
			w.self, w.leader = "c", "c"
			w.link("b", "c", 9) // b: mean 6 ms, c: 9.75 ms: 2 ms better but not 20%
			w.link("b", "a", 9)
			w.link("b", "d", 9)
			w.link("b", "e", 9)
			w.commitMaps()
		}, 20 * time.Second, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "a")
			if tt.setup != nil {
				tt.setup(w)
			}
			w.peers = map[string]Peer{}
			w.pong()
			at, to := w.run(tt.within)
			if to != tt.want {
				t.Fatalf("transfer to %q after %v, want %q", to, at, tt.want)
			}
			if to != "" && at < tt.after {
				t.Fatalf("transfer after %v, want no earlier than %v", at, tt.after)
			}
		})
	}
}

// TestPlacerSettlesOnItself: a leader that tops the ranking settles, and
// from then on hysteresis decides.
func TestPlacerSettlesOnItself(t *testing.T) {
	w := newWorld(t, "b")
	settled := false
	for i := 0; i < 50 && !settled; i++ {
		for _, n := range w.step(w.iv.Ping).Notes {
			settled = settled || n == "placement: this leader is the top candidate; hysteresis from now on"
		}
	}
	if !settled {
		t.Fatal("the top leader did not settle")
	}
	// c becomes better than b, but by less than the hysteresis.
	w.link("c", "a", 5.2)
	w.link("c", "d", 5.2)
	w.link("c", "e", 5.2)
	w.link("b", "a", 6)
	w.commitMaps()
	if at, to := w.run(20 * time.Second); to != "" {
		t.Fatalf("settled leader moved to %s after %v within the hysteresis", to, at)
	}
}

// TestPlacerCooldowns: transfers at least the cooldown apart; voter changes
// at least a retry interval apart, one at a time, and never while a transfer
// or the other may be under way.
func TestPlacerCooldowns(t *testing.T) {
	t.Run("transfer cooldown", func(t *testing.T) {
		w := newWorld(t, "a")
		at, to := w.run(5 * time.Second)
		if to != "b" {
			t.Fatalf("no transfer to b (got %q)", to)
		}
		_ = at
		// The transfer was lost: a is still leader and tries again, but
		// only after the cooldown.
		again, to := w.run(5 * time.Second)
		if to != "b" || again < w.iv.TransferCooldown {
			t.Fatalf("retry to %q after %v, want b after at least %v", to, again, w.iv.TransferCooldown)
		}
	})
	t.Run("no voter change while a transfer may be under way", func(t *testing.T) {
		w := newWorld(t, "a")
		if _, to := w.run(5 * time.Second); to != "b" {
			t.Fatal("no transfer")
		}
		w.voters["d"] = false // a change to make: promote d again
		transferred := w.now
		for w.now.Sub(transferred) < w.iv.TransferCooldown {
			if d := w.p.StepVoters(w.now, w.obs()); d.ChangeVoters {
				t.Fatalf("voter change %+v %v after the transfer", d.Voters, w.now.Sub(transferred))
			}
			w.now = w.now.Add(50 * time.Millisecond)
			w.pong()
		}
		if d := w.p.StepVoters(w.now, w.obs()); !d.ChangeVoters || d.Voters.Promote != "d" {
			t.Fatalf("no promotion of d after the cooldown: %+v", d)
		}
	})
	t.Run("no transfer while a voter change is in flight", func(t *testing.T) {
		w := newWorld(t, "a")
		w.voters["e"] = false
		d := w.step(w.iv.Ping)
		if !d.ChangeVoters || d.Voters.Promote != "e" {
			t.Fatalf("first step: %+v, want e promoted", d)
		}
		moved := w.now
		w.voters["e"] = true
		at, to := w.run(5 * time.Second)
		if to != "b" {
			t.Fatal("no transfer")
		}
		if w.now.Sub(moved) < 2*w.iv.Retry {
			t.Fatalf("transfer %v after the voter change", at)
		}
	})
	t.Run("one voter change at a time", func(t *testing.T) {
		w := newWorld(t, "a")
		w.voters = set("a b")
		w.xfer = w.term // settled: no transfer in the way
		var changes []VoterChange
		var times []time.Time
		for i := 0; i < 40; i++ {
			w.now = w.now.Add(50 * time.Millisecond)
			w.pong()
			d := w.p.StepVoters(w.now, w.obs())
			if !d.ChangeVoters {
				continue
			}
			changes = append(changes, d.Voters)
			times = append(times, w.now)
			w.voters[d.Voters.Promote] = true // applied before the next
		}
		if len(changes) != 3 {
			t.Fatalf("changes %v, want three promotions", changes)
		}
		for i := 1; i < len(times); i++ {
			if times[i].Sub(times[i-1]) < w.iv.Retry {
				t.Fatalf("changes %v apart", times[i].Sub(times[i-1]))
			}
		}
	})
}

func TestDead(t *testing.T) {
	iv := Intervals{Ping: time.Second}
	members := []Member{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	tests := []struct {
		name  string
		now   time.Duration // since start
		peers map[string]Peer
		want  string
	}{
		{"nobody right after start", 2 * time.Second, map[string]Peer{"b": {}, "c": {}}, ""},
		{"never answered since pinged", 4 * time.Second, map[string]Peer{"b": {Since: t0}, "c": {Since: t0, LastPong: t0.Add(3 * time.Second)}}, "b"},
		{"joined recently", 4 * time.Second, map[string]Peer{"b": {Since: t0.Add(2 * time.Second)}, "c": {Since: t0, LastPong: t0.Add(3 * time.Second)}}, ""},
		{"silent for three intervals", 10 * time.Second, map[string]Peer{"b": {Since: t0, LastPong: t0.Add(6 * time.Second)}, "c": {Since: t0, LastPong: t0.Add(9 * time.Second)}}, "b"},
		{"not pinged yet", 10 * time.Second, map[string]Peer{"c": {Since: t0, LastPong: t0.Add(9 * time.Second)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observations{Self: "a", Members: members, Peers: tt.peers, Started: t0, Intervals: iv}
			got := Dead(t0.Add(tt.now), o)
			if want := set(tt.want); !maps.Equal(got, want) {
				t.Fatalf("Dead = %v, want %v", got, want)
			}
		})
	}
}

// TestPlacerExcludesDead: a dead member is neither ranked nor a target, and
// a learner that has not caught up is not promoted.
func TestPlacerExcludesDead(t *testing.T) {
	w := newWorld(t, "a")
	w.crash("b")
	w.commitMaps() // every survivor has published without b
	w.now = w.now.Add(time.Second)
	at, to := w.run(10 * time.Second)
	if to != "c" {
		t.Fatalf("transfer to %q after %v, want c, the best live member", to, at)
	}

	w = newWorld(t, "a")
	w.xfer = w.term
	w.voters["e"] = false
	w.behind["e"] = true
	for i := 0; i < 20; i++ {
		if d := w.step(w.iv.Ping); d.ChangeVoters {
			t.Fatalf("voter change %+v with the only learner behind", d.Voters)
		}
	}
}

// TestPlacerAfterLoss: a member that raft elects after the leader it
// followed is lost hands over to the best survivor at its first step as
// leader, from the maps already committed.
func TestPlacerAfterLoss(t *testing.T) {
	tests := []struct {
		name  string
		self  string
		setup func(w *world)
		want  string // the first step's transfer
		note  string // or a note of the first step
	}{
		{"to the best backup at once", "d", nil, "c", ""},
		{"the best backup itself settles", "c", nil, "", "placement: this leader is the top candidate; hysteresis from now on"},
		// Not to a backup that is not caught up yet (raft's progress
		// right after an election): the next step will.
		{"the best backup not caught up", "d", func(w *world) { w.behind["c"] = true }, "", ""},
		// A member that has published nothing makes the ranking
		// incomplete: wait as after a join.
		{"incomplete without the old leader", "d", func(w *world) { delete(w.reports, "e") }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.self)
			w.leader = "b"
			for i := 0; i < 10; i++ {
				w.step(w.iv.Ping)
			}
			w.crash("b")
			w.now = w.now.Add(700 * time.Millisecond) // raft's election
			w.leader, w.term = tt.self, 2
			if tt.setup != nil {
				tt.setup(w)
			}
			d := w.step(w.iv.Ping)
			if d.TransferTo != tt.want {
				t.Fatalf("first step transfers to %q, want %q (ranking %v)", d.TransferTo, tt.want, d.Ranking.Preference)
			}
			if tt.note != "" && !contains(d.Notes, tt.note) {
				t.Fatalf("notes %q, want %q", d.Notes, tt.note)
			}
		})
	}
}

// TestPlacerLostLeaderAnswers: when the leader that an election replaced
// answers a ping after all, it was not lost; the new leader forgets the
// shortcut and waits for the ranking with it to stand, as after a start.
func TestPlacerLostLeaderAnswers(t *testing.T) {
	w := newWorld(t, "d")
	w.leader = "b"
	for i := 0; i < 10; i++ {
		w.step(w.iv.Ping)
	}
	w.leader, w.term = "d", 2
	w.behind["c"] = true
	if d := w.step(w.iv.Ping); d.TransferTo != "" {
		t.Fatalf("transfer to %s", d.TransferTo)
	}
	delete(w.behind, "c")
	d := w.step(w.iv.Ping) // b answered the ping of the step before
	if d.TransferTo != "" || !contains(d.Notes, "placement: the previous leader answers; ranking with it again") {
		t.Fatalf("second step: transfer to %q, notes %q", d.TransferTo, d.Notes)
	}
	at, to := w.run(5 * time.Second)
	if to != "b" || at < 2*w.iv.Latency-2*w.iv.Ping {
		t.Fatalf("transfer to %q after %v, want b after the top has stood", to, at)
	}
}

// TestPlacerPending: while the handover after a loss waits only for the
// target to catch up, the caller is told to step before the next tick.
func TestPlacerPending(t *testing.T) {
	w := newWorld(t, "d")
	w.leader = "b"
	w.step(w.iv.Ping)
	if w.p.Pending(false) {
		t.Fatal("a follower is pending")
	}
	w.crash("b")
	w.leader, w.term = "d", 2
	if !w.p.Pending(true) {
		t.Fatal("a new leader that has not stepped is not pending")
	}
	w.behind["c"] = true
	if d := w.step(w.iv.Ping); d.TransferTo != "" || !w.p.Pending(true) {
		t.Fatalf("transfer %q, pending %v; want none yet, and pending", d.TransferTo, w.p.Pending(true))
	}
	delete(w.behind, "c")
	if d := w.step(10 * time.Millisecond); d.TransferTo != "c" || w.p.Pending(true) {
		t.Fatalf("transfer %q, pending %v; want c, and no longer pending", d.TransferTo, w.p.Pending(true))
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestPlacerPublish(t *testing.T) {
	w := newWorld(t, "a")
	w.leader = ""
	if d := w.step(w.iv.Ping); d.Publish != nil {
		t.Fatalf("published %v without a leader", d.Publish)
	}
	w.leader = "b"
	if d := w.step(w.iv.Ping); d.Publish != nil {
		t.Fatalf("published %v, the same as the committed map", d.Publish)
	}
	w.link("a", "d", 60)
	d := w.step(w.iv.Ping)
	if d.Publish == nil || d.Publish["d"] != 60 {
		t.Fatalf("published %v, want the changed map", d.Publish)
	}
	w.p.Published(w.now)
	if d := w.step(w.iv.Latency - w.iv.Ping); d.Publish != nil {
		t.Fatal("published again within the latency interval")
	}
	if d := w.step(w.iv.Ping); d.Publish == nil {
		t.Fatal("not published again after the latency interval")
	}
}

// TestPlacerPromotesNoFormerMember: StepVoters ranks with the last Step's
// ranking, which still names a member that has left since: the voter
// change must not promote it. The state machine refuses the promotion of a
// non-member, but the entry is a membership change all the same: while it
// waits in a member's log unapplied, that member does not say it is the
// only other voter of a pair (node pairOf), and a restored host of the pair
// elected no host again (node.TestRestoredHostOfAGroupShrunkToTwo, 1 full
// run in 3 under load: the host proposed the promotion of the member that
// had just left, and was lost before it committed).
func TestPlacerPromotesNoFormerMember(t *testing.T) {
	w := newWorld(t, "a")
	w.xfer = w.term // settled: no transfer in the way
	w.step(w.iv.Ping)
	if !slices.Contains(w.p.ranking.Preference, "e") {
		t.Fatal("the ranking does not name e: the test is broken")
	}
	// e leaves: the state has four members, and e no longer votes.
	w.ids = ids("a b c d")
	delete(w.voters, "e")
	w.now = w.now.Add(w.iv.Retry)
	if d := w.p.StepVoters(w.now, w.obs()); d.ChangeVoters && d.Voters.Promote == "e" {
		t.Fatalf("the placer promotes e, which left: %+v", d.Voters)
	}
}
