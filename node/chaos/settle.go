package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/demes/demes/node/store"
)

// The end of a run: waiting until the healed group settles, then reading
// what every node lists and stores, for the checker (check.go).

// settle waits until every node is up, lists the same committed messages,
// which include every queued one, and has an empty outbox.
func (r *runner) settle(ctx context.Context, results []sendResult) error {
	if r.o.Churn {
		return r.settleChurn(ctx, results)
	}
	return r.waitSettled(ctx, func() (why, stop error) {
		var first []entry
		for i := range r.c.Members() {
			g, ok := r.c.Status(i)
			if !ok {
				return fmt.Errorf("node%d is down or not in the group", i), nil
			}
			if g.Queued != 0 {
				return fmt.Errorf("node%d has %d messages in its outbox", i, g.Queued), nil
			}
			seq, err := r.committed(i)
			if err != nil {
				return err, nil
			}
			if i == 0 {
				first = seq
			} else if len(seq) != len(first) {
				return fmt.Errorf("node%d lists %d messages, node0 %d", i, len(seq), len(first)), nil
			}
		}
		have := map[string]bool{}
		for _, e := range first {
			have[e.text] = true
		}
		for _, res := range results {
			if res.out != failed && !have[res.text] {
				return fmt.Errorf("%q (from node%d) is not delivered yet", res.text, res.from), nil
			}
		}
		return nil, nil
	})
}

// waitSettled waits, up to Options.Settle, until check finds nothing left
// to wait for (why nil), observing the order at every try; a stop error (a
// broken guarantee that no wait mends) ends the wait at once. After the
// time, the last why is the violation: its own invariant when it is one,
// "settles after healing" otherwise.
func (r *runner) waitSettled(ctx context.Context, check func() (why, stop error)) error {
	var why, stop error
	sctx, cancel := context.WithTimeout(ctx, r.o.Settle)
	defer cancel()
	err := r.c.Until(sctx, "the group to settle", func() bool {
		if stop = r.observe(); stop != nil {
			return true
		}
		why, stop = check()
		return stop != nil || why == nil
	})
	if stop != nil {
		return stop
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var v *Violation
		if errors.As(why, &v) {
			return violation(v.Invariant, "after %v: %s", r.o.Settle, v.Detail)
		}
		return violation(InvSettles, "after %v: %v", r.o.Settle, why)
	}
	return nil
}

// check reads every node's sequence of the settled group and checks the
// delivery guarantees on them.
func (r *runner) check(results []sendResult) ([]entry, error) {
	if r.o.Churn {
		ms, current, err := r.memberSeqs()
		if err != nil {
			return nil, err
		}
		return checkChurn(ms, results, current)
	}
	var seqs [][]entry
	for i := range r.c.Members() {
		seq, err := r.committed(i)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return checkDelivery(seqs, results)
}

// checkStores reads every value of every (closed) node's store and checks
// that none holds a sent text.
func (r *runner) checkStores(results []sendResult) error {
	for _, m := range r.c.Members() {
		st, err := store.Open(filepath.Join(m.Dir, "store.db"))
		if err != nil {
			return fmt.Errorf("open the store of %s: %w", m.Name, err)
		}
		var values [][]byte
		err = st.ForEachValue(func(v []byte) { values = append(values, append([]byte(nil), v...)) })
		st.Close()
		if err != nil {
			return fmt.Errorf("scan the store of %s: %w", m.Name, err)
		}
		if len(values) == 0 && r.o.Churn && m.Index >= r.o.Nodes {
			continue // a spare that never joined
		}
		if err := checkPlaintext(m.Name, values, results); err != nil {
			return err
		}
	}
	return nil
}

// pause waits d between two steps, as the schedule says.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
