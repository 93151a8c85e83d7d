package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/demes/demes/node/store"
)

// Backups and restores (restore schedules only): a member's store is put
// back to an earlier backup of it while it is down, as `demes restore`
// puts it back, marked restored, and the member comes back with the next
// Restart. Only the store goes back, as in the node package's restore
// tests: the key store stays (a real restore loses the keys too, which
// keys_group.go renews; that is not what these schedules exercise). The
// group must lose nothing a member acknowledged as committed, the restored
// member's acknowledgements and votes included, and keep one order.

// backupCopy is a member's latest backup.
type backupCopy struct {
	data []byte
	at   time.Time // when it was taken: everything on disk then is in it
}

// lostWindow is a span in which what node queued went back with its store:
// from the backup put back to the node's next start (zero while it has not
// started: a send in flight when it crashed answers after the crash, and a
// member may have shown it tentative).
type lostWindow struct {
	node     int
	from, to time.Time
}

// backup takes a backup of live member i's store, as demes backup does.
func (r *runner) backup(k int, s Step, i int) error {
	var b bytes.Buffer
	n := r.c.Node(i)
	if n == nil {
		r.logf("%d %s: node%d crashed meanwhile", k, s.Kind, i)
		return nil
	}
	at := time.Now()
	if _, err := n.BackupStore(&b, func(int64) {}); err != nil {
		// A node crashed meanwhile closes its store.
		r.logf("%d %s: node%d: %v", k, s.Kind, i, err)
		return nil
	}
	r.mu.Lock()
	r.backups[i] = backupCopy{data: b.Bytes(), at: at}
	r.mu.Unlock()
	r.logf("%d %s: node%d (%d bytes)", k, s.Kind, i, b.Len())
	return nil
}

// restore puts the latest backup of member i, which is down, back as its
// store and marks it restored.
func (r *runner) restore(k int, s Step, i int, rep *Report) error {
	r.mu.Lock()
	b := r.backups[i]
	r.mu.Unlock()
	path := filepath.Join(r.c.Member(i).Dir, "store.db")
	if err := os.WriteFile(path, b.data, 0o600); err != nil {
		return fmt.Errorf("step %d: restore node%d: %w", k, i, err)
	}
	if err := store.MarkRestored(path); err != nil {
		return fmt.Errorf("step %d: restore node%d: %w", k, i, err)
	}
	r.mu.Lock()
	r.lost = append(r.lost, lostWindow{node: i, from: b.at})
	r.restored[i] = true // until it has started and caught up (othersHeld)
	r.mu.Unlock()
	rep.Restores++
	r.logf("%d %s: node%d put back to its backup of %v ago", k, s.Kind, i, time.Since(b.at).Round(time.Millisecond))
	return nil
}

// othersHeld reports whether a member other than i is still held as
// restored (restored and not caught up, or restored and not started yet).
// The README asks for one member of a group restored at a time: two
// restored voters of three wait for each other, each granting its vote only
// to a host it followed since its restore, and the group elects no host
// again (seed 345032 before this check). It must not be called with r.mu
// held.
func (r *runner) othersHeld(i int) bool {
	for j := range r.c.Members() {
		if j == i {
			continue
		}
		if r.c.Node(j) == nil {
			r.mu.Lock()
			held := r.restored[j]
			r.mu.Unlock()
			if held {
				return true
			}
			continue
		}
		if gs, ok := r.c.Status(j); ok && gs.Restored != "" {
			return true
		}
	}
	return false
}

// restorable returns the live (or the crashed) members that have a
// backup.
func (r *runner) restorable(live bool) []int {
	from := r.down()
	if live {
		from = r.live()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, i := range from {
		if _, ok := r.backups[i]; ok {
			out = append(out, i)
		}
	}
	return out
}

// wentBack reports whether what node from answered at done may have gone
// back with its store: answered after a backup that was put back later.
func (r *runner) wentBack(from int, done time.Time) bool {
	for _, w := range r.lost {
		if w.node == from && done.After(w.from) && (w.to.IsZero() || done.Before(w.to)) {
			return true
		}
	}
	return false
}

// started closes the lost windows of node i, which starts now. It must be
// called with r.mu held.
func (r *runner) started(i int) {
	for k := range r.lost {
		if r.lost[k].node == i && r.lost[k].to.IsZero() {
			r.lost[k].to = time.Now()
		}
	}
}

// forgetLost turns the queued and shown sends and the queued reactions
// (and those acknowledged as ones the node had already) that went back
// with a restored member's store into failed ones: each may or may not be
// delivered, at most once. Acknowledged ones stay owed. It must be called
// with r.mu held.
func (r *runner) forgetLost(results []sendResult, reacts []reactResult) {
	done := map[string]time.Time{}
	for _, res := range results {
		if res.out != shown {
			done[res.text] = res.done
		}
	}
	for k, res := range results {
		if (res.out == queued || res.out == shown) && r.wentBack(res.from, done[res.text]) {
			results[k].out = failed
		}
	}
	for k, x := range reacts {
		// A reaction the node had already stands for that one, which may
		// have been only queued (seed 348030: it went back, and the
		// acknowledged repeat showed on no member). One that was
		// committed is owed by its own result.
		if (x.out == queued || x.out == acked && x.unchanged) && r.wentBack(x.from, x.done) {
			reacts[k].out = failed
		}
	}
}
