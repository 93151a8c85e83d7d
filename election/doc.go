// Package election decides which member of a group should host it: the
// member with the best latency closeness centrality, then the backups in
// order, and the set of raft voters.
//
// Raft decides who may lead (safety); this package decides who should lead
// (placement). It is pure and deterministic: no clock, no I/O, no
// goroutines, no randomness, and no dependence on map iteration order. Every
// member ranks from the same committed latency maps and gets the same
// answer. The node acts on the answers only through raft's own mechanisms,
// leadership transfer and one-at-a-time configuration changes, so a wrong or
// stale answer can cost availability for a moment but never safety.
//
// # Using it
//
// A node feeds its ping samples for each peer into an [Estimator], and
// publishes its map of smoothed RTTs as a log entry whenever [Material] says
// it changed enough. From the committed entries it builds an [Input] and
// calls [Rank]. The leader then asks [ShouldTransfer] whether to hand
// leadership to a better member, and [NextVoterChange] for the next step
// towards [Ranking.Voters].
//
//	r := election.Rank(election.Input{
//		Members: members,   // join order
//		Dead:    dead,      // committed "down" marks
//		Reports: reports,   // reporter -> peer -> RTT ms
//	})
//	if to, ok := election.ShouldTransfer(r, self, voters, caughtUp, election.DefaultHysteresis()); ok {
//		rawNode.TransferLeader(idOf(to))
//	}
//	if c, ok := election.NextVoterChange(r, currentVoters, dead, self, 0, 0); ok {
//		proposeConfChange(c) // one change; call again after it is applied
//	}
//
// # The graph
//
// The live members are [Input.Members] minus [Input.Dead]; dead members, and
// reports from or about non-members, are ignored entirely. A report is
// usable when it is positive, finite and at most [MaxRTTMillis] (60 s); a
// member's report about itself is ignored.
//
// There is an edge between two live members A and B only when both
// reported each other, and its weight is the larger of the two reports.
// Taking the larger value means a member cannot look closer by
// under-reporting: the edge is at least what the other endpoint measured.
// Requiring both reports closes the remaining hole: were a one-sided report
// used, a member could claim tiny RTTs to peers that have published nothing
// about it and win. The cost is that a member's edges appear only once both
// ends have published; until then it ranks as having no data.
//
// Misreporting is contained the other way too. Alone, a member can only
// lengthen edges it is an endpoint of. That makes itself look worse,
// withdraws it as a relay on shortest paths, and changes another member's
// mean only in the one term for the distance to the misreporter; paths
// between two other members over their own edges are untouched. Two
// colluding members can shorten only the edge between themselves.
//
// # The score
//
// Where there is no direct edge, distance is the shortest path (all pairs,
// Floyd–Warshall). The members with data are the live members with at least
// one edge. A member's score is its mean shortest-path distance, in
// milliseconds, to every other member with data; lower is better. Members
// without data are left out of everyone's mean, so that one newcomer that
// has not published yet does not leave every score undefined. The
// [Ranking.Preference] list is, in order:
//
//  1. members that reach every other member with data, by score;
//  2. members that reach only some, by the number they reach (more first),
//     then by mean distance to those they reach; their score is +Inf;
//  3. members with no usable edge at all, in join order; score +Inf.
//
// Within groups 1 and 2, means are sorted and each run of means that are
// within [TieMillis] (1e-9 ms) of the previous one is a tie, ordered by
// member id (plain string comparison). Apart from group 3, the order does
// not depend on the order of [Input.Members].
//
// A member all of whose edges are relayed (either endpoint marks the edge in
// [Input.Relayed]: the peer is reached only through a circuit relay) ranks
// with its mean times [RelayedFactor] plus [RelayedMillis], so that it hosts
// only when no directly reachable member is near as good.
//
// If there is no usable edge at all, [Ranking.Preference] is the live
// members in join order and [Ranking.Fallback] is true. [Ranking.Voters] is
// the first [Input.MaxVoters] (default 5) members of the preference list.
//
// # Placement
//
// [ShouldTransfer] names a transfer target ahead of the leader in the
// preference list that is a voter, caught up, and scored, and only when it
// beats the leader by the [Hysteresis] (20% and 2 ms by default), unless the
// leader is itself out of place. [Complete] says whether a ranking has
// every live member scored from maps that postdate every failure in
// [Input.Dead]: the node moves a host that raft elected on its own only on
// such a ranking, without hysteresis. [NextVoterChange] returns at most one
// promotion or demotion at a time and never leaves the group without a live
// quorum. Their documentation states the exact rules; docs/PROTOCOL.md (section Election)
// argues why they cannot break raft's safety.
//
// [Placer] puts these together as a state machine that a member steps with
// the time and its [Observations] (its raft role and term, the members and
// voters, the committed maps, its pong times, raft's progress): it computes
// the [Dead] set, decides when to publish a latency map, and on the leader
// when to transfer and which voter change to make, with the settling,
// hysteresis and cooldown rules its documentation states. The caller
// carries out the [Decision]; the placer itself reads no clock.
package election
