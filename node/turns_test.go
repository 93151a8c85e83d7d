package node_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// syncBuffer is a bytes.Buffer that a node's goroutines may write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSlowTurnIsCountedAndLogged: when a group's goroutine stands still
// for longer than an election timeout (a slow disk, an overloaded
// machine), the node counts it and warns, once, with the event the turn
// handled and how long it took: what an operator needs to tell why the
// group lost its host.
func TestSlowTurnIsCountedAndLogged(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	c := newClusterWith(t, 2, 311, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(0).Tweak = func(cfg *node.Config) {
			cfg.Logger = zerolog.New(logs).Level(zerolog.WarnLevel).With().Timestamp().Logger()
		}
	})
	c.form()
	c.send(1, "before", 20*time.Second)
	slowTurns := func() uint64 {
		for _, g := range c.Node(0).Figures().Groups {
			if g.GroupID == c.GroupID {
				return g.SlowTurns
			}
		}
		t.Fatalf("node0 has no figures for the group")
		return 0
	}
	// A turn of the group's forming may have been slow too on a loaded
	// machine: its warning would hold back the next for a while.
	if last, ok := lastWarning(logs.String()); ok {
		c.Eventually(t, node.SlowTurnWarnEvery+5*time.Second, "the last warning's hold to lapse", func() bool {
			return time.Since(last) > node.SlowTurnWarnEvery+time.Second // its time is in whole seconds
		})
	}
	before := slowTurns()
	stood, err := node.StallGroup(c.Node(0), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	// The turn ends after the request's answer, when raft's Ready is done.
	c.Eventually(t, 10*time.Second, "node0 counts the slow turn", func() bool { return slowTurns() > before })
	var warned []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["level"] == "warn" && line["event"] == "request" {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 {
		t.Fatalf("node0 logged %d warnings of a slow request turn, want 1; its warnings:\n%s", len(warned), logs.String())
	}
	took, ok := warned[0]["took"].(float64) // zerolog writes durations in ms
	if !ok || time.Duration(took*float64(time.Millisecond)) < stood {
		t.Fatalf("the warning says the turn took %v ms, want at least %v: %v", warned[0]["took"], stood, warned[0])
	}
	if warned[0]["group"] != c.GroupID {
		t.Fatalf("the warning names group %v, want %s", warned[0]["group"], c.GroupID)
	}
}

// lastWarning returns the time of the last slow-turn warning in logs.
func lastWarning(logs string) (time.Time, bool) {
	var last time.Time
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Level string    `json:"level"`
			Time  time.Time `json:"time"`
			Event string    `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "warn" && line.Event != "" {
			last = line.Time
		}
	}
	return last, !last.IsZero()
}
