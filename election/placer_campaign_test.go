package election

import (
	"testing"
	"time"
)

// TestPlacerCampaign: a follower whose ping to its leader failed campaigns
// once raft's election timeout has passed since, if it is the best backup,
// and only then.
func TestPlacerCampaign(t *testing.T) {
	const et = 500 * time.Millisecond
	tests := []struct {
		name  string
		self  string
		setup func(w *world)
		want  bool
	}{
		{"the best backup campaigns", "c", nil, true},
		{"another member leaves it to raft", "d", nil, false},
		{"raft has moved on", "c", func(w *world) { w.leader = "" }, false},
		{"the leader answers again", "c", func(w *world) { delete(w.down, "b") }, false},
		{"not a voter", "c", func(w *world) { w.voters["c"] = false }, false},
		{"turned off", "c", func(w *world) { w.iv.ElectionTimeout = 0 }, false},
		{"incomplete ranking", "c", func(w *world) { delete(w.reports, "e") }, false},
		// Another member's election is under way, and c voted for it.
		{"voted for another", "c", func(w *world) { w.voted = w.now }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.self)
			w.iv.ElectionTimeout = et
			w.leader = "b"
			for i := 0; i < 10; i++ {
				w.step(w.iv.Ping)
			}
			w.heard = w.now // the last heartbeat
			w.crash("b")
			w.step(w.iv.Ping) // the first failed ping
			failed := w.now
			if tt.setup != nil {
				tt.setup(w)
			}
			var at, wake time.Time
			for i := 0; i < 2000 && at.IsZero(); i++ {
				w.now = w.now.Add(time.Millisecond)
				if w.now.Sub(failed)%w.iv.Ping != 0 && (wake.IsZero() || w.now.Before(wake)) {
					continue // between ticks, step only when woken
				}
				w.pong()
				d := w.p.Step(w.now, w.obs())
				wake = d.Wake
				if d.Campaign {
					at = w.now
				}
			}
			if got := !at.IsZero(); got != tt.want {
				t.Fatalf("campaign %v at %v after the failed ping, want %v", got, at.Sub(failed), tt.want)
			}
			if !tt.want {
				return
			}
			// Timed from the last heartbeat, which came before the
			// failed ping: an election timeout after it, and the
			// heartbeat's longer way to the farthest voter (b is 5 ms
			// from everyone: no longer) and a fiftieth of the timeout.
			if want := et + et/50; at.Sub(w.heard) != want {
				t.Fatalf("campaign %v after the last heartbeat and %v after the failed ping, want %v after the heartbeat", at.Sub(w.heard), at.Sub(failed), want)
			}
			for i := 0; i < 10; i++ {
				if d := w.step(w.iv.Ping); d.Campaign {
					t.Fatal("campaigned twice")
				}
			}
		})
	}
}

// TestPlacerCampaignGone: when the leader's address refuses connections
// (its process is gone), the best backup does not wait out the others'
// leases: it campaigns with raft's transfer campaign, which they join at
// once, two heartbeats after it last heard from the leader. A refusal alone
// (the leader answered since) or a silent failure (a cut link) does not.
func TestPlacerCampaignGone(t *testing.T) {
	const et, hb = 500 * time.Millisecond, 50 * time.Millisecond
	tests := []struct {
		name  string
		self  string
		setup func(w *world)
		force bool
		after time.Duration // after the last heartbeat
	}{
		{"the best backup campaigns at once", "c", nil, true, 2 * hb},
		{"another member leaves it to the best backup", "d", nil, false, 0},
		// Without a complete ranking (e has published nothing), the
		// voter that joined first runs, and it alone: a is first.
		{"incomplete ranking: the first voter", "a", func(w *world) { delete(w.reports, "e") }, true, 2 * hb},
		{"incomplete ranking: not the first voter", "c", func(w *world) { delete(w.reports, "e") }, false, 0},
		// A cut link: no refusal, the ordinary campaign after the leases.
		{"no refusal", "c", func(w *world) { w.gone["b"] = false }, false, et + et/50},
		// The leader answered after the refusal: it lives, and only the
		// ordinary campaign remains.
		{"heard since", "c", func(w *world) { w.heard = w.now.Add(time.Hour) }, false, et + et/50},
		{"not a voter", "c", func(w *world) { w.voters["c"] = false }, false, 0},
		{"voted for another", "c", func(w *world) { w.voted = w.now.Add(time.Millisecond) }, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.self)
			w.iv.ElectionTimeout, w.iv.Heartbeat = et, hb
			w.leader = "b"
			for i := 0; i < 10; i++ {
				w.step(w.iv.Ping)
			}
			w.heard = w.now // the last heartbeat
			last := w.heard
			w.crash("b")
			w.gone["b"] = true
			if tt.setup != nil {
				tt.setup(w)
			}
			var at time.Time
			var force bool
			// Stepped every millisecond, as wakes and refusals may come
			// at any time; pongs (and refusals) only with the pings.
			for i := 0; i < 2000 && at.IsZero(); i++ {
				if i%int(w.iv.Ping/time.Millisecond) == 0 {
					w.pong()
				}
				d := w.p.Step(w.now, w.obs())
				if d.Campaign {
					at, force = w.now, d.Force
				}
				w.now = w.now.Add(time.Millisecond)
			}
			if tt.after == 0 {
				if !at.IsZero() {
					t.Fatalf("campaigned %v after the last heartbeat (force %v), want no campaign", at.Sub(last), force)
				}
				return
			}
			if at.IsZero() || force != tt.force || at.Sub(last) != tt.after {
				t.Fatalf("campaign at %v after the last heartbeat, force %v; want %v, force %v", at.Sub(last), force, tt.after, tt.force)
			}
		})
	}
}

// TestPlacerCampaignSpread: the campaign waits the longer for a voter that
// the leader's heartbeats took longer to reach, so that it too has stopped
// refusing votes.
func TestPlacerCampaignSpread(t *testing.T) {
	const et = 500 * time.Millisecond
	tests := []struct {
		name  string
		setup func(w *world)
		want  time.Duration // after the last heartbeat
	}{
		{"every voter as close to the leader", nil, et + et/50},
		// e is 45 ms (RTT) from b, c 5 ms: e heard the heartbeat 20 ms
		// later.
		{"a farther voter", func(w *world) { w.link("b", "e", 45); w.commitMaps() }, et + 20*time.Millisecond + et/50},
		// Without b's edge to e nothing is known: a tick.
		{"an unknown distance", func(w *world) { delete(w.reports["e"], "b") }, et + et/10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "c")
			if tt.setup != nil {
				tt.setup(w)
			}
			w.iv.ElectionTimeout = et
			w.leader = "b"
			w.step(w.iv.Ping)
			w.heard = w.now
			w.crash("b")
			d := w.step(w.iv.Ping)
			if d.Wake.Sub(w.heard) != tt.want {
				t.Fatalf("wake %v after the last heartbeat, want %v", d.Wake.Sub(w.heard), tt.want)
			}
			w.now = d.Wake
			w.pong()
			if d = w.p.Step(w.now, w.obs()); !d.Campaign {
				t.Fatal("no campaign when woken")
			}
		})
	}
}
