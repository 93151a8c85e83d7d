package election

import (
	"math"
	"slices"
)

// Estimator parameters.
const (
	// EstimatorWindow is how many recent samples the median is taken over.
	// Five samples tolerate two outliers among them.
	EstimatorWindow = 5

	// EstimatorAlpha is the weight of each new median in the smoothed
	// value: about the last 1/alpha = 4 medians dominate it.
	EstimatorAlpha = 0.25
)

// Estimator keeps a smoothed round-trip time to one peer from ping samples.
// Each sample goes into a window of the last [EstimatorWindow] samples; the
// lower median of the window is then blended into an exponentially weighted
// moving average with weight [EstimatorAlpha]. The median makes a single
// delayed or retransmitted ping (an outlier) invisible, and the average
// keeps the value from jumping between samples, so the published latency
// maps, and with them the ranking, stay steady.
//
// The zero Estimator is ready to use. It is not safe for concurrent use: it
// is meant to be owned by the one goroutine that handles a group's pings.
type Estimator struct {
	window [EstimatorWindow]float64
	count  int // samples in window, at most EstimatorWindow
	next   int // index of the slot the next sample overwrites
	value  float64
}

// Add records a sample in milliseconds. Samples that are not valid
// round-trip times (see [ValidRTT]) are ignored.
func (e *Estimator) Add(sampleMs float64) {
	if !ValidRTT(sampleMs) {
		return
	}
	e.window[e.next] = sampleMs
	e.next = (e.next + 1) % EstimatorWindow
	first := e.count == 0
	if e.count < EstimatorWindow {
		e.count++
	}
	// The window fills from index 0, so its first count slots hold the
	// samples, in ring order, which does not matter for a median. Sorting a
	// copy of the array keeps the ring intact without allocating.
	buf := e.window
	s := buf[:e.count]
	slices.Sort(s)
	// The lower median: with an even count, one high outlier (the usual
	// kind, a delayed reply) still lands above it.
	med := s[(len(s)-1)/2]
	if first {
		e.value = med
		return
	}
	// Written as two products and a sum on purpose: it is local state, so
	// whether the compiler fuses it does not matter.
	e.value = EstimatorAlpha*med + (1-EstimatorAlpha)*e.value
}

// Value returns the smoothed round-trip time in milliseconds, and false if
// no valid sample has been added yet.
func (e *Estimator) Value() (float64, bool) {
	if e.count == 0 {
		return 0, false
	}
	return e.value, true
}

// Threshold says how much a latency map must change before it is worth
// publishing again. Each latency map is a log entry every member stores,
// so publishing on every ping would flood the log with noise.
type Threshold struct {
	// Relative is the fraction of the old value an edge must change by.
	Relative float64
	// AbsoluteMs is the number of milliseconds an edge must change by.
	AbsoluteMs float64
}

// DefaultThreshold returns the threshold [Material] uses: 20% and 2 ms. The
// relative part is at the scale of the hysteresis in [DefaultHysteresis],
// so that changes big enough to move leadership are published; the
// absolute part ignores jitter on fast links.
func DefaultThreshold() Threshold {
	return Threshold{Relative: 0.2, AbsoluteMs: 2}
}

// Material reports whether next differs enough from prev, the last
// published latency map, to publish next: see [Threshold.Material] with
// [DefaultThreshold].
func Material(prev, next map[string]float64) bool {
	return DefaultThreshold().Material(prev, next)
}

// Material reports whether next differs enough from prev to publish next.
// That is the case when a peer has a valid RTT (see [ValidRTT]) in one map
// but not the other, or when some peer's RTT changed by more than
// t.Relative times its old value and also by more than t.AbsoluteMs.
// Invalid values count as absent, because [Rank] ignores them.
func (t Threshold) Material(prev, next map[string]float64) bool {
	for peer, o := range prev {
		if ValidRTT(o) && !ValidRTT(next[peer]) {
			return true
		}
	}
	for peer, v := range next {
		if !ValidRTT(v) {
			continue
		}
		o := prev[peer]
		if !ValidRTT(o) {
			return true
		}
		d := math.Abs(v - o)
		if d > t.Relative*o && d > t.AbsoluteMs {
			return true
		}
	}
	return false
}
