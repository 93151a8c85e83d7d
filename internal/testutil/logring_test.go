package testutil

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestLogRingKeepsTheLastLinesInOrder: a failure report shows the newest
// lines, oldest first, and none that the ring dropped.
func TestLogRingKeepsTheLastLinesInOrder(t *testing.T) {
	r := &logRing{lines: make([][]byte, 3)}
	l := zerolog.New(r)
	for k := 0; k < 5; k++ {
		l.Info().Msg(fmt.Sprint("line ", k))
	}
	got := r.text()
	if r.len() != 3 || strings.Contains(got, "line 1") {
		t.Fatalf("kept %d lines:\n%s", r.len(), got)
	}
	if a, b, c := strings.Index(got, "line 2"), strings.Index(got, "line 3"), strings.Index(got, "line 4"); a < 0 || !(a < b && b < c) {
		t.Fatalf("lines out of order:\n%s", got)
	}
}
