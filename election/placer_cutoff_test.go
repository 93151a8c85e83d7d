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
