package testutil

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// ringLines is how many log lines a test keeps for its failure report: the
// last seconds of a few nodes at debug level, enough to see why a proposal
// did not commit or why an election did not end.
const ringLines = 4000

// Logger is the node logger for test t. With DEMES_TEST_LOG set it writes
// every line at debug level to standard error, as a developer watching one
// test wants. Otherwise it keeps the last lines in memory and prints them
// only if t fails: a failure seen once on a loaded CI machine then comes
// with the nodes' own account of it, where before it came with none.
func Logger(t testing.TB) zerolog.Logger {
	if os.Getenv("DEMES_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: "15:04:05.000"}).
			Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	r := &logRing{lines: make([][]byte, ringLines)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last %d log lines of this test's nodes:\n%s", r.len(), r.text())
		}
	})
	return zerolog.New(r).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

func init() {
	// Placement runs on 100 ms intervals in tests: a log is only readable
	// with milliseconds.
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

// logRing keeps the last len(lines) lines written to it.
type logRing struct {
	mu    sync.Mutex
	lines [][]byte
	next  int
	full  bool
}

// Write keeps a copy of p, one zerolog line, dropping the oldest.
func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = append(r.lines[r.next][:0], p...)
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
	return len(p), nil
}

func (r *logRing) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return len(r.lines)
	}
	return r.next
}

// text is the kept lines, oldest first, as a console log.
func (r *logRing) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	w := zerolog.ConsoleWriter{Out: &sb, NoColor: true, TimeFormat: "15:04:05.000"}
	emit := func(ls [][]byte) {
		for _, l := range ls {
			if len(l) > 0 {
				if _, err := w.Write(l); err != nil {
					sb.Write(bytes.TrimSpace(l))
					sb.WriteByte('\n')
				}
			}
		}
	}
	if r.full {
		emit(r.lines[r.next:])
	}
	emit(r.lines[:r.next])
	return sb.String()
}
