package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/demes/demes/api"
)

// Running counts for the node's metrics (package metrics reads them through
// Service.Figures at scrape time). Counting costs an atomic add or a short
// lock where the work happens; nothing names a member.

// histogram counts observations into fixed buckets.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last one is +Inf
	count  uint64
	sum    float64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.count++
	h.sum += v
}

func (h *histogram) snapshot() api.Histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := api.Histogram{Bounds: append([]float64(nil), h.bounds...), Counts: make([]uint64, len(h.bounds)), Count: h.count, Sum: h.sum}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i]
		out.Counts[i] = c
	}
	return out
}

// Buckets, in seconds: a write to disk takes about a millisecond here, a
// message commits in a few, a round trip on a LAN is under one.
var (
	fsyncBuckets   = []float64{0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1}
	latencyBuckets = []float64{0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2, 4, 8, 16}
	rttBuckets     = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
)

// nodeFigures are the node-wide counts.
type nodeFigures struct {
	fsync          *histogram
	sent, received atomic.Uint64
	// identitySealed counts the messages this node sealed with a key
	// header to identity keys rather than prekeys (keys_group.go).
	identitySealed atomic.Uint64
}

func newNodeFigures() *nodeFigures { return &nodeFigures{fsync: newHistogram(fsyncBuckets...)} }

// groupFigures are one group's counts.
type groupFigures struct {
	leaderChanges, applied, failed, withheld, forced, deposed, leftOut, slowTurns atomic.Uint64
	// committed counts the entries this node saw committed since it
	// started (commitSeen, the commit index it last counted to, is the
	// group goroutine's); pending is the proposals of this node's own
	// messages on their way (proposed, not committed yet).
	committed, pending atomic.Uint64
	commitSeen         uint64
	commitLatency, rtt *histogram
}

func newGroupFigures() *groupFigures {
	return &groupFigures{commitLatency: newHistogram(latencyBuckets...), rtt: newHistogram(rttBuckets...)}
}

// Figures returns the node's running counts.
func (n *Node) Figures() Figures {
	f := api.Figures{FsyncSeconds: n.fig.fsync.snapshot(), PeerSentBytes: n.fig.sent.Load(), PeerReceivedBytes: n.fig.received.Load()}
	for _, g := range n.groupsNow() {
		f.Groups = append(f.Groups, api.GroupFigures{
			GroupID: g.id.String(), LeaderChanges: g.fig.leaderChanges.Load(), TransfersWithheld: g.fig.withheld.Load(), Depositions: g.fig.deposed.Load(), FastCampaigns: g.fig.forced.Load(), Applied: g.fig.applied.Load(),
			Committed: g.fig.committed.Load(), Pending: g.fig.pending.Load(),
			ProposalsFailed: g.fig.failed.Load(), CommitLatency: g.fig.commitLatency.snapshot(), RoundTrip: g.fig.rtt.snapshot(),
			RoundTripsLeftOut: g.fig.leftOut.Load(), SlowTurns: g.fig.slowTurns.Load(),
		})
	}
	return f
}

// countingLink counts the bytes of the frames a node sends and of the
// answers it gets.
type countingLink struct {
	Link
	fig *nodeFigures
}

func (l countingLink) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	l.fig.sent.Add(uint64(len(frame)))
	resp, err := l.Link.Post(ctx, url, frame)
	l.fig.received.Add(uint64(len(resp)))
	return resp, err
}
