package chaos

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
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
)

// sendResult is one send of the run.
type sendResult struct {
	text string
	from int
	out  outcome
	err  error
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
	count := map[string]int{}
	for _, e := range final {
		count[e.text]++
	}
	sent := map[string]bool{}
	for _, r := range results {
		sent[r.text] = true
		switch {
		case r.out == acked && count[r.text] != 1:
			return nil, violation(InvAcked, "%q, acknowledged by node%d, delivered %d times", r.text, r.from, count[r.text])
		case r.out == queued && count[r.text] != 1:
			return nil, violation(InvQueued, "%q, queued on node%d, delivered %d times", r.text, r.from, count[r.text])
		}
	}
	texts := make([]string, 0, len(count))
	for text := range count {
		texts = append(texts, text)
	}
	sort.Strings(texts) // the same report for the same run
	for _, text := range texts {
		if k := count[text]; k > 1 {
			return nil, violation(InvNoDuplicates, "%q delivered %d times", text, k)
		}
		if !sent[text] {
			return nil, violation(InvNoStrangers, "%q delivered but never sent", text)
		}
	}
	return final, nil
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
