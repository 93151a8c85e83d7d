package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The invariant checker: pure functions of what a run observed (the
// committed sequences nodes listed, the outcome of every send, the values
// in the stores), with no nodes, network or clock, so that each invariant
// has a table test showing it catch a violation (check_test.go).

// outcome is what a send returned.
type outcome int

const (
	acked  outcome = iota + 1 // committed when Send returned
	queued                    // in the outbox when Send returned
	failed                    // an error: may or may not have reached the outbox
	// shown is not a send's outcome but what another member did with it:
	// it listed the message tentative (before the group committed it),
	// so the message must be committed, exactly once, as if acknowledged.
	shown
)

// sendResult is one send of the run.
type sendResult struct {
	text string
	from int
	out  outcome
	err  error
	done time.Time // when the send returned (restore.go)
}

// entry is one committed message as a node lists it.
type entry struct {
	index uint64
	id    string
	text  string
}

func show(e entry) string { return fmt.Sprintf("[%d] %s %q", e.index, e.id, e.text) }

// compatible reports whether one of a and b is a prefix of the other, and
// where they first differ if not.
func compatible(a, b []entry) (int, bool) {
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return k, false
		}
	}
	return 0, true
}

// orderCheck checks one order as the run goes: every sequence any node
// lists, at any time, is a prefix of the longest one seen so far, or
// extends it. The zero value is ready to use.
type orderCheck struct {
	ref     []entry // the longest committed sequence seen so far
	refFrom string
}

// observe checks what node lists now against everything seen before.
func (o *orderCheck) observe(node string, seq []entry) error {
	if k, ok := compatible(o.ref, seq); !ok {
		return violation(InvOneOrder, "%s lists %s at position %d where %s listed %s", node, show(seq[k]), k, o.refFrom, show(o.ref[k]))
	}
	if len(seq) > len(o.ref) {
		o.ref, o.refFrom = seq, node
	}
	return nil
}

// checkDelivery checks the delivery guarantees on the sequences of a
// settled group, seqs[i] from node i, given every send of the run, and
// returns the common sequence: one order (every node lists the same), every
// acknowledged or queued send delivered exactly once, nothing delivered
// twice, nothing delivered that was not sent.
func checkDelivery(seqs [][]entry, results []sendResult) ([]entry, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	final := seqs[0]
	for i, seq := range seqs {
		if len(seq) != len(final) {
			return nil, violation(InvOneOrder, "node%d lists %d messages, node0 %d", i, len(seq), len(final))
		}
		if k, ok := compatible(final, seq); !ok {
			return nil, violation(InvOneOrder, "node%d lists %s at position %d where node0 lists %s", i, show(seq[k]), k, show(final[k]))
		}
	}
	return final, checkCounts(final, results, func(sendResult) bool { return true })
}

// checkCounts checks the common sequence final against every send: each
// acknowledged one delivered exactly once, each queued one too where owed
// says so (its node's outbox still exists), none delivered twice or unsent.
func checkCounts(final []entry, results []sendResult, owed func(sendResult) bool) error {
	count := map[string]int{}
	for _, e := range final {
		count[e.text]++
	}
	sent := map[string]bool{}
	for _, r := range results {
		sent[r.text] = true
		switch {
		case r.out == acked && count[r.text] != 1:
			return violation(InvAcked, "%q, acknowledged by node%d, delivered %d times", r.text, r.from, count[r.text])
		case r.out == queued && owed(r) && count[r.text] != 1:
			return violation(InvQueued, "%q, queued on node%d, delivered %d times", r.text, r.from, count[r.text])
		case r.out == shown && owed(r) && count[r.text] != 1:
			return violation(InvTentative, "%q of node%d, shown tentative by another member, delivered %d times", r.text, r.from, count[r.text])
		}
	}
	texts := make([]string, 0, len(count))
	for text := range count {
		texts = append(texts, text)
	}
	sort.Strings(texts) // the same report for the same run
	for _, text := range texts {
		if k := count[text]; k > 1 {
			return violation(InvNoDuplicates, "%q delivered %d times", text, k)
		}
		if !sent[text] {
			return violation(InvNoStrangers, "%q delivered but never sent", text)
		}
	}
	return nil
}

// checkPlaintext checks that no value of a store holds the bytes of any
// sent text. An empty store is an error of the run, not a violation: the
// check would pass without looking at anything.
func checkPlaintext(store string, values [][]byte, results []sendResult) error {
	if len(values) == 0 {
		return fmt.Errorf("the store of %s is empty", store)
	}
	var found []string
	for _, v := range values {
		for _, r := range results {
			if bytes.Contains(v, []byte(r.text)) {
				found = append(found, r.text)
			}
		}
	}
	if len(found) > 0 {
		sort.Strings(found)
		return violation(InvCiphertext, "the store of %s holds %s in plaintext", store, strings.Join(found, ", "))
	}
	return nil
}

// Churn runs (members join and leave during the run) change what one order
// means: a member lists only the messages from its join on (it cannot open
// those sealed before), and one that left only those until it left. So each
// log index must hold the same message on every node that lists it
// (indexOrder), and once settled, every current member lists exactly the
// common sequence from its join on (checkChurn).

// indexOrder checks, as the run goes, that no two nodes ever list different
// messages at the same log index. The zero value is ready to use.
type indexOrder struct {
	at   map[uint64]entry
	from map[uint64]string
}

// observe checks what node lists now against everything seen before.
func (o *indexOrder) observe(node string, seq []entry) error {
	if o.at == nil {
		o.at, o.from = map[uint64]entry{}, map[uint64]string{}
	}
	for k, e := range seq {
		if k > 0 && e.index <= seq[k-1].index {
			return violation(InvOneOrder, "%s lists %s after %s", node, show(e), show(seq[k-1]))
		}
		if old, ok := o.at[e.index]; ok && old != e {
			return violation(InvOneOrder, "%s lists %s where %s listed %s", node, show(e), o.from[e.index], show(old))
		}
		o.at[e.index], o.from[e.index] = e, node
	}
	return nil
}

// memberSeq is a current member's settled sequence and the log index of its
// join: it can open the messages after it. A member that left and joined
// again (rejoined) also keeps what it had read before it left, and
// joinedAt is its latest join.
type memberSeq struct {
	node     string
	joinedAt uint64
	seq      []entry
	rejoined bool
}

// checkChurn checks the guarantees of a settled churn run: every current
// member lists the common sequence (every message any of them lists, by
// index) from its join on, with no hole and no other message (a member
// that joined again may list, before its latest join, what it read in an
// earlier membership: those are in the common sequence too, at the same
// indexes, which observe checks); every
// acknowledged send is delivered exactly once, every queued one too unless
// its sender is no member any more (it left, and its outbox with it);
// nothing is delivered twice or unsent. It returns the common sequence.
func checkChurn(members []memberSeq, results []sendResult, current map[int]bool) ([]entry, error) {
	var o indexOrder
	for _, m := range members {
		if err := o.observe(m.node, m.seq); err != nil {
			return nil, err
		}
	}
	final := make([]entry, 0, len(o.at))
	for _, e := range o.at {
		final = append(final, e)
	}
	sort.Slice(final, func(i, j int) bool { return final[i].index < final[j].index })
	for _, m := range members {
		var want []entry
		for _, e := range final {
			if e.index > m.joinedAt {
				want = append(want, e)
			}
		}
		got := len(m.seq)
		if m.rejoined {
			got = 0
			for _, e := range m.seq {
				if e.index > m.joinedAt {
					got++
				}
			}
		}
		if len(want) != got {
			return nil, violation(InvCaughtUp, "%s (joined at %d) lists %d messages, %d since its join", m.node, m.joinedAt, len(m.seq), len(want))
		}
	}
	return final, checkCounts(final, results, func(r sendResult) bool { return current[r.from] })
}
