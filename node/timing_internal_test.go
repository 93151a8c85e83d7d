package node

import (
	"testing"
	"time"
)

// TestFitTiming: the configured profile is the floor; beyond it the ticks
// make the election timeout three of the slowest voter's round trips, in
// steps of 10 ms, up to maxTick.
func TestFitTiming(t *testing.T) {
	for _, c := range []struct {
		rtt  time.Duration
		tick time.Duration
	}{
		{0, LAN.Tick},
		{160 * time.Millisecond, LAN.Tick}, // 3 round trips: 480 ms, under 10 ticks of 50 ms
		{200 * time.Millisecond, 60 * time.Millisecond},
		{283 * time.Millisecond, 90 * time.Millisecond},
		{640 * time.Millisecond, 200 * time.Millisecond},
		{time.Minute, maxTick},
	} {
		got := fitTiming(LAN, c.rtt)
		if got.Tick != c.tick || got.ElectionTicks != LAN.ElectionTicks || got.HeartbeatTicks != LAN.HeartbeatTicks {
			t.Errorf("fitTiming(LAN, %v) = %+v, want ticks of %v", c.rtt, got, c.tick)
		}
		if c.rtt > 0 && c.tick < maxTick && got.electionTimeout() < electionRTTs*c.rtt {
			t.Errorf("at %v the election timeout %v is under %d round trips", c.rtt, got.electionTimeout(), electionRTTs)
		}
	}
	slow := Timing{Tick: 200 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 2}
	if got := fitTiming(slow, 300*time.Millisecond); got != slow {
		t.Errorf("a slower configured profile is the floor: got %+v", got)
	}
}
