package chaos

import (
	"testing"
	"time"
)

// TestRestoreForgetsOnlyWhatWentBack: of a restored member's sends, those
// it answered queued between the backup put back and the restore went back
// with its outbox and are owed no more (failed: at most once), and so are
// its tentative ones shown then and its reactions queued then (or
// acknowledged then as ones it had already); what it
// queued before the backup, anything acknowledged, and other members'
// sends stay owed.
func TestRestoreForgetsOnlyWhatWentBack(t *testing.T) {
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := &runner{lost: []lostWindow{{node: 1, from: at(10), to: at(20)}, {node: 3, from: at(10)}}}
	results := []sendResult{
		{text: "before the backup", from: 1, out: queued, done: at(5)},
		{text: "after the backup", from: 1, out: queued, done: at(15)},
		{text: "acknowledged after it", from: 1, out: acked, done: at(15)},
		{text: "after the restore", from: 1, out: queued, done: at(25)},
		{text: "another member's", from: 2, out: queued, done: at(15)},
		{text: "shown", from: 1, out: queued, done: at(12)},
		{text: "shown", from: 1, out: shown},
		// Node 3 has not started since its restore: a send that
		// answered after the crash is in the window too.
		{text: "in flight at the crash", from: 3, out: queued, done: at(30)},
		{text: "in flight at the crash", from: 3, out: shown},
	}
	reacts := []reactResult{
		{from: 1, out: queued, done: at(15)},
		{from: 1, out: queued, done: at(5)},
		{from: 1, out: acked, done: at(15)},
		{from: 1, out: acked, done: at(15), unchanged: true},
		{from: 1, out: acked, done: at(5), unchanged: true},
	}
	r.forgetLost(results, reacts)
	want := []outcome{queued, failed, acked, queued, queued, failed, failed, failed, failed}
	for k, res := range results {
		if res.out != want[k] {
			t.Errorf("%q (%d) is %v, want %v", res.text, k, res.out, want[k])
		}
	}
	for k, w := range []outcome{failed, queued, acked, failed, acked} {
		if reacts[k].out != w {
			t.Errorf("reaction %d is %v, want %v", k, reacts[k].out, w)
		}
	}
}
