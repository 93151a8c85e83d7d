package election

import (
	"maps"
	"math"
	"testing"
)

func TestEstimator(t *testing.T) {
	var e Estimator
	if _, ok := e.Value(); ok {
		t.Fatal("Value of an empty Estimator is ok")
	}
	e.Add(math.NaN())
	e.Add(0)
	e.Add(-3)
	e.Add(math.Inf(1))
	e.Add(MaxRTTMillis + 1)
	if _, ok := e.Value(); ok {
		t.Fatal("invalid samples were recorded")
	}

	// A single early outlier does not move the first value.
	e.Add(10)
	e.Add(500)
	if v, _ := e.Value(); v != 10 {
		t.Fatalf("after 10, 500: Value = %v, want 10", v)
	}

	// Steady samples, then one outlier in either direction: no change.
	for range 10 {
		e.Add(10)
	}
	for _, outlier := range []float64{1000, 0.5} {
		e.Add(outlier)
		if v, _ := e.Value(); v != 10 {
			t.Fatalf("after outlier %v: Value = %v, want 10", outlier, v)
		}
		for range 5 {
			e.Add(10)
		}
	}

	// A lasting change comes through, smoothly.
	var prev float64 = 10
	for i := range 30 {
		e.Add(20)
		v, _ := e.Value()
		if v < prev || v > 20 {
			t.Fatalf("sample %d of 20: Value = %v after %v", i, v, prev)
		}
		prev = v
	}
	if prev < 19.9 {
		t.Fatalf("after 30 samples of 20: Value = %v", prev)
	}
}

func TestMaterial(t *testing.T) {
	base := map[string]float64{"a": 10, "b": 100, "c": 4}
	// with and without return modified copies of base.
	with := func(k string, v float64) map[string]float64 {
		m := maps.Clone(base)
		m[k] = v
		return m
	}
	without := func(k string) map[string]float64 {
		m := maps.Clone(base)
		delete(m, k)
		return m
	}
	tests := []struct {
		name string
		prev map[string]float64
		next map[string]float64
		want bool
	}{
		{"same", base, without(""), false},
		{"both empty", nil, map[string]float64{}, false},
		{"first map", nil, base, true},
		{"edge added", base, with("d", 50), true},
		{"edge removed", base, without("b"), true},
		{"edge became invalid", base, with("b", 0), true},
		{"invalid to absent", with("d", math.NaN()), base, false},
		{"absent to invalid", base, with("d", -1), false},
		{"25% and 2.5 ms", base, with("a", 12.5), true},
		{"25% but 1 ms", base, with("c", 5), false},
		{"10 ms but 10%", base, with("b", 110), false},
		{"30 ms and 30% down", base, with("b", 70), true},
		{"exactly 20% and 20 ms", base, with("b", 120), false},
	}
	for _, tt := range tests {
		if got := Material(tt.prev, tt.next); got != tt.want {
			t.Errorf("%s: Material = %v, want %v", tt.name, got, tt.want)
		}
	}

	// The thresholds are parameters.
	strict := Threshold{Relative: 0.05, AbsoluteMs: 0.5}
	if !strict.Material(base, with("c", 5)) {
		t.Error("strict threshold: 4 -> 5 ms is not material")
	}
	loose := Threshold{Relative: 1, AbsoluteMs: 50}
	if loose.Material(base, with("b", 70)) {
		t.Error("loose threshold: 100 -> 70 ms is material")
	}
}
