package node

import (
	"testing"
	"time"
)

// TestSnapshotForWorkDue: a busy group takes a snapshot once applying took
// fifty times what the last one took, at most every half second, and at
// least every snapshotMaxAge however long the last one took, so that one
// slow write does not put the next snapshot off by minutes of applying.
func TestSnapshotForWorkDue(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		work, took, age time.Duration
		want            bool
	}{
		{250 * ms, 5 * ms, time.Second, true},  // fifty times the last
		{249 * ms, 5 * ms, time.Second, false}, // not yet
		{time.Hour, 5 * ms, 400 * ms, false},   // under half a second since the last
		{2800 * ms, 57 * ms, 10 * time.Second, false},
		{2850 * ms, 57 * ms, 10 * time.Second, true},
		{10 * ms, 57 * ms, snapshotMaxAge, true}, // a slow last one: at most this long
		{10 * ms, 57 * ms, snapshotMaxAge - ms, false},
	} {
		if got := snapshotForWorkDue(c.work, c.took, c.age); got != c.want {
			t.Errorf("applying %v since a snapshot that took %v, %v ago: due %v, want %v", c.work, c.took, c.age, got, c.want)
		}
	}
}
