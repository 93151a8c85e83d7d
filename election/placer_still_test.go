package election

import (
	"testing"
	"time"
)

// The tests of the waits that keep placement from acting on a ranking that
// is still changing (see Placer.ready) or on a near tie after a loss.

// TestPlacerWaitsForAStillRanking: while a latency change spreads, the maps
// arrive over several latency intervals, and a member whose edges changed
// first can top the ranking for longer than two of them. The leader hands
// over once, to the member that is best once the maps stand still, not to
// the intermediate top: here e tops the ranking for four seconds, clearly
// ahead of everyone, and d, whose edges shrink a step per second, ends up
// best by less than the hysteresis, so that a host placed on e would stay
// there.
func TestPlacerWaitsForAStillRanking(t *testing.T) {
	for _, tt := range []struct {
		name    string
		settled bool
	}{{"settled leader", true}, {"elected leader", false}} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "a")
			if tt.settled {
				w.xfer = w.term
			}
			// a is the hub; everyone else is 30 ms apart.
			for _, x := range w.ids {
				for _, y := range w.ids {
					if x < y {
						w.link(x, y, map[bool]float64{true: 5, false: 30}[x == "a"])
					}
				}
			}
			w.commitMaps()
			if _, to := w.run(3 * time.Second); to != "" {
				t.Fatalf("the hub handed over to %s", to)
			}
			// The move: a goes 40 ms from everyone, e comes 12 ms from b and
			// c and 10 from d at once; d's links to b and c shrink from 22 ms
			// (the path through e) to 10 in four steps of a second, each a
			// change of the maps. Finally d's mean is 17.5 ms and e's 18.5
			// (d is better by 5%); until d's last step e is first, for
			// less than standLimit.
			for _, x := range ids("b c d e") {
				w.link("a", x, 40)
			}
			w.link("e", "b", 12)
			w.link("e", "c", 12)
			w.link("e", "d", 10)
			moved := w.now
			to, at := "", time.Duration(0)
			for w.now.Sub(moved) < 15*time.Second && to == "" {
				if k := w.now.Sub(moved) / time.Second; k <= 4 {
					w.link("d", "b", 22-3*float64(k))
					w.link("d", "c", 22-3*float64(k))
				}
				w.commitMaps()
				to = w.step(w.iv.Ping).TransferTo
				at = w.now.Sub(moved)
			}
			if to != "d" {
				t.Fatalf("transfer to %q after %v, want d", to, at)
			}
			// The maps changed last at 4 s; the ranking has stood still
			// for long enough 10 pings and two latency intervals later.
			if still := 4*time.Second + stillFor(w.iv); at < still {
				t.Fatalf("transfer to d after %v, before the ranking stood still (%v)", at, still)
			}
		})
	}
}

// TestPlacerMapsNeverStill: when some member's map keeps changing, a
// transfer target that stands is acted on anyway, once it has stood for
// standLimit.
func TestPlacerMapsNeverStill(t *testing.T) {
	w := newWorld(t, "a")
	w.xfer = w.term // settled: b is better by far more than the hysteresis
	start := w.now
	var at time.Duration
	for w.now.Sub(start) < 15*time.Second && at == 0 {
		// b's link to e swings between 5 and 6 ms every ping interval:
		// the scores change at every step, the order does not.
		w.link("b", "e", 5+float64(w.now.Sub(start)/w.iv.Ping%2))
		w.commitMaps()
		if d := w.step(w.iv.Ping); d.TransferTo != "" {
			if d.TransferTo != "b" {
				t.Fatalf("transfer to %s, want b", d.TransferTo)
			}
			at = w.now.Sub(start)
		}
	}
	if limit := standLimit(w.iv); at < limit || at > limit+time.Second {
		t.Fatalf("transfer after %v, want it once b has stood for %v", at, limit)
	}
}

// TestPlacerNoiseOutlastsTheSearch: an elected leader whose complete
// rankings keep changing their top for longer than its search (a loaded
// machine, a change still spreading) does not give up and settle where it
// is: hysteresis would then keep it there, b being better by less than the
// hysteresis. Once the maps stand still it hands over to the top.
func TestPlacerNoiseOutlastsTheSearch(t *testing.T) {
	w := newWorld(t, "a")
	// a is a second hub, 6 ms from everyone but b: a's mean is 5.75 ms,
	// b's 5 (better by 13%). In the noise b is 7 ms from c, d and e
	// every other 1.5 s, which puts a first (b's mean 6.5).
	for _, x := range ids("c d e") {
		w.link("a", x, 6)
	}
	start := w.now
	noisy := 15 * time.Second
	to, at := "", time.Duration(0)
	for w.now.Sub(start) < noisy+10*time.Second && to == "" {
		ms := 5.0
		if el := w.now.Sub(start); el < noisy && el/(1500*time.Millisecond)%2 == 1 {
			ms = 7
		}
		for _, x := range ids("c d e") {
			w.link("b", x, ms)
		}
		w.commitMaps()
		to = w.step(w.iv.Ping).TransferTo
		at = w.now.Sub(start)
	}
	if to != "b" || at < noisy+stillFor(w.iv)-3*time.Second/2 {
		t.Fatalf("transfer to %q after %v, want b once the maps stood still after %v of noise", to, at, noisy)
	}
}

// TestPlacerAfterLossNearTie: after a loss, the maps measured before it
// pick a top at once only when it is clear of the others by the hysteresis.
// Here d is within it of c: the new leader waits, as after a start, for the
// survivors' maps to stand still, and then hands over to the top.
func TestPlacerAfterLossNearTie(t *testing.T) {
	w := newWorld(t, "e")
	w.link("d", "a", 11) // without b: c 10 ms from everyone, d 10.7 on average
	w.link("d", "e", 11)
	w.commitMaps()
	w.leader = "b"
	for i := 0; i < 10; i++ {
		w.step(w.iv.Ping)
	}
	w.crash("b")
	w.now = w.now.Add(700 * time.Millisecond) // raft's election
	w.leader, w.term = "e", 2
	if d := w.step(w.iv.Ping); d.TransferTo != "" || contains(d.Notes, "placement: this leader is the top candidate; hysteresis from now on") {
		t.Fatalf("first step: transfer to %q, notes %q; want neither", d.TransferTo, d.Notes)
	}
	w.commitMaps() // the survivors publish without b
	at, to := w.run(5 * time.Second)
	if to != "c" || at < stillFor(w.iv) {
		t.Fatalf("transfer to %q after %v, want c once the ranking has stood still", to, at)
	}
}
