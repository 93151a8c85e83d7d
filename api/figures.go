package api

// Figures are a node's running counts, for its metrics (package metrics):
// node-wide, and per group by group id, never by member.
type Figures struct {
	// FsyncSeconds times the node's durable writes (one per raft write).
	FsyncSeconds Histogram
	// PeerSentBytes and PeerReceivedBytes count the frames this node sent
	// to and received from peers, and the answers.
	PeerSentBytes, PeerReceivedBytes uint64
	Groups                           []GroupFigures
}

// GroupFigures are one group's running counts on this node.
type GroupFigures struct {
	GroupID string
	// LeaderChanges counts the times this node saw a new host.
	LeaderChanges uint64
	// TransfersWithheld counts the leadership handovers placement asked
	// for and this node, as host, withheld: their target was a host the
	// voters had deposed for censorship a short while before.
	TransfersWithheld uint64
	// Depositions counts the times this node stopped following its host
	// because a majority of the voters suspected it of censorship in its
	// term (a host deposed again after a lapse counts again).
	Depositions uint64
	// FastCampaigns counts the elections this node started at once,
	// without waiting out the other voters' election timeout, because its
	// host's process was gone (its address refused connections) and this
	// node was its best backup.
	FastCampaigns uint64
	// Committed counts the entries this node saw the group commit since it
	// started (each once, as etcd's proposals_committed_total); Pending
	// is the proposals of this node's own messages on their way to the
	// host, not committed yet.
	Committed, Pending uint64
	// Applied counts the log entries this node applied since it started;
	// ProposalsFailed the proposals raft refused at once (no host known).
	Applied, ProposalsFailed uint64
	// CommitLatency times this node's own messages, from send to commit;
	// RoundTrip the members' answers to this node's pings.
	CommitLatency, RoundTrip Histogram
	// RoundTripsLeftOut counts the answers to this node's pings whose
	// round trip was no sample, since more than half of it overlapped a
	// silence (the member's, or this node's own standstill): they show the
	// member lives, but measured the silence, not the network.
	RoundTripsLeftOut uint64
	// SlowTurns counts the turns of the group's goroutine (one event, and
	// what raft wrote, sent and applied for it) that took longer than an
	// election timeout: a slow disk or an overloaded machine.
	SlowTurns uint64
}

// Histogram is a distribution: Counts[i] observations were at most
// Bounds[i] (cumulative, as Prometheus has them), Count in all, summing
// to Sum.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}
