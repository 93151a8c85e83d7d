package election

import (
	"math"
	"slices"
	"testing"
	"time"
)

// relayedAll marks every edge of member m as relayed in m's own report.
func relayedAll(reports map[string]map[string]float64, m string) map[string]map[string]bool {
	out := map[string]map[string]bool{m: {}}
	for peer := range reports[m] {
		out[m][peer] = true
	}
	return out
}

// TestRankRelayed: a member that every other member reaches only through a
// relay ranks by its relayed RTT, but behind a direct member that is near
// as good; far ahead, it still hosts.
func TestRankRelayed(t *testing.T) {
	// c is the center at 10 ms from everyone; a, the best of the rest, is
	// at 12 ms from b, d and e.
	near := links("c-a=10", "c-b=10", "c-d=10", "c-e=10",
		"a-b=12", "a-d=12", "a-e=12", "b-d=20", "b-e=20", "d-e=20")
	in := Input{Members: ids("a b c d e"), Reports: near}
	if r := Rank(in); r.Preference[0] != "c" || len(r.Relayed) != 0 {
		t.Fatalf("all direct: preference %v, relayed %v; want c first, none relayed", r.Preference, r.Relayed)
	}

	in.Relayed = relayedAll(near, "c")
	r := Rank(in)
	if !slices.Equal(r.Preference[:2], ids("a c")) || !r.Relayed["c"] || len(r.Relayed) != 1 {
		t.Fatalf("c relayed: preference %v, relayed %v; want a before c, only c relayed", r.Preference, r.Relayed)
	}
	if want := 10*RelayedFactor + RelayedMillis; math.Abs(r.Score["c"]-want) > 1e-9 {
		t.Errorf("c's score %v, want its mean with the penalty, %v", r.Score["c"], want)
	}

	// Far ahead of every direct member, the relayed member still hosts.
	far := links("c-a=10", "c-b=10", "c-d=10", "c-e=10",
		"a-b=40", "a-d=40", "a-e=40", "b-d=40", "b-e=40", "d-e=40")
	r = Rank(Input{Members: ids("a b c d e"), Reports: far, Relayed: relayedAll(far, "c")})
	if r.Preference[0] != "c" {
		t.Errorf("c relayed but far ahead: preference %v, want c first", r.Preference)
	}
}

// TestRankRelayedOneLiar: one member that claims its edge to another is
// relayed cannot make that member rank as relayed while the member has a
// direct edge to anyone else; the liar's own edge is all it touches.
func TestRankRelayedOneLiar(t *testing.T) {
	reports := links("c-a=10", "c-b=10", "c-d=10", "c-e=10",
		"a-b=12", "a-d=12", "a-e=12", "b-d=20", "b-e=20", "d-e=20")
	r := Rank(Input{Members: ids("a b c d e"), Reports: reports,
		Relayed: map[string]map[string]bool{"a": {"c": true}}})
	if r.Preference[0] != "c" || r.Relayed["c"] {
		t.Fatalf("a says c is relayed: preference %v, relayed %v; want c first and direct", r.Preference, r.Relayed)
	}
}

// TestPlacerPublishesPathChange: a peer that becomes reachable only through
// a relay (or directly again) is worth a new latency map although its RTT
// did not change; the map marks it.
func TestPlacerPublishesPathChange(t *testing.T) {
	w := newWorld(t, "a")
	w.leader = "b"
	step := func(d time.Duration, committed map[string]bool) Decision {
		w.now = w.now.Add(d)
		w.pong()
		o := w.obs()
		o.Relayed = map[string]map[string]bool{"a": committed}
		return w.p.Step(w.now, o)
	}
	if d := step(w.iv.Latency, nil); d.Publish != nil {
		t.Fatalf("published %v, the same as the committed map", d.Publish)
	}
	p := w.peers["d"]
	p.Relayed = true
	w.peers["d"] = p
	d := step(w.iv.Latency, nil)
	if d.Publish == nil || !d.PublishRelayed["d"] || len(d.PublishRelayed) != 1 {
		t.Fatalf("d now relayed: published %v marking %v; want the map with d marked", d.Publish, d.PublishRelayed)
	}
	if d := step(w.iv.Latency, map[string]bool{"d": true}); d.Publish != nil {
		t.Fatalf("published %v again once the mark was committed", d.Publish)
	}
	p.Relayed = false
	w.peers["d"] = p
	if d := step(w.iv.Latency, map[string]bool{"d": true}); d.Publish == nil || len(d.PublishRelayed) != 0 {
		t.Fatalf("d direct again: published %v marking %v; want the map with no mark", d.Publish, d.PublishRelayed)
	}
}
