package election

import (
	"testing"
	"time"
)

// TestPlacerCutOff: once a majority of the voters no longer hear the leader
// (Observations.CutOff), its best backup campaigns at once with the forced
// campaign, once per silence; a member the voters deposed lately (Shunned)
// never does, nor does one whose log is behind another voter's (Logs),
// and the best of the others runs in its place.
func TestPlacerCutOff(t *testing.T) {
	tests := []struct {
		name  string
		self  string
		setup func(w *world, o *Observations)
		want  bool
	}{
		{"the best backup campaigns", "c", nil, true},
		{"another member leaves it to the best backup", "d", nil, false},
		{"no majority silent", "c", func(w *world, o *Observations) { o.CutOff = false }, false},
		{"another election under way", "c", func(w *world, o *Observations) { o.VoteGranted = w.now }, false},
		{"a shunned best backup refrains", "c", func(w *world, o *Observations) { o.Shunned = set("c") }, false},
		// a, d and e are alike without b and c; a joined first.
		{"the next best runs in its place", "a", func(w *world, o *Observations) { o.Shunned = set("c") }, true},
		{"and only it", "d", func(w *world, o *Observations) { o.Shunned = set("c") }, false},
		// Without a complete ranking the first voter runs: not b, the
		// lost leader, nor a, shunned.
		{"incomplete ranking: the first voter not shunned", "c", func(w *world, o *Observations) {
			delete(o.Reports, "e")
			o.Shunned = set("a")
		}, true},
		{"incomplete ranking: a shunned first voter", "a", func(w *world, o *Observations) {
			delete(o.Reports, "e")
			o.Shunned = set("a")
		}, false},
		// A backup whose log is behind another voter's would have its
		// forced campaign refused: it is passed over like a shunned one.
		{"a best backup whose log is behind refrains", "c", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {3, 40}, "c": {3, 39}, "d": {3, 40}}
		}, false},
		{"the next best with an up-to-date log runs", "a", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {3, 40}, "c": {3, 39}, "d": {3, 40}}
		}, true},
		{"and only it", "d", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {3, 40}, "c": {3, 39}, "d": {3, 40}}
		}, false},
		{"an older last term is behind a shorter log", "c", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {4, 30}, "c": {3, 39}}
		}, false},
		{"logs alike leave the best backup", "c", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {3, 40}, "c": {3, 40}, "d": {3, 40}}
		}, true},
		{"a log nobody reported is not behind", "c", func(w *world, o *Observations) {
			o.Logs = map[string]LogPos{"a": {3, 40}}
		}, true},
		{"incomplete ranking: the first voter with an up-to-date log", "c", func(w *world, o *Observations) {
			delete(o.Reports, "e")
			o.Logs = map[string]LogPos{"a": {3, 39}, "c": {3, 40}}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.self)
			w.iv.ElectionTimeout, w.iv.Heartbeat = time.Minute, 50*time.Millisecond
			w.leader = "b"
			for i := 0; i < 10; i++ {
				w.step(w.iv.Ping)
			}
			w.heard = w.now
			w.crash("b")
			w.now = w.now.Add(4 * w.iv.Heartbeat)
			w.pong()
			o := w.obs()
			o.CutOff = true
			if tt.setup != nil {
				tt.setup(w, &o)
			}
			d := w.p.Step(w.now, o)
			if d.Campaign != tt.want || d.Campaign && !d.Force {
				t.Fatalf("campaign %v (force %v), want %v forced; notes %q", d.Campaign, d.Force, tt.want, d.Notes)
			}
			if !tt.want {
				return
			}
			w.now = w.now.Add(w.iv.Ping)
			w.pong()
			if d := w.p.Step(w.now, o); d.Campaign {
				t.Fatal("campaigned twice in one silence")
			}
		})
	}
}

// TestPlacerCutOffPreCandidate: a best backup whose own election timer
// fired first (a pre-candidate, still watching the leader it followed in
// its term) cannot run the forced campaign, which raft ignores there: it
// sends its pre-vote again once the others' leases are over (an election
// timeout after the leader's last heartbeat, and the lease spread and a
// tick), and only once, since each pre-vote starts a new count. A follower
// campaigns at once; another member leaves it to the best backup.
func TestPlacerCutOffPreCandidate(t *testing.T) {
	for _, tt := range []struct {
		self         string
		preCandidate bool
		want         []bool // at the cut, when the leases are over, later
	}{
		{"c", true, []bool{false, true, false}},
		{"c", false, []bool{true, false, false}},
		{"d", true, []bool{false, false, false}},
	} {
		w := newWorld(t, tt.self)
		w.iv.ElectionTimeout, w.iv.Heartbeat = 500*time.Millisecond, 50*time.Millisecond
		w.leader = "b"
		for i := 0; i < 10; i++ {
			w.step(w.iv.Ping)
		}
		// The leader's link is cut, its process alive: no ping to it
		// has failed yet (that takes a request timeout).
		w.heard = w.now
		w.now = w.now.Add(4 * w.iv.Heartbeat)
		w.pong()
		leasesOver := w.heard.Add(w.iv.ElectionTimeout + w.iv.Heartbeat)
		var wake time.Time
		for i := range 3 {
			switch i {
			case 1:
				if !wake.IsZero() {
					w.now = wake
				} else {
					w.now = leasesOver.Add(w.iv.ElectionTimeout / 5)
				}
			case 2:
				w.now = w.now.Add(w.iv.Heartbeat)
			}
			w.pong()
			o := w.obs()
			o.CutOff, o.PreCandidate = true, tt.preCandidate
			o.HasLeader = !tt.preCandidate
			d := w.p.Step(w.now, o)
			if d.Campaign != tt.want[i] || d.Campaign && d.Force == tt.preCandidate {
				t.Errorf("%s (pre-candidate %v), step %d: campaign %v (force %v), want %v, forced %v; notes %q",
					tt.self, tt.preCandidate, i, d.Campaign, d.Force, tt.want[i], !tt.preCandidate, d.Notes)
			}
			if i == 0 && tt.self == "c" && tt.preCandidate {
				// Woken when the leases are over, not before.
				if wake = d.Wake; wake.Before(leasesOver) || wake.After(leasesOver.Add(w.iv.ElectionTimeout/5)) {
					t.Errorf("woken at %v after the last heartbeat, want the leases' end, %v", wake.Sub(w.heard), leasesOver.Sub(w.heard))
				}
			}
		}
	}
}
