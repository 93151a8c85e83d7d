package chaos

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCheckerCatchesEachViolation feeds the checker made-up observations,
// one broken guarantee each, and checks it names that invariant; and that
// the same observations without the fault pass.
func TestCheckerCatchesEachViolation(t *testing.T) {
	a := entry{index: 5, id: "a", text: "hello"}
	b := entry{index: 6, id: "b", text: "world"}
	c := entry{index: 7, id: "c", text: "again"}
	sent := func(out outcome, texts ...string) []sendResult {
		var rs []sendResult
		for _, tx := range texts {
			rs = append(rs, sendResult{text: tx, out: out})
		}
		return rs
	}
	for _, tc := range []struct {
		name string
		// observed, node by node, in order, while the run went on
		during [][]entry
		// every node's sequence once settled
		final   [][]entry
		results []sendResult
		stores  [][]byte
		want    string // the invariant broken, "" for none
	}{
		{name: "all fine", during: [][]entry{{a}, {a, b}, {a}}, final: [][]entry{{a, b}, {a, b}},
			results: append(sent(acked, "hello"), sent(queued, "world")...), stores: [][]byte{[]byte("sealed")}},
		{name: "a failed send delivered once is fine", final: [][]entry{{a}}, results: sent(failed, "hello"), stores: [][]byte{{1}}},
		{name: "a failed send lost is fine", final: [][]entry{{a}}, results: append(sent(acked, "hello"), sent(failed, "world")...), stores: [][]byte{{1}}},
		{name: "committed order changes during the run", during: [][]entry{{a, b}, {a, c}}, final: [][]entry{{a, b}}, want: InvOneOrder},
		{name: "a node rewrites its own history", during: [][]entry{{a, b}, {b}}, final: [][]entry{{a, b}}, want: InvOneOrder},
		{name: "settled nodes disagree on the order", final: [][]entry{{a, b}, {b, a}}, want: InvOneOrder},
		{name: "a settled node lacks a message", final: [][]entry{{a, b}, {a}}, want: InvOneOrder},
		{name: "an acknowledged send is lost", final: [][]entry{{a}}, results: sent(acked, "hello", "world"), want: InvAcked},
		{name: "an acknowledged send is delivered twice", final: [][]entry{{a, {index: 6, id: "a2", text: "hello"}}}, results: sent(acked, "hello"), want: InvAcked},
		{name: "a queued send is lost", final: [][]entry{{a}}, results: append(sent(acked, "hello"), sent(queued, "world")...), want: InvQueued},
		{name: "a message shown tentative is lost", final: [][]entry{{a}},
			results: append(append(sent(acked, "hello"), sent(failed, "world")...), sent(shown, "world")...), want: InvTentative},
		{name: "a message shown tentative is committed once", final: [][]entry{{a, b}},
			results: append(append(sent(acked, "hello"), sent(failed, "world")...), sent(shown, "world")...), stores: [][]byte{{1}}},
		{name: "a failed send is delivered twice", final: [][]entry{{a, {index: 6, id: "a2", text: "hello"}}}, results: sent(failed, "hello"), want: InvNoDuplicates},
		{name: "a message nobody sent", final: [][]entry{{a, b}}, results: sent(acked, "hello"), want: InvNoStrangers},
		{name: "plaintext in a store", final: [][]entry{{a}}, results: sent(acked, "hello"),
			stores: [][]byte{[]byte("sealed"), []byte("...hello...")}, want: InvCiphertext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := func() error {
				var o orderCheck
				for _, seq := range tc.during {
					if err := o.observe("node0", seq); err != nil {
						return err
					}
				}
				if _, err := checkDelivery(tc.final, tc.results); err != nil {
					return err
				}
				if tc.stores == nil {
					return nil
				}
				return checkPlaintext("node0", tc.stores, tc.results)
			}()
			var v *Violation
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a run without faults failed: %v", err)
			case tc.want == "":
			case !errors.As(err, &v):
				t.Fatalf("got %v, want a violation of %q", err, tc.want)
			case v.Invariant != tc.want:
				t.Fatalf("got a violation of %q (%v), want %q", v.Invariant, v, tc.want)
			}
		})
	}
}

// TestCheckerEmptyStore: a store without values is an error of the run, not
// a pass: the plaintext check would have looked at nothing.
func TestCheckerEmptyStore(t *testing.T) {
	err := checkPlaintext("node0", nil, []sendResult{{text: "hello", out: acked}})
	var v *Violation
	if err == nil || errors.As(err, &v) {
		t.Fatalf("empty store: got %v, want a plain error", err)
	}
}

// TestChurnCheckerCatchesEachViolation is TestCheckerCatchesEachViolation
// for churn runs.
func TestChurnCheckerCatchesEachViolation(t *testing.T) {
	a := entry{index: 5, id: "a", text: "hello"}
	b := entry{index: 8, id: "b", text: "world"}
	c := entry{index: 9, id: "c", text: "again"}
	sent := func(out outcome, from int, texts ...string) []sendResult {
		var rs []sendResult
		for _, tx := range texts {
			rs = append(rs, sendResult{text: tx, out: out, from: from})
		}
		return rs
	}
	all := append(append(sent(acked, 0, "hello"), sent(queued, 1, "world")...), sent(acked, 0, "again")...)
	for _, tc := range []struct {
		name    string
		members []memberSeq
		results []sendResult
		current map[int]bool
		want    string
	}{
		{name: "a founder and a member who joined at 6", members: []memberSeq{ms("node0", 1, a, b, c), ms("node3", 6, b, c)},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}},
		{name: "a queued send of a member that left is not owed", members: []memberSeq{ms("node0", 1, a, c)},
			results: all, current: map[int]bool{0: true}},
		{name: "a queued send of a current member is owed", members: []memberSeq{ms("node0", 1, a, c)},
			results: all, current: map[int]bool{0: true, 1: true}, want: InvQueued},
		{name: "two messages at one index", members: []memberSeq{ms("node0", 1, a, b), ms("node3", 6, entry{index: 8, id: "x", text: "world"})},
			results: all, want: InvOneOrder},
		{name: "a member that came back lacks a message since its join", members: []memberSeq{ms("node0", 1, a, b, c), ms("node3", 6, c)},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}, want: InvCaughtUp},
		{name: "a member lacks one before its join: fine", members: []memberSeq{ms("node0", 1, a, b, c), ms("node3", 8, c)},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}},
		{name: "a member that left and joined again keeps what it read before",
			members: []memberSeq{ms("node0", 1, a, b, c), rejoined(ms("node3", 8, a, c))},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}},
		{name: "a member that joined again lacks a message since its join",
			members: []memberSeq{ms("node0", 1, a, b, c), rejoined(ms("node3", 7, a, c))},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}, want: InvCaughtUp},
		{name: "a first join lists a message from before it", members: []memberSeq{ms("node0", 1, a, b, c), ms("node3", 8, a, c)},
			results: all, current: map[int]bool{0: true, 1: true, 3: true}, want: InvCaughtUp},
		{name: "an acknowledged send is lost", members: []memberSeq{ms("node0", 1, a, b)},
			results: all, current: map[int]bool{0: true}, want: InvAcked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkChurn(tc.members, tc.results, tc.current)
			var v *Violation
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want no violation, got %v", err)
			case tc.want != "" && (!errors.As(err, &v) || v.Invariant != tc.want):
				t.Fatalf("want %q violated, got %v", tc.want, err)
			}
		})
	}
}

func ms(node string, joinedAt uint64, seq ...entry) memberSeq {
	return memberSeq{node: node, joinedAt: joinedAt, seq: seq}
}

func rejoined(m memberSeq) memberSeq {
	m.rejoined = true
	return m
}

// TestBoardCheckCatchesEachViolation: checkBoards names "one board" when
// two settled members that can read all of a message show different
// reactions on it, and "acknowledged reactions shown" when an acknowledged
// or queued reaction shows nowhere, or a message shows more than one
// reaction or one never sent to it; a failed one may be lost or delivered,
// a later reaction of the same member may replace an earlier one, a member
// that joined after a message (or lists it from an earlier membership) may
// miss its reactions, and a queued reaction of a member that left may be
// lost.
func TestBoardCheckCatchesEachViolation(t *testing.T) {
	react := func(out outcome, target string) reactResult {
		return reactResult{target: target, emoji: "👍", out: out}
	}
	// view is a member joined at joinedAt that shows, for each message
	// "id@index", the reactions given.
	view := func(joinedAt uint64, notes map[string]string) boardView {
		v := boardView{node: fmt.Sprintf("joined at %d", joinedAt), joinedAt: joinedAt, notes: map[string]shownNote{}}
		for k, r := range notes {
			var id string
			var index uint64
			if _, err := fmt.Sscanf(strings.Replace(k, "@", " ", 1), "%s %d", &id, &index); err != nil {
				t.Fatal(err)
			}
			v.notes[id] = shownNote{index: index, reactions: r}
		}
		return v
	}
	two := func(a, b map[string]string) []boardView { return []boardView{view(0, a), view(0, b)} }
	for _, tc := range []struct {
		name    string
		views   []boardView
		reacts  []reactResult
		current map[int]bool // default: node0 only (every reaction's sender)
		want    string
	}{
		{name: "all fine", views: two(map[string]string{"a@5": "👍 x1", "b@6": ""}, map[string]string{"a@5": "👍 x1", "b@6": ""}),
			reacts: []reactResult{react(acked, "a"), react(queued, "a"), react(failed, "b")}},
		{name: "a failed reaction delivered is fine", views: two(map[string]string{"a@5": "👍 x1"}, map[string]string{"a@5": "👍 x1"}),
			reacts: []reactResult{react(failed, "a")}},
		{name: "replaced by a later reaction", views: two(map[string]string{"a@5": "🎉 x1"}, map[string]string{"a@5": "🎉 x1"}),
			reacts: []reactResult{react(acked, "a"), {target: "a", emoji: "🎉", out: acked}}},
		{name: "members show different reactions", views: two(map[string]string{"a@5": "🎉 x1"}, map[string]string{"a@5": "👍 x1"}),
			reacts: []reactResult{react(acked, "a"), {target: "a", emoji: "🎉", out: acked}}, want: InvOneBoard},
		{name: "a member misses a reaction", views: two(map[string]string{"a@5": "👍 x1"}, map[string]string{"a@5": ""}), want: InvOneBoard},
		{name: "a reaction counted twice", views: two(map[string]string{"a@5": "👍 x2"}, map[string]string{"a@5": "👍 x2"}),
			reacts: []reactResult{react(acked, "a")}, want: InvReactions},
		{name: "a reaction never sent to it", views: two(map[string]string{"a@5": "🎉 x1"}, map[string]string{"a@5": "🎉 x1"}),
			reacts: []reactResult{react(acked, "a"), {target: "b", emoji: "🎉", out: acked}}, want: InvReactions},
		{name: "an acknowledged reaction is lost", views: two(map[string]string{"a@5": ""}, map[string]string{"a@5": ""}),
			reacts: []reactResult{react(acked, "a")}, want: InvReactions},
		{name: "a queued reaction is lost", views: []boardView{view(0, map[string]string{"a@5": "", "b@6": "👍 x1"})},
			reacts: []reactResult{react(queued, "a")}, want: InvReactions},
		// Churn: members joined at different points.
		{name: "a member joined after the message misses its reaction", views: []boardView{view(0, map[string]string{"a@5": "👍 x1"}), view(7, map[string]string{"a@5": ""})},
			reacts: []reactResult{react(acked, "a")}},
		{name: "a member joined just before the message misses its reaction", views: []boardView{view(0, map[string]string{"a@5": "👍 x1"}), view(4, map[string]string{"a@5": ""})},
			reacts: []reactResult{react(acked, "a")}, want: InvOneBoard},
		{name: "a member that returned misses a reaction", views: []boardView{view(0, map[string]string{"a@5": "👍 x1"}), view(2, map[string]string{"a@5": "👍 x1"}), view(3, map[string]string{"a@5": ""})},
			reacts: []reactResult{react(acked, "a")}, want: InvOneBoard},
		{name: "no member can read all of the message", views: []boardView{view(9, map[string]string{"a@5": ""})},
			reacts: []reactResult{react(acked, "a")}},
		{name: "a queued reaction of a member that left is lost", views: two(map[string]string{"a@5": ""}, map[string]string{"a@5": ""}),
			reacts: []reactResult{react(queued, "a")}, current: map[int]bool{1: true}},
		{name: "an acknowledged reaction of a member that left is lost", views: two(map[string]string{"a@5": ""}, map[string]string{"a@5": ""}),
			reacts: []reactResult{react(acked, "a")}, current: map[int]bool{1: true}, want: InvReactions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current := tc.current
			if current == nil {
				current = map[int]bool{0: true}
			}
			err := checkBoards(tc.views, tc.reacts, current)
			var v *Violation
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("%v, want no violation", err)
			case tc.want != "" && (!errors.As(err, &v) || v.Invariant != tc.want):
				t.Fatalf("%v, want a violation of %q", err, tc.want)
			}
		})
	}
}
