package main

import (
	"os"
	"time"

	"github.com/demes/demes/api"
)

// The summary of `demes status` for a node that follows in a group of two.
func Example_printStatus() {
	st := api.Status{
		PublicID:    alice.String(),
		Name:        "Alice",
		Fingerprint: alice.Fingerprint(),
		PeerURL:     "http://127.0.0.1:7000",
		Running:     true,
		Groups: []api.GroupStatus{{
			GroupID:    "a1a1a1a1",
			Name:       "alpha",
			Host:       bob.String(),
			Term:       7,
			Preference: []string{bob.String(), alice.String()},
			Members: []api.Member{
				{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true},
				{PublicID: bob.String(), Fingerprint: bob.Fingerprint(), Voter: true, Online: true, RTTMillis: 12.5, Host: true, Admin: true},
			},
			Committed: 3,
			Queued:    1,
			HasQuorum: true,
			Role:      "follower",
		}},
	}
	printStatus(os.Stdout, st)
	// Output:
	// node         Alice
	// public id    demes1dalxcaa6h89umm7t5zyc44r4x5dhemrmusgc8t34fxj70md8p72xrjw6l8znxt2p7ynu4zsv3uqrxn5tyhy7ze74dyww6zs7tjqm6dcpl05k2
	// fingerprint  d341 d769 1e1e b07d
	// peer url     http://127.0.0.1:7000
	//
	// group "alpha" (a1a1a1a1)
	//   host        70e4 647c 096f 1192
	//   term        7
	//   this node   follower
	//   quorum      yes
	//   committed   3
	//   queued      1 in the outbox
	//   preference  70e4 647c 096f 1192 > Alice
	//   members (2):
	//     Alice  d341 d769 1e1e b07d  voter  online  -        you
	//     -      70e4 647c 096f 1192  voter  online  12.5 ms  host, admin
}

// A group halted after a fork says so first, in words.
func Example_printGroupStatusHalted() {
	printGroupStatus(os.Stdout, api.GroupStatus{
		GroupID: "b2b2b2b2", Name: "beta", Term: 3, Role: "halted", Committed: 16,
		Members: []api.Member{{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true}},
		Fork: &api.ForkAlert{
			Index: 16, Peer: bob.String(), PeerName: "Bob", Detected: time.Date(2026, 12, 3, 15, 0, 0, 0, time.Local),
			Message: "Carol (the host) showed you and Bob different histories of this group (they differ by entry 16). This group is halted on your node: nothing more is sent or received in it.",
		},
	})
	// Output:
	// group "beta" (b2b2b2b2)
	//   HALTED: Carol (the host) showed you and Bob different histories of this group (they differ by entry 16). This group is halted on your node: nothing more is sent or received in it.
	//   found 2026-12-03 15:00:00; the proof is kept in this node's store
	//   host       none known (no quorum?)
	//   term       3
	//   this node  halted
	//   quorum     no: the group is halted
	//   committed  16
	//   members (1):
	//     Alice  d341 d769 1e1e b07d  voter  online  -  you
}
