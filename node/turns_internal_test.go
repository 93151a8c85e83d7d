package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/demes/demes/crypto"
)

// TestSlowTurnWarningsAreBounded: every turn longer than the election
// timeout is counted, but a group warns at most once per
// slowTurnWarnEvery; the next warning says how many it left out. A turn
// within the election timeout is neither.
func TestSlowTurnWarningsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	g := &group{n: &Node{log: zerolog.New(&buf)}, id: crypto.GroupID{7}, timing: LAN, fig: newGroupFigures()}
	t0 := time.Now()
	turn := func(from, to time.Duration) {
		g.turn = turnWatch{lastWarn: g.turn.lastWarn, unwarned: g.turn.unwarned, what: "request"}
		g.turn.start = t0.Add(from)
		g.turn.eventDone, g.turn.drainDone = g.turn.start, g.turn.start
		g.endTurn(t0.Add(to))
	}
	et := LAN.electionTimeout()
	turn(0, 2*et)                                         // slow: warned
	turn(3*et, 5*et)                                      // slow, within the hold: counted only
	turn(6*et, 6*et+et/2)                                 // not slow
	turn(7*et, 9*et)                                      // slow, within the hold: counted only
	turn(slowTurnWarnEvery+9*et, slowTurnWarnEvery+11*et) // slow, after the hold: warned
	if got := g.fig.slowTurns.Load(); got != 4 {
		t.Errorf("%d slow turns counted, want 4", got)
	}
	var warned []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		warned = append(warned, line)
	}
	if len(warned) != 2 {
		t.Fatalf("%d warnings, want 2:\n%s", len(warned), buf.String())
	}
	if warned[0]["slow_turns_not_logged"] != 0.0 || warned[1]["slow_turns_not_logged"] != 2.0 {
		t.Fatalf("the warnings say %v and %v slow turns not logged, want 0 and 2", warned[0]["slow_turns_not_logged"], warned[1]["slow_turns_not_logged"])
	}
	if warned[1]["took"] != float64(2*et)/float64(time.Millisecond) {
		t.Fatalf("the second warning says the turn took %v ms, want %v", warned[1]["took"], 2*et)
	}
}
