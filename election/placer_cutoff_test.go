package election

import (
	"testing"
	"time"
)

// TestPlacerCutOff: once a majority of the voters no longer hear the leader
// (Observations.CutOff), its best backup campaigns at once with the forced
// campaign, once per silence; a member the voters deposed lately (Shunned)
// never does, and the best of the others runs in its place.
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

// TestPlacerBackupRank: the members that could take over from a lost
// leader are ranked as the campaigns name the best backup (c here), then
// the others in the order of the ranking without the leader; dead and
// shunned voters count for nothing, a shunned member comes last, a voter
// whose log this member knows to be behind is not waited for, and without
// a complete ranking the voters go by the order they joined in.
func TestPlacerBackupRank(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world, o *Observations)
		want  map[string]int // member -> rank; a missing member has none
	}{
		{"the best backup first", nil, map[string]int{"c": 0, "a": 1, "d": 2, "e": 3}},
		{"a dead voter counts for nothing", func(w *world, o *Observations) {
			w.crash("c")
			w.now = w.now.Add(10 * w.iv.Ping)
			w.pong()
			o.Peers = w.obs().Peers
		}, map[string]int{"a": 0, "d": 1, "e": 2}},
		{"a shunned member comes last", func(w *world, o *Observations) { o.Shunned = set("c") },
			map[string]int{"a": 0, "d": 1, "e": 2, "c": 3}},
		{"a learner has no rank", func(w *world, o *Observations) {
			for i := range o.Members {
				if o.Members[i].ID == "a" {
					o.Members[i].Voter = false
				}
			}
		}, map[string]int{"c": 0, "d": 1, "e": 2}},
		{"a voter known to be behind counts for nothing", func(w *world, o *Observations) { o.Behind = set("c a") },
			map[string]int{"a": 0, "c": 0, "d": 0, "e": 1}},
		{"incomplete ranking: the order of joining", func(w *world, o *Observations) { delete(o.Reports, "e") },
			map[string]int{"a": 0, "c": 1, "d": 2, "e": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, self := range []string{"a", "c", "d", "e"} {
				w := newWorld(t, self)
				w.iv.ElectionTimeout, w.iv.Heartbeat = time.Minute, 50*time.Millisecond
				// It never stepped while b led: BackupRank goes by the
				// leader it is told of.
				w.crash("b")
				w.leader = ""
				w.now = w.now.Add(4 * w.iv.Heartbeat)
				w.pong()
				o := w.obs()
				if tt.setup != nil {
					tt.setup(w, &o)
				}
				if w.down[self] {
					continue // it ranks nothing
				}
				rank, ok := w.p.BackupRank(w.now, o, "b")
				want, has := tt.want[self]
				if ok != has || ok && rank != want {
					t.Errorf("%s: rank %d (%v), want %d (%v)", self, rank, ok, want, has)
				}
			}
		})
	}
	// A leader, or a member that never followed another, has no rank.
	w := newWorld(t, "a")
	if _, ok := w.p.BackupRank(w.now, w.obs(), "b"); ok {
		t.Error("the leader has a rank")
	}
	w = newWorld(t, "c")
	w.leader = ""
	if _, ok := w.p.BackupRank(w.now, w.obs(), ""); ok {
		t.Error("a member that never followed a leader has a rank")
	}
}
