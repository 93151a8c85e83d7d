package state

import (
	"testing"

	"github.com/demes/demes/crypto"
)

// TestLatencyRelayedMark: a latency map's relayed mark (RelayedBit) is kept
// with the RTT, read back apart from it, and survives a snapshot.
func TestLatencyRelayedMark(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	w.join(1)
	w.join(2)
	body := &LatencyBody{Peers: [][]byte{key(w.ids[1]), key(w.ids[2])}, RTTus: []uint32{1500 | RelayedBit, 250}}
	if r := w.entry(w.ids[0], crypto.TypeLatencyMap, body); r.Err != nil {
		t.Fatal(r.Err)
	}
	check := func(s *State, when string) {
		t.Helper()
		m := s.Latency[w.ids[0].Public().Sign]
		if ms, relayed := SplitRTT(m[w.ids[1].Public().Sign]); ms != 1.5 || !relayed {
			t.Errorf("%s: the relayed peer reads %v ms, relayed %v; want 1.5, true", when, ms, relayed)
		}
		if ms, relayed := SplitRTT(m[w.ids[2].Public().Sign]); ms != 0.25 || relayed {
			t.Errorf("%s: the direct peer reads %v ms, relayed %v; want 0.25, false", when, ms, relayed)
		}
	}
	check(w.s, "applied")
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(w.s.Group, snap)
	if err != nil {
		t.Fatal(err)
	}
	check(restored, "restored")
}
