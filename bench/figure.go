package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdict says whether a figure met its target.
type Verdict string

// Verdicts.
const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	// Info marks a figure without a target, shown for context.
	Info Verdict = "-"
)

// Figure is one line of the benchmark table.
type Figure struct {
	Name string `json:"name"`
	// Unit is the unit of Median and P99: "ms", "s", "msg/s", "us/msg",
	// "KiB/node", "changes/min".
	Unit string `json:"unit"`
	// N is how many samples the figure summarises (messages, kills, runs).
	N int `json:"n"`
	// Median is the 50th percentile, or the rate for a rate.
	Median float64 `json:"median"`
	// P99 is the 99th percentile; NaN (null in JSON) for a rate.
	P99     float64 `json:"p99"`
	Target  string  `json:"target,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Note explains a figure in a few words (what was counted, a caveat).
	Note string `json:"note,omitempty"`
}

// MarshalJSON writes a missing P99 as null.
func (f Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	var p99 *float64
	if !math.IsNaN(f.P99) {
		p99 = &f.P99
	}
	return json.Marshal(struct {
		plain
		P99 *float64 `json:"p99"`
	}{plain(f), p99})
}

func verdict(ok bool) Verdict {
	if ok {
		return Pass
	}
	return Fail
}

// Samples is a set of measured durations.
type Samples []time.Duration

// Percentile returns the p-th percentile (0 to 100), by the nearest-rank
// method: the smallest sample at or above p percent of them. It returns 0
// for no samples.
func (s Samples) Percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(Samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	rank := int(math.Ceil(p / 100 * float64(len(c))))
	rank = min(max(rank, 1), len(c))
	return c[rank-1]
}

// Median returns the 50th percentile.
func (s Samples) Median() time.Duration { return s.Percentile(50) }

// P99 returns the 99th percentile.
func (s Samples) P99() time.Duration { return s.Percentile(99) }

// Max returns the largest sample.
func (s Samples) Max() time.Duration { return s.Percentile(100) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func secs(d time.Duration) float64 {
	return float64(d) / float64(time.Second)
}

// durationFigure summarises samples in unit ("ms" or "s") against a target
// on the median and one on the 99th percentile (zero for none).
func durationFigure(name, unit string, s Samples, medTarget, p99Target time.Duration) Figure {
	conv := ms
	if unit == "s" {
		conv = secs
	}
	f := Figure{Name: name, Unit: unit, N: len(s), Median: conv(s.Median()), P99: conv(s.P99()), Verdict: Info}
	var parts []string
	ok := len(s) > 0
	if medTarget > 0 {
		parts = append(parts, fmt.Sprintf("median < %g %s", conv(medTarget), unit))
		ok = ok && s.Median() < medTarget
	}
	if p99Target > 0 {
		parts = append(parts, fmt.Sprintf("p99 < %g %s", conv(p99Target), unit))
		ok = ok && s.P99() < p99Target
	}
	if len(parts) > 0 {
		f.Target = strings.Join(parts, ", ")
		f.Verdict = verdict(ok)
	}
	return f
}

// PrintTable writes the figures as an aligned table.
func PrintTable(w io.Writer, figs []Figure) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tn\tmedian\tp99\ttarget\tresult\tnote")
	for _, f := range figs {
		p99 := "-"
		if !math.IsNaN(f.P99) {
			p99 = fmt.Sprintf("%s %s", num(f.P99), f.Unit)
		}
		target := f.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s %s\t%s\t%s\t%s\t%s\n", f.Name, f.N, num(f.Median), f.Unit, p99, target, f.Verdict, f.Note)
	}
	return tw.Flush()
}

// num prints a figure with three significant digits or so.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func nan() float64 { return math.NaN() }

func numCPU() int { return max(runtime.NumCPU(), 1) }
