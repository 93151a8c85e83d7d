package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s Samples
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := s.Percentile(c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	// With 20 samples the 99th percentile is the largest (nearest rank).
	if got := s[:20].P99(); got != 100*time.Millisecond {
		t.Errorf("p99 of 20 = %v", got)
	}
	if got := (Samples{}).Median(); got != 0 {
		t.Errorf("median of nothing = %v", got)
	}
	if s[0] != 100*time.Millisecond {
		t.Error("Percentile reordered its receiver")
	}
}

func TestDurationFigure(t *testing.T) {
	s := Samples{600 * time.Millisecond, 650 * time.Millisecond, 1600 * time.Millisecond}
	f := durationFigure("failover", "s", s, 700*time.Millisecond, 1500*time.Millisecond)
	if f.Median != 0.65 || f.P99 != 1.6 || f.Verdict != Fail || f.Target != "median < 0.7 s, p99 < 1.5 s" {
		t.Errorf("figure = %+v", f)
	}
	if f := durationFigure("x", "ms", s, 0, 0); f.Verdict != Info || f.Target != "" || f.Median != 650 {
		t.Errorf("figure without target = %+v", f)
	}
	if f := durationFigure("x", "ms", nil, time.Second, 0); f.Verdict != Fail {
		t.Errorf("no samples passed: %+v", f)
	}
}

func TestFigureOutput(t *testing.T) {
	figs := []Figure{
		{Name: "rate", Unit: "msg/s", N: 10, Median: 2500, P99: math.NaN(), Target: ">= 2000 msg/s", Verdict: Pass},
		{Name: "latency", Unit: "ms", N: 3, Median: 3.456, P99: 12.3, Verdict: Info},
	}
	b, err := json.Marshal(figs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"p99":null`) || !strings.Contains(string(b), `"p99":12.3`) {
		t.Errorf("json: %s", b)
	}
	var sb strings.Builder
	if err := PrintTable(&sb, figs); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{"figure", "2500 msg/s", "3.46 ms", "12.3 ms", "pass", ">= 2000 msg/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestMatrix(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		for _, close := range []bool{false, true} {
			m := newMatrix(5, newRand(seed), close)
			if m.opt == 0 || m.opt == m.backup {
				t.Fatalf("seed %d: opt %d backup %d", seed, m.opt, m.backup)
			}
			mean := func(i int, dead int) float64 {
				sum, n := 0.0, 0
				for j := range m.oneWay {
					if j != i && j != dead {
						sum += float64(m.oneWay[i][j])
						n++
					}
				}
				return sum / float64(n)
			}
			for i := range m.oneWay {
				if m.oneWay[i][i] != 0 {
					t.Fatalf("seed %d: self latency", seed)
				}
				for j := range m.oneWay {
					if m.oneWay[i][j] != m.oneWay[j][i] {
						t.Fatalf("seed %d: not symmetric", seed)
					}
				}
				if i != m.opt && mean(i, -1) <= mean(m.opt, -1) {
					t.Errorf("seed %d close %v: %d is as central as the hub", seed, close, i)
				}
				if i != m.opt && i != m.backup && mean(i, m.opt) <= mean(m.backup, m.opt) {
					t.Errorf("seed %d close %v: %d is as central as the second hub", seed, close, i)
				}
			}
		}
	}
}

func TestCapacity(t *testing.T) {
	run := func(senders, committed int, p99 time.Duration, processes bool) ThroughputResult {
		lat := make(Samples, 100)
		for i := range lat {
			lat[i] = p99 / 2
		}
		lat[98], lat[99] = p99, p99
		return ThroughputResult{Nodes: 5, Senders: senders, Processes: processes, Committed: committed, Elapsed: 10 * time.Second, Latency: lat}
	}
	f := Capacity([]ThroughputResult{run(64, 17000, 80*time.Millisecond, true), run(256, 26000, 250*time.Millisecond, true), run(1024, 30000, 2*time.Second, true)})
	if f.Median != 2600 || f.N != 26000 || f.Verdict != Pass || f.Target != ">= 2000 msg/s" {
		t.Errorf("capacity = %+v, want the 256-sender run's 2600 msg/s, a pass (the 1024-sender run waited too long)", f)
	}
	if !strings.Contains(f.Note, "64, 256, 1024 senders") || !strings.HasSuffix(f.Note, ": 256 senders") {
		t.Errorf("note = %q", f.Note)
	}
	f = Capacity([]ThroughputResult{run(64, 17000, 80*time.Millisecond, true)})
	if f.Median != 1700 || f.Verdict != Fail {
		t.Errorf("capacity of one run of 1700 msg/s = %+v, want a fail", f)
	}
	f = Capacity([]ThroughputResult{run(64, 30000, 3*time.Second, true)})
	if f.Median != 0 || f.Verdict != Fail {
		t.Errorf("capacity with every run over the latency bound = %+v, want 0, a fail", f)
	}
	f = Capacity([]ThroughputResult{run(64, 30000, 80*time.Millisecond, false)})
	if f.Verdict != Info || f.Target != "" || !strings.Contains(f.Name, "in one process") {
		t.Errorf("capacity in one process = %+v, want no target", f)
	}
}
