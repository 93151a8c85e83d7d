package election_test

import (
	"fmt"

	"github.com/demes/demes/election"
)

func ExampleRank() {
	// Three members in a line: alice - bob - carol. Alice and carol never
	// measured each other, so their distance goes through bob.
	r := election.Rank(election.Input{
		Members: []string{"alice", "bob", "carol"},
		Reports: map[string]map[string]float64{
			"alice": {"bob": 10},
			"bob":   {"alice": 12, "carol": 20},
			"carol": {"bob": 18},
		},
	})
	fmt.Println("host first:", r.Preference)
	for _, e := range r.Edges {
		fmt.Printf("%s-%s %v ms\n", e.A, e.B, e.RTT)
	}
	for _, id := range r.Preference {
		fmt.Printf("%s scores %v ms\n", id, r.Score[id])
	}
	// Output:
	// host first: [bob alice carol]
	// alice-bob 12 ms
	// bob-carol 20 ms
	// bob scores 16 ms
	// alice scores 22 ms
	// carol scores 26 ms
}

func ExampleShouldTransfer() {
	// b and c are 5 ms apart and 40 ms from a. A leader at a hands over;
	// a leader at c stays, since b is only better by its id.
	r := election.Rank(election.Input{
		Members: []string{"a", "b", "c"},
		Reports: map[string]map[string]float64{
			"a": {"b": 40, "c": 40},
			"b": {"a": 40, "c": 5},
			"c": {"a": 40, "b": 5},
		},
	})
	voters := map[string]bool{"a": true, "b": true, "c": true}
	caughtUp := voters
	for _, leader := range []string{"a", "c"} {
		to, ok := election.ShouldTransfer(r, leader, voters, caughtUp, election.DefaultHysteresis())
		if ok {
			fmt.Printf("leader %s: hand over to %s\n", leader, to)
		} else {
			fmt.Printf("leader %s: stay\n", leader)
		}
	}
	// Output:
	// leader a: hand over to b
	// leader c: stay
}
