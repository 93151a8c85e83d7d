package bench

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCeiling runs a tiny reference ceiling and checks that it measured
// something of every kind; the figures themselves are benchmarks' business.
func TestCeiling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Ceiling(ctx, CeilingOptions{Messages: 5, Senders: []int{4}, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Nodes != 5 || r.EntryBytes < 200 || len(r.SignatureCheck) == 0 || r.SignatureCheck.Median() <= 0 {
		t.Errorf("nodes %d, entry %d bytes, signature check %v", r.Nodes, r.EntryBytes, r.SignatureCheck)
	}
	if len(r.Latency) != 5 || r.Latency.Median() <= 0 {
		t.Errorf("latency samples %v", r.Latency)
	}
	if len(r.Runs) != 1 || r.Runs[0].Committed == 0 || r.Runs[0].Rate() <= 0 {
		t.Fatalf("capacity runs %+v", r.Runs)
	}
	t.Logf("entry %d bytes; check %v; latency p50 %v; %d senders: %.0f msg/s, %v CPU a message",
		r.EntryBytes, r.SignatureCheck.Median(), r.Latency.Median(), r.Runs[0].Senders, r.Runs[0].Rate(), r.Runs[0].CPUPerMessage())
}

// TestCeilingRatios checks the arithmetic of the ratio lines on made-up
// results.
func TestCeilingRatios(t *testing.T) {
	c := CeilingResult{
		Nodes: 5, EntryBytes: 471, SignatureCheck: Samples{30 * time.Microsecond},
		Latency: Samples{2 * time.Millisecond},
		Runs: []ThroughputResult{
			{Nodes: 5, Senders: 64, Committed: 3000, Elapsed: time.Second, CPU: 3 * 300 * time.Millisecond, Latency: Samples{40 * time.Millisecond}},
			{Nodes: 5, Senders: 256, Committed: 9000, Elapsed: time.Second, Latency: Samples{2 * time.Second}}, // over the latency bound
		},
	}
	lat := c.LatencyRatio(LatencyResult{Nodes: 5, Everywhere: Samples{5 * time.Millisecond}})
	if lat.Median != 2.5 || lat.Unit != "x" {
		t.Errorf("latency ratio %+v", lat)
	}
	rs := []ThroughputResult{{Nodes: 5, Senders: 64, Processes: true, Committed: 1500, Elapsed: time.Second,
		CPU: 1500 * 900 * time.Microsecond, Latency: Samples{100 * time.Millisecond}}}
	figs := c.CapacityRatio(rs)
	if len(figs) != 2 || figs[0].Median != 0.5 || figs[1].Median != 30 || figs[1].Unit != "checks" {
		t.Errorf("capacity ratio %+v", figs)
	}
	if !strings.Contains(figs[0].Note, "3000 msg/s") {
		t.Errorf("capacity ratio note %q", figs[0].Note)
	}
	// No ceiling measured: no ratio, and nothing JSON cannot hold.
	if f := (CeilingResult{}).LatencyRatio(LatencyResult{Nodes: 5, Everywhere: Samples{time.Millisecond}}); f.Median != 0 {
		t.Errorf("ratio to nothing %+v", f)
	}
	if _, err := json.Marshal(append(figs, c.Figures()...)); err != nil {
		t.Error(err)
	}
}
