package chaos

import (
	"fmt"
	"math/rand"
	"strings"
	"time"

	"github.com/demes/demes/node/simnet"
)

// Kind is what one step of a schedule does.
type Kind int

// The kinds of step. Steps that name "the host" or "a live node" are
// resolved when they run (who leads depends on timing); everything else,
// and the random number that resolves them ([Step.Pick]), is in the schedule.
const (
	// Send sends Count messages at once from a live member (picked), each
	// waiting up to Wait for its commit, while the schedule goes on.
	Send Kind = iota + 1
	// KillHost crashes the current host (or, with no host known, a live
	// node picked).
	KillHost
	// CrashFollower crashes a live node that is not the host (picked).
	CrashFollower
	// Restart restarts a crashed node (picked) from its store, on the same
	// address.
	Restart
	// Partition replaces the cuts in place with a partition: every link
	// between Side and the other nodes is cut, both ways.
	Partition
	// IsolateHost replaces the cuts in place by cutting the current host
	// from everyone, both ways.
	IsolateHost
	// CutHost adds one-way cuts: with Pick even the host hears nobody,
	// with Pick odd nobody hears the host.
	CutHost
	// CutOneWay adds a cut of the link From -> To (an asymmetric partition).
	CutOneWay
	// Degrade sets the link From -> To to Link (delay, loss, duplicates).
	Degrade
	// DegradeAll sets every link not degraded otherwise to Link.
	DegradeAll
	// Heal removes every cut and restores every link.
	Heal
	// RestartAll crashes every live node at once and restarts them all from
	// their stores, as after a power cut.
	RestartAll
	// Join (churn schedules only): a live member (picked) invites a spare
	// node that is in no group yet, which joins, while the schedule goes
	// on.
	Join
	// Leave (churn schedules only): a live member other than node0
	// (picked) leaves the group, while the schedule goes on.
	Leave
	// Away (churn schedules only): a live member that is not the host
	// (picked) crashes and stays down until the schedule ends: it must
	// catch up after whatever membership changed meanwhile.
	Away
	// Backup (restore schedules only) takes a backup of a live member's
	// store (picked) while it runs, as demes backup does.
	Backup
	// Restore (restore schedules only) crashes a live member that has a
	// backup (picked; or, with none, picks a crashed one that has) and
	// puts its latest backup back as its store, marked restored as demes
	// restore marks it: it comes back with the next Restart, older than
	// what it acknowledged and voted for.
	Restore
)

var kindNames = map[Kind]string{
	Send: "send", KillHost: "kill-host", CrashFollower: "crash-follower", Restart: "restart",
	Partition: "partition", IsolateHost: "isolate-host", CutHost: "cut-host", CutOneWay: "cut-one-way",
	Degrade: "degrade", DegradeAll: "degrade-all", Heal: "heal", RestartAll: "restart-all",
	Join: "join", Leave: "leave", Away: "away", Backup: "backup", Restore: "restore",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Step is one event of a fault schedule.
type Step struct {
	Kind Kind
	// Pick resolves the choices made at run time: which live node sends,
	// which follower crashes, which crashed node restarts.
	Pick     int
	Side     []int // Partition: node indices on one side
	From, To int   // CutOneWay, Degrade: node indices
	Link     simnet.LinkConfig
	Count    int           // Send: messages sent at once
	Wait     time.Duration // Send: how long each send waits for its commit
	Pause    time.Duration // time between this step and the next
}

func (s Step) String() string {
	var b strings.Builder
	b.WriteString(s.Kind.String())
	switch s.Kind {
	case Send:
		fmt.Fprintf(&b, " x%d pick=%d wait=%v", s.Count, s.Pick, s.Wait)
	case KillHost, CrashFollower, Restart, Join, Leave, Away, Backup, Restore:
		fmt.Fprintf(&b, " pick=%d", s.Pick)
	case Partition:
		fmt.Fprintf(&b, " side=%v", s.Side)
	case CutHost:
		if s.Pick%2 == 0 {
			b.WriteString(" inbound")
		} else {
			b.WriteString(" outbound")
		}
	case CutOneWay:
		fmt.Fprintf(&b, " %d->%d", s.From, s.To)
	case Degrade:
		fmt.Fprintf(&b, " %d->%d %s", s.From, s.To, linkString(s.Link))
	case DegradeAll:
		fmt.Fprintf(&b, " %s", linkString(s.Link))
	}
	fmt.Fprintf(&b, " then %v", s.Pause)
	return b.String()
}

func linkString(c simnet.LinkConfig) string {
	return fmt.Sprintf("latency=%v drop=%.2f dup=%.2f", c.Latency, c.Drop, c.Dup)
}

// FormatSchedule is a schedule one step per line, numbered, for logs.
func FormatSchedule(steps []Step) string {
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "%3d %s\n", i, s)
	}
	return b.String()
}

// Schedule returns the fault schedule of o.Seed: a pure function of the
// options (seed, nodes, steps, max down), so a seed always replays the same
// schedule. At most o.MaxDown nodes are crashed at any time.
func Schedule(o Options) []Step {
	o = o.withDefaults()
	rng := rand.New(rand.NewSource(o.Seed))
	down, away := 0, false
	steps := make([]Step, 0, o.Steps)
	for len(steps) < o.Steps {
		s := Step{Pick: rng.Intn(1 << 16), Pause: time.Duration(rng.Intn(200)) * time.Millisecond}
		if o.Churn {
			// One more draw, in churn schedules only, so that the
			// schedules without churn stay what they were.
			switch c := rng.Intn(100); {
			case c < 8:
				s.Kind = Join
			case c < 13:
				s.Kind = Leave
			case c < 16 && !away && down < o.MaxDown:
				// Early in the schedule, so that the member is away
				// for most of it.
				if len(steps) < o.Steps/3 {
					s.Kind = Away
					away = true
					down++
				}
			}
			if s.Kind != 0 {
				steps = append(steps, s)
				continue
			}
		}
		if o.Restore {
			// As for churn: a draw of its own, in restore schedules
			// only.
			switch c := rng.Intn(100); {
			case c < 8:
				s.Kind = Backup
			case c < 14 && down < o.MaxDown:
				s.Kind = Restore
				down++
			}
			if s.Kind != 0 {
				steps = append(steps, s)
				continue
			}
		}
		switch r := rng.Intn(100); {
		case r < 38:
			s.Kind = Send
			s.Count = 1 + rng.Intn(3)
			s.Wait = time.Duration(50+rng.Intn(950)) * time.Millisecond
		case r < 46:
			s.Kind = KillHost
		case r < 53:
			s.Kind = CrashFollower
		case r < 64:
			s.Kind = Restart
		case r < 69:
			s.Kind = Partition
			for len(s.Side) == 0 || len(s.Side) == o.Nodes {
				s.Side = s.Side[:0]
				for i := 0; i < o.Nodes; i++ {
					if rng.Intn(2) == 0 {
						s.Side = append(s.Side, i)
					}
				}
			}
		case r < 73:
			s.Kind = IsolateHost
		case r < 78:
			s.Kind = CutHost
		case r < 84:
			s.Kind = CutOneWay
			s.From, s.To = twoNodes(rng, o.Nodes)
		case r < 89:
			s.Kind = Degrade
			s.From, s.To = twoNodes(rng, o.Nodes)
			s.Link = randomLink(rng)
		case r < 91:
			s.Kind = DegradeAll
			s.Link = randomLink(rng)
		case r < 93:
			s.Kind = RestartAll
		default:
			s.Kind = Heal
		}
		switch s.Kind {
		case KillHost, CrashFollower:
			if down >= o.MaxDown {
				continue // draw again: this step would take too many down
			}
			down++
		case Restart:
			// The member away stays down: it is not restarted.
			if down == 0 || (away && down == 1) {
				continue
			}
			down--
		}
		steps = append(steps, s)
	}
	return steps
}

func twoNodes(rng *rand.Rand, n int) (int, int) {
	a := rng.Intn(n)
	b := rng.Intn(n - 1)
	if b >= a {
		b++
	}
	return a, b
}

func randomLink(rng *rand.Rand) simnet.LinkConfig {
	return simnet.LinkConfig{
		Latency: time.Duration(1+rng.Intn(30)) * time.Millisecond,
		Jitter:  rng.Float64(),
		Drop:    float64(rng.Intn(30)) / 100,
		Dup:     float64(rng.Intn(30)) / 100,
	}
}
