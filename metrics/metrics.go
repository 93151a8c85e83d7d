// Package metrics exposes a node's state to Prometheus: a collector that
// reads the node's status at scrape time (so that nothing on the message
// path pays for metrics), the Go runtime and process collectors, and the
// handler of a separate, loopback-only listener with /metrics, /healthz and
// /readyz. docs/METRICS.md lists every metric.
//
// Labels name a group by its id and a rejection by its reason, never a
// member: the metrics of a node say how its groups run, not who is in them.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/demes/demes/api"
)

// Source is what the metrics read: the node's status, and whether it runs.
type Source interface {
	Status() api.Status
	Running() bool
}

// Figurer is a Source that also keeps running counts (node.Service does):
// the counters and histograms below come from it.
type Figurer interface {
	Figures() api.Figures
}

var (
	hasLeader = prometheus.NewDesc("demes_raft_has_leader",
		"Whether this node knows a host (raft leader) for the group: 1 or 0.", []string{"group"}, nil)
	term = prometheus.NewDesc("demes_raft_term",
		"The group's current raft term, which each election raises.", []string{"group"}, nil)
	committed = prometheus.NewDesc("demes_raft_committed_index",
		"The group's commit index as this node knows it: how many log entries are committed.", []string{"group"}, nil)
	members = prometheus.NewDesc("demes_group_members",
		"The group's current members.", []string{"group"}, nil)
	voters = prometheus.NewDesc("demes_group_voters",
		"The group's current voters.", []string{"group"}, nil)
	queued = prometheus.NewDesc("demes_outbox_queued",
		"Messages this node has accepted for the group and not yet seen committed.", []string{"group"}, nil)
	rejected = prometheus.NewDesc("demes_envelopes_rejected_total",
		"Envelopes and entries this node rejected, by reason.", []string{"reason"}, nil)
	up = prometheus.NewDesc("demes_node_running",
		"Whether the node runs: 1 or 0 (a demo node can be stopped from its UI).", nil, nil)

	leaderChanges = prometheus.NewDesc("demes_raft_leader_changes_seen_total",
		"The times this node saw the group get a new host (raft leader).", []string{"group"}, nil)
	withheld = prometheus.NewDesc("demes_placement_transfers_withheld_total",
		"Leadership handovers placement asked for and this node, as host, withheld: the target was a host the voters deposed for censorship within the last 10 minutes.", []string{"group"}, nil)
	depositions = prometheus.NewDesc("demes_censorship_depositions_total",
		"Times this node stopped following its host because a majority of the voters suspected it of censorship (holding back members' messages while committing others'); a host deposed again after a lapse counts again.", []string{"group"}, nil)
	leftOut = prometheus.NewDesc("demes_peer_round_trips_left_out_total",
		"Answers to this node's pings whose round trip was no sample: more than half of it overlapped a silence (the member's raft messages overdue, or this node hearing from no one or standing still).", []string{"group"}, nil)
	slowTurns = prometheus.NewDesc("demes_group_slow_turns_total",
		"Turns of the group's goroutine (one event, and what raft wrote, sent and applied for it) that took longer than an election timeout; every message of the group waits for them. The log says where the time went.", []string{"group"}, nil)
	fastCampaigns = prometheus.NewDesc("demes_placement_fast_campaigns_total",
		"Elections this node started at once because its host's process was gone (its address refused connections) and this node was its best backup.", []string{"group"}, nil)
	committedTotal = prometheus.NewDesc("demes_raft_proposals_committed_total",
		"Log entries of the group this node saw committed since it started (each once).", []string{"group"}, nil)
	pending = prometheus.NewDesc("demes_raft_proposals_pending",
		"Proposals of this node's own messages on their way to the host, not committed yet.", []string{"group"}, nil)
	applied = prometheus.NewDesc("demes_raft_proposals_applied_total",
		"Log entries of the group this node applied since it started (each committed entry, once).", []string{"group"}, nil)
	failed = prometheus.NewDesc("demes_raft_proposals_failed_total",
		"This node's message proposals raft refused at once (no host known); the outbox proposes them again.", []string{"group"}, nil)
	commitLatency = prometheus.NewDesc("demes_message_commit_latency_seconds",
		"From send to commit, for this node's own messages in the group.", []string{"group"}, nil)
	roundTrip = prometheus.NewDesc("demes_peer_round_trip_time_seconds",
		"The members' answers to this node's pings in the group, all members together.", []string{"group"}, nil)
	fsync = prometheus.NewDesc("demes_disk_fsync_duration_seconds",
		"This node's durable writes of raft state (one bbolt transaction, fsynced, per raft write).", nil, nil)
	sentBytes = prometheus.NewDesc("demes_peer_sent_bytes_total",
		"Bytes of frames this node sent to peers, and of its answers to theirs.", nil, nil)
	receivedBytes = prometheus.NewDesc("demes_peer_received_bytes_total",
		"Bytes of frames this node received from peers, and of their answers to its own.", nil, nil)
)

type collector struct{ src Source }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hasLeader, term, committed, members, voters, queued, rejected, up,
		leaderChanges, withheld, depositions, fastCampaigns, committedTotal, pending, applied, failed, commitLatency, roundTrip, leftOut, slowTurns, fsync, sentBytes, receivedBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	running := c.src.Running()
	ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, bool01(running))
	if !running {
		return
	}
	st := c.src.Status()
	for _, g := range st.Groups {
		ch <- prometheus.MustNewConstMetric(hasLeader, prometheus.GaugeValue, bool01(g.Host != ""), g.GroupID)
		ch <- prometheus.MustNewConstMetric(term, prometheus.GaugeValue, float64(g.Term), g.GroupID)
		ch <- prometheus.MustNewConstMetric(committed, prometheus.GaugeValue, float64(g.Committed), g.GroupID)
		ch <- prometheus.MustNewConstMetric(members, prometheus.GaugeValue, float64(len(g.Members)), g.GroupID)
		v := 0
		for _, m := range g.Members {
			if m.Voter {
				v++
			}
		}
		ch <- prometheus.MustNewConstMetric(voters, prometheus.GaugeValue, float64(v), g.GroupID)
		ch <- prometheus.MustNewConstMetric(queued, prometheus.GaugeValue, float64(g.Queued), g.GroupID)
	}
	for reason, n := range st.Rejected {
		ch <- prometheus.MustNewConstMetric(rejected, prometheus.CounterValue, float64(n), reason)
	}
	if f, ok := c.src.(Figurer); ok {
		collectFigures(ch, f.Figures())
	}
}

// collectFigures sends the running counts.
func collectFigures(ch chan<- prometheus.Metric, f api.Figures) {
	ch <- histogram(fsync, f.FsyncSeconds)
	ch <- prometheus.MustNewConstMetric(sentBytes, prometheus.CounterValue, float64(f.PeerSentBytes))
	ch <- prometheus.MustNewConstMetric(receivedBytes, prometheus.CounterValue, float64(f.PeerReceivedBytes))
	for _, g := range f.Groups {
		ch <- prometheus.MustNewConstMetric(leaderChanges, prometheus.CounterValue, float64(g.LeaderChanges), g.GroupID)
		ch <- prometheus.MustNewConstMetric(withheld, prometheus.CounterValue, float64(g.TransfersWithheld), g.GroupID)
		ch <- prometheus.MustNewConstMetric(depositions, prometheus.CounterValue, float64(g.Depositions), g.GroupID)
		ch <- prometheus.MustNewConstMetric(fastCampaigns, prometheus.CounterValue, float64(g.FastCampaigns), g.GroupID)
		ch <- prometheus.MustNewConstMetric(committedTotal, prometheus.CounterValue, float64(g.Committed), g.GroupID)
		ch <- prometheus.MustNewConstMetric(pending, prometheus.GaugeValue, float64(g.Pending), g.GroupID)
		ch <- prometheus.MustNewConstMetric(applied, prometheus.CounterValue, float64(g.Applied), g.GroupID)
		ch <- prometheus.MustNewConstMetric(failed, prometheus.CounterValue, float64(g.ProposalsFailed), g.GroupID)
		ch <- histogram(commitLatency, g.CommitLatency, g.GroupID)
		ch <- histogram(roundTrip, g.RoundTrip, g.GroupID)
		ch <- prometheus.MustNewConstMetric(leftOut, prometheus.CounterValue, float64(g.RoundTripsLeftOut), g.GroupID)
		ch <- prometheus.MustNewConstMetric(slowTurns, prometheus.CounterValue, float64(g.SlowTurns), g.GroupID)
	}
}

// histogram turns a node histogram into a Prometheus one.
func histogram(d *prometheus.Desc, h api.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry with the node's collector and the Go
// runtime and process collectors.
func NewRegistry(src Source) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves /metrics (the Prometheus text format), /healthz (200
// while the node runs) and /readyz (200 while it is ready by [Ready], 503
// otherwise, with the reason for each group either way).
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(NewRegistry(src), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", healthz(src))
	mux.HandleFunc("GET /readyz", readyz(src))
	return mux
}
