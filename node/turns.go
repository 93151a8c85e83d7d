package node

import (
	"time"

	"github.com/rs/zerolog"
)

// One goroutine runs each group (run.go): every message of the group, every
// heartbeat and every answer to the host waits while it handles one event
// and writes, sends and applies what raft made of it. A turn longer than
// the group's election timeout can cost the group its host: the followers
// hear no heartbeat, or the host no answer, for that long. So a node says
// when its turns are that slow, and where the time went, as etcd warns of
// a slow apply or fdatasync: the event, the events waiting behind it (and
// the slowest of them), and raft's Ready (writing, sending, applying); the
// durable writes among all of these (disk_took, which includes waiting for
// another group's write); and, for a tick, how long it waited for the
// goroutine. A slow disk shows as disk time. A machine too busy to run the
// goroutine shows as time in every part, and as ticks that waited.

// slowTurnWarnEvery bounds the warnings to one per group in this time;
// the next says how many slow turns it left out meanwhile.
const slowTurnWarnEvery = 10 * time.Second

// turnWatch times the turns of a group's goroutine. The goroutine owns it.
type turnWatch struct {
	// what names the turn's event; start is when the goroutine took it,
	// eventDone when its handler returned, drainDone when the events
	// waiting behind it (drained of them) were handled too.
	what                        string
	start, eventDone, drainDone time.Time
	drained                     int
	// slowest is the slowest of the drained events, slowestTook its time;
	// tickWaited how long a tick waited for the goroutine to take it.
	slowest                 string
	slowestTook, tickWaited time.Duration
	// disk is the time this turn spent in durable writes (persist), in
	// writes of them.
	disk   time.Duration
	writes int
	// lastWarn is when the last warning was logged, unwarned the slow
	// turns since then that were counted but not logged.
	lastWarn time.Time
	unwarned int
}

// beginTurn starts timing a turn of the group's goroutine for the event
// what.
func (g *group) beginTurn(what string) {
	t := &g.turn
	t.what, t.start = what, time.Now()
	t.disk, t.writes, t.drained = 0, 0, 0
	t.slowest, t.slowestTook, t.tickWaited = "", 0, 0
}

// noteDrained notes a drained event what that took d.
func (g *group) noteDrained(what string, d time.Duration) {
	if d > g.turn.slowestTook {
		g.turn.slowest, g.turn.slowestTook = what, d
	}
}

// noteWrite adds one durable write of d to the current turn.
func (g *group) noteWrite(d time.Duration) {
	g.turn.disk += d
	g.turn.writes++
}

// endTurn ends the current turn at now: a turn longer than the group's
// election timeout is counted and, at most once per slowTurnWarnEvery,
// logged with where its time went.
func (g *group) endTurn(now time.Time) {
	t := &g.turn
	took := now.Sub(t.start)
	if t.start.IsZero() || took <= g.timing.electionTimeout() {
		return
	}
	// A turn that ended in an error may not have reached its parts.
	if t.eventDone.Before(t.start) {
		t.eventDone = now
	}
	if t.drainDone.Before(t.eventDone) {
		t.drainDone = t.eventDone
	}
	// Counted after the warning, so that whoever sees the count finds the
	// warning logged.
	defer g.fig.slowTurns.Add(1)
	if !t.lastWarn.IsZero() && now.Sub(t.lastWarn) < slowTurnWarnEvery {
		t.unwarned++
		return
	}
	ev := g.n.log.Warn()
	g.slowTurnFields(ev, took).Int("slow_turns_not_logged", t.unwarned).
		Msg("the group's goroutine took longer than an election timeout for one turn: every message of the group waited, and the group may lose its host; a slow disk shows as disk time, an overloaded machine as time in every part")
	t.lastWarn, t.unwarned = now, 0
}

// slowTurnFields adds the current turn's parts to ev.
func (g *group) slowTurnFields(ev *zerolog.Event, took time.Duration) *zerolog.Event {
	t := &g.turn
	return ev.Str("group", g.id.String()).Dur("took", took).
		Dur("election_timeout", g.timing.electionTimeout()).
		Str("event", t.what).Dur("event_took", t.eventDone.Sub(t.start)).
		Int("drained", t.drained).Dur("drain_took", t.drainDone.Sub(t.eventDone)).
		Str("slowest_drained", t.slowest).Dur("slowest_drained_took", t.slowestTook).
		Dur("ready_took", t.start.Add(took).Sub(t.drainDone)).
		Dur("disk_took", t.disk).Int("disk_writes", t.writes).
		Dur("tick_waited", t.tickWaited)
}
