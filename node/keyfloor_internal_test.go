package node

import (
	"testing"
	"time"

	"github.com/demes/demes/crypto"
)

// TestMarksStartAgain: a key used steadily, a message every 50 minutes,
// gets a new mark once the last one is markEvery old (an hour for a
// retention of 64 hours): each mark spans less than markEvery, so a
// message's key is deleted at most that much later than the retention
// says. A mark that moved on with every message (one mark in all) would
// keep the key's first messages until the whole key goes.
func TestMarksStartAgain(t *testing.T) {
	b := &keyBook{n: &Node{cfg: Config{KeyRetention: 64 * time.Hour}}, marks: map[keyName][]keyMark{}, floors: map[keyName]uint64{}}
	gid, ref := crypto.GroupID{1}, crypto.KeyRef{Epoch: 1}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		b.sawAt(gid, ref, uint64(i)+1, t0.Add(time.Duration(i)*50*time.Minute))
	}
	ms := b.marks[keyName{gid, ref}]
	if len(ms) < 45 {
		t.Fatalf("%d marks for 100 messages over 82 hours; want one every two messages", len(ms))
	}
	// The first mark says the first counters were seen in the first hour.
	if ms[0].c > 3 || ms[0].t.After(t0.Add(time.Hour)) {
		t.Fatalf("first mark: counters below %d seen by %v; want the first two by %v", ms[0].c, ms[0].t, t0.Add(time.Hour))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].c <= ms[i-1].c || ms[i].t.Before(ms[i-1].t) {
			t.Fatalf("marks out of order at %d: %+v, %+v", i, ms[i-1], ms[i])
		}
		if ms[i].t.Sub(ms[i].start) >= b.markEvery() {
			t.Fatalf("mark %d spans %v, markEvery is %v", i, ms[i].t.Sub(ms[i].start), b.markEvery())
		}
	}
}
