package main

import (
	"os"
	"strings"
	"testing"
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
				{PublicID: bob.String(), Fingerprint: bob.Fingerprint(), Voter: true, Online: true, RTTMillis: 12.5, Host: true, Admin: true, Path: "relayed"},
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
	//     -      70e4 647c 096f 1192  voter  online  12.5 ms  host, admin, through a relay
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
	//   continue it without the member that forked it: demes reform --group b2b2b2b2
	//   host       none known (no quorum?)
	//   term       3
	//   this node  halted
	//   quorum     no: the group is halted
	//   committed  16
	//   members (1):
	//     Alice  d341 d769 1e1e b07d  voter  online  -  you
}

// A halted group lists the groups that continue it, and a successor says
// what it continues.
func Example_printGroupStatusReformed() {
	fork := &api.ForkAlert{Index: 16, Peer: bob.String(), PeerName: "Bob", Detected: time.Date(2026, 12, 3, 15, 0, 0, 0, time.Local),
		Message: "Carol (the host) showed you and Bob different histories of this group (they differ by entry 16)."}
	cont := api.Continuation{GroupID: "b2b2b2b2", Name: "beta", Index: 15, Without: "demes1carol", WithoutName: "Carol", By: bob.String(), ByName: "Bob",
		Message: `Continued from "beta" without Carol, after members were shown different histories: Bob started this group from the history its members held alike through entry 15.`}
	printGroupStatus(os.Stdout, api.GroupStatus{GroupID: "b2b2b2b2", Name: "beta", Role: "halted", Fork: fork,
		Successors: []api.SuccessorOffer{
			{GroupID: "d4d4d4d4", Continues: cont},
			{GroupID: "e5e5e5e5", Continues: api.Continuation{ByName: "Carol", WithoutName: "Bob"}, Problem: "it was started by Carol, the member your node found showing members different histories"},
		}})
	printGroupStatus(os.Stdout, api.GroupStatus{GroupID: "d4d4d4d4", Name: "beta", Role: "follower", HasQuorum: true, Continues: &cont})
	// Output:
	// group "beta" (b2b2b2b2)
	//   HALTED: Carol (the host) showed you and Bob different histories of this group (they differ by entry 16).
	//   found 2026-12-03 15:00:00; the proof is kept in this node's store
	//   Bob continues it in d4d4d4d4 without Carol: join with demes reform --group b2b2b2b2
	//   not joining e5e5e5e5 (started by Carol): it was started by Carol, the member your node found showing members different histories
	//   host       none known (no quorum?)
	//   term       0
	//   this node  halted
	//   quorum     no: the group is halted
	//   committed  0
	//   members (0):
	// group "beta" (d4d4d4d4)
	//   CONTINUES b2b2b2b2: Continued from "beta" without Carol, after members were shown different histories: Bob started this group from the history its members held alike through entry 15.
	//   host       none known (no quorum?)
	//   term       0
	//   this node  follower
	//   quorum     yes
	//   committed  0
	//   members (0):
}

// A suspicion of censorship shows before the figures too.
func Example_printGroupStatusCensored() {
	printGroupStatus(os.Stdout, api.GroupStatus{
		GroupID: "c3c3c3c3", Name: "gamma", Host: bob.String(), Term: 4, Role: "follower", Committed: 9, Queued: 1, HasQuorum: true,
		Members: []api.Member{
			{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true},
			{PublicID: bob.String(), Name: "Bob", Fingerprint: bob.Fingerprint(), Voter: true, Online: true, Host: true},
		},
		Censorship: &api.CensorAlert{Host: bob.String(), Voters: 1, Needed: 2,
			Message: "Bob (the host) has not put your messages in the group's order for 7s, while it did other members'. 1 of the 2 voters needed suspect it; until a majority does, it stays the host."},
	})
	// Output:
	// group "gamma" (c3c3c3c3)
	//   SUSPECTED HOST: Bob (the host) has not put your messages in the group's order for 7s, while it did other members'. 1 of the 2 voters needed suspect it; until a majority does, it stays the host.
	//   host       Bob
	//   term       4
	//   this node  follower
	//   quorum     yes
	//   committed  9
	//   queued     1 in the outbox
	//   members (2):
	//     Alice  d341 d769 1e1e b07d  voter  online  -  you
	//     Bob    70e4 647c 096f 1192  voter  online  -  host
}

// A group restored from a backup says, while it catches up, that it takes
// part in no election.
func Example_printGroupStatusRestored() {
	printGroupStatus(os.Stdout, api.GroupStatus{
		GroupID: "e5e5e5e5", Name: "delta", Host: bob.String(), Term: 6, Role: "follower", Committed: 12, HasQuorum: true,
		Members: []api.Member{
			{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true},
			{PublicID: bob.String(), Name: "Bob", Fingerprint: bob.Fingerprint(), Voter: true, Online: true, Host: true},
		},
		Restored: "this node's copy of the group was restored from a backup: it votes for no new host (but the one it follows) and asks for no vote until it has caught up with a host",
	})
	// Output:
	// group "delta" (e5e5e5e5)
	//   RESTORED: this node's copy of the group was restored from a backup: it votes for no new host (but the one it follows) and asks for no vote until it has caught up with a host
	//   host       Bob
	//   term       6
	//   this node  follower
	//   quorum     yes
	//   committed  12
	//   members (2):
	//     Alice  d341 d769 1e1e b07d  voter  online  -  you
	//     Bob    70e4 647c 096f 1192  voter  online  -  host
}

// Messages the quota holds back say so, with the quota in force: not
// "queued" alone, which sends a person looking at the network.
func Example_printGroupStatusHeld() {
	g := api.GroupStatus{
		GroupID: "e5e5e5e5", Name: "delta", Host: alice.String(), Term: 2, Role: "leader", Committed: 5, Queued: 2, Held: 2, HasQuorum: true,
		Settings: api.GroupSettings{MsgsPerMinute: 1, BytesPerDay: 50 << 20},
	}
	printGroupStatus(os.Stdout, g)
	g.Queued, g.Settings = 3, api.GroupSettings{MsgsPerMinute: 120, BytesPerDay: 1<<20 + 1<<19}
	printGroupStatus(os.Stdout, g)
	// Output:
	// group "delta" (e5e5e5e5)
	//   host       d341 d769 1e1e b07d
	//   term       2
	//   this node  host
	//   quorum     yes
	//   committed  5
	//   queued     2 in the outbox, held back by your quota in this group (1 message a minute, 50 MiB a day; 'demes group settings' shows it): they go out by themselves when it allows
	//   members (0):
	// group "delta" (e5e5e5e5)
	//   host       d341 d769 1e1e b07d
	//   term       2
	//   this node  host
	//   quorum     yes
	//   committed  5
	//   queued     3 in the outbox, 2 of them held back by your quota in this group (120 messages a minute, 1.5 MiB a day; 'demes group settings' shows it): they go out by themselves when it allows
	//   members (0):
}

// A name in wide characters (two columns each on a terminal) keeps the
// members' columns in line.
func Example_printGroupStatusWideName() {
	printGroupStatus(os.Stdout, api.GroupStatus{
		GroupID: "f6f6f6f6", Name: "茶話会", Host: bob.String(), Term: 1, Role: "follower", Committed: 2, HasQuorum: true,
		Members: []api.Member{
			{PublicID: alice.String(), Name: "Alice", Fingerprint: alice.Fingerprint(), Voter: true, Online: true, Self: true},
			{PublicID: bob.String(), Name: "山田", Fingerprint: bob.Fingerprint(), Voter: true, Online: true, Host: true},
		},
	})
	// Output:
	// group "茶話会" (f6f6f6f6)
	//   host       山田
	//   term       1
	//   this node  follower
	//   quorum     yes
	//   committed  2
	//   members (2):
	//     Alice  d341 d769 1e1e b07d  voter  online  -  you
	//     山田   70e4 647c 096f 1192  voter  online  -  host
}

// A group this node left is history only: no host to look for, no quorum
// to wait for, and no order of succession it takes part in.
func Example_printGroupStatusLeft() {
	printGroupStatus(os.Stdout, api.GroupStatus{
		GroupID: "e5e5e5e5", Name: "gamma", Term: 2, Role: "left", Committed: 27,
		Preference: []string{bob.String(), alice.String()},
		Members:    []api.Member{{PublicID: bob.String(), Name: "Bob", Fingerprint: bob.Fingerprint(), Voter: true, Online: true, RTTMillis: 1.5, Admin: true}},
	})
	// Output:
	// group "gamma" (e5e5e5e5)
	//   host       -
	//   term       2
	//   this node  left
	//   quorum     -  (this node no longer follows the group: the figures are from when it left)
	//   committed  27
	//   members (1):
	//     Bob  70e4 647c 096f 1192  voter  online  1.5 ms  admin
}

// TestRoleWords: status names this node's raft role in the product's
// words (the host, not raft's leader; no bare "pre-candidate"), and the
// API keeps raft's names.
func TestRoleWords(t *testing.T) {
	for role, want := range map[string]string{
		"leader":        "host",
		"follower":      "follower",
		"learner":       "learner",
		"candidate":     "standing for host: the group has no host now",
		"pre-candidate": "asking the voters whether it may stand for host: the group has no host now",
		"halted":        "halted",
	} {
		if got := roleWords(role); got != want {
			t.Errorf("roleWords(%q) = %q, want %q", role, got, want)
		}
	}
	var b strings.Builder
	printGroupStatus(&b, api.GroupStatus{GroupID: "f6f6f6f6", Name: "eps", Term: 7, Role: "pre-candidate"})
	if !strings.Contains(b.String(), "this node  asking the voters whether it may stand for host") || strings.Contains(b.String(), "pre-candidate") {
		t.Errorf("status of a pre-candidate:\n%s", b.String())
	}
}
