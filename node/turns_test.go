package node_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestSlowTurnIsCountedAndLogged: when a group's goroutine stands still
// for longer than an election timeout (a slow disk, an overloaded
// machine), the node warns, with the event that took the time and how
// long the turn took, and counts it: what an operator needs to tell why
// the group lost its host.
func TestSlowTurnIsCountedAndLogged(t *testing.T) {
	t.Parallel()
	logs := &testutil.LockedBuffer{}
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
	c.Eventually(t, node.SlowTurnWarnEvery+10*time.Second, "the last warning's hold to lapse", func() bool {
		last, ok := lastWarning(logs.String())
		return !ok || time.Since(last) > node.SlowTurnWarnEvery+time.Second // its time is in whole seconds
	})
	before := slowTurns()
	stood, err := node.StallGroup(c.Node(0), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	// The turn ends after the request's answer, when raft's Ready is
	// done. The request is the turn's event, or waited behind another
	// (drained) when the goroutine was busy as the test asked.
	var warned map[string]any
	c.Eventually(t, 10*time.Second, "node0 to warn of the stalled turn", func() bool {
		warned = warningAtLeast(logs.String(), stood)
		return warned != nil
	})
	if warned["event"] != "request" && warned["slowest_drained"] != "request" {
		t.Fatalf("the warning names neither the event nor the slowest drained one as the request: %v", warned)
	}
	if warned["group"] != c.GroupID {
		t.Fatalf("the warning names group %v, want %s", warned["group"], c.GroupID)
	}
	if got := slowTurns(); got <= before {
		t.Fatalf("node0 warned of a slow turn but counts %d, %d before", got, before)
	}
}

// slowTurnWarnings returns the slow-turn warnings in logs, in order, each
// as its fields.
func slowTurnWarnings(logs string) []map[string]any {
	var ws []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["level"] == "warn" && line["election_timeout"] != nil {
			ws = append(ws, line)
		}
	}
	return ws
}

// warningAtLeast returns the first slow-turn warning in logs of a turn
// that took at least d, or nil.
func warningAtLeast(logs string, d time.Duration) map[string]any {
	for _, w := range slowTurnWarnings(logs) {
		// zerolog writes durations in milliseconds.
		if took, ok := w["took"].(float64); ok && time.Duration(took*float64(time.Millisecond)) >= d {
			return w
		}
	}
	return nil
}

// lastWarning returns the time of the last slow-turn warning in logs.
func lastWarning(logs string) (time.Time, bool) {
	ws := slowTurnWarnings(logs)
	if len(ws) == 0 {
		return time.Time{}, false
	}
	s, _ := ws[len(ws)-1]["time"].(string)
	last, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Now(), true // unreadable: as if just now, so the caller waits
	}
	return last, true
}
