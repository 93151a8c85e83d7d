package metrics

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/demes/demes/api"
)

type fakeSource struct {
	st      api.Status
	running bool
	fig     api.Figures
}

func (f *fakeSource) Status() api.Status   { return f.st }
func (f *fakeSource) Running() bool        { return f.running }
func (f *fakeSource) Figures() api.Figures { return f.fig }

func source() *fakeSource {
	return &fakeSource{running: true, st: api.Status{
		Groups: []api.GroupStatus{
			{GroupID: "g1", Host: "demes1host", Term: 3, Committed: 42, Queued: 2,
				Members: []api.Member{{PublicID: "demes1a", Voter: true}, {PublicID: "demes1b", Voter: true}, {PublicID: "demes1c"}}},
			{GroupID: "g2", Term: 1, Committed: 7, Members: []api.Member{{PublicID: "demes1a", Voter: true, Self: true, Online: true}}},
		},
		Rejected: map[string]int64{"sender is not a member": 5},
	}, fig: api.Figures{
		FsyncSeconds:  api.Histogram{Bounds: []float64{0.001, 0.01}, Counts: []uint64{3, 5}, Count: 6, Sum: 0.05},
		PeerSentBytes: 1000, PeerReceivedBytes: 2000,
		Groups: []api.GroupFigures{{GroupID: "g1", LeaderChanges: 2, Applied: 42, ProposalsFailed: 1, SlowTurns: 4,
			CommitLatency: api.Histogram{Bounds: []float64{0.01}, Counts: []uint64{4}, Count: 4, Sum: 0.02},
			RoundTrip:     api.Histogram{Bounds: []float64{0.001}, Counts: []uint64{9}, Count: 10, Sum: 0.01}}},
	}}
}

// TestMetrics scrapes the registry: each metric has its name, type, help
// and value, labels hold group ids and reasons but never a member, and the
// whole passes client_golang's lint.
func TestMetrics(t *testing.T) {
	src := source()
	reg := NewRegistry(src)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	want := map[string]dto.MetricType{
		"demes_raft_has_leader":                    dto.MetricType_GAUGE,
		"demes_raft_term":                          dto.MetricType_GAUGE,
		"demes_raft_committed_index":               dto.MetricType_GAUGE,
		"demes_group_members":                      dto.MetricType_GAUGE,
		"demes_group_voters":                       dto.MetricType_GAUGE,
		"demes_outbox_queued":                      dto.MetricType_GAUGE,
		"demes_envelopes_rejected_total":           dto.MetricType_COUNTER,
		"demes_node_running":                       dto.MetricType_GAUGE,
		"demes_raft_leader_changes_seen_total":     dto.MetricType_COUNTER,
		"demes_placement_transfers_withheld_total": dto.MetricType_COUNTER,
		"demes_censorship_depositions_total":       dto.MetricType_COUNTER,
		"demes_raft_proposals_committed_total":     dto.MetricType_COUNTER,
		"demes_raft_proposals_pending":             dto.MetricType_GAUGE,
		"demes_raft_proposals_applied_total":       dto.MetricType_COUNTER,
		"demes_raft_proposals_failed_total":        dto.MetricType_COUNTER,
		"demes_message_commit_latency_seconds":     dto.MetricType_HISTOGRAM,
		"demes_peer_round_trip_time_seconds":       dto.MetricType_HISTOGRAM,
		"demes_disk_fsync_duration_seconds":        dto.MetricType_HISTOGRAM,
		"demes_peer_sent_bytes_total":              dto.MetricType_COUNTER,
		"demes_group_slow_turns_total":             dto.MetricType_COUNTER,
		"demes_peer_received_bytes_total":          dto.MetricType_COUNTER,
		"go_goroutines":                            dto.MetricType_GAUGE,
		"process_cpu_seconds_total":                dto.MetricType_COUNTER,
	}
	for name, typ := range want {
		mf, ok := got[name]
		if !ok {
			if strings.HasPrefix(name, "process_") {
				continue // the process collector needs procfs, which not every OS has
			}
			t.Errorf("no metric %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, mf.GetType(), typ)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "demes1") {
					t.Errorf("%s has a member id in label %s", name, l.GetName())
				}
			}
		}
	}
	value := func(name, group string) float64 {
		for _, m := range got[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == group {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no %s for %s", name, group)
		return 0
	}
	checks := []struct {
		name, group string
		want        float64
	}{
		{"demes_raft_has_leader", "g1", 1}, {"demes_raft_has_leader", "g2", 0},
		{"demes_raft_committed_index", "g1", 42}, {"demes_group_members", "g1", 3},
		{"demes_group_voters", "g1", 2}, {"demes_outbox_queued", "g1", 2}, {"demes_raft_term", "g2", 1},
	}
	for _, c := range checks {
		if v := value(c.name, c.group); v != c.want {
			t.Errorf("%s{group=%s} = %v, want %v", c.name, c.group, v, c.want)
		}
	}
	if v := got["demes_envelopes_rejected_total"].GetMetric()[0].GetCounter().GetValue(); v != 5 {
		t.Errorf("rejected = %v", v)
	}
	// The running counts, as the node keeps them.
	if v := got["demes_raft_leader_changes_seen_total"].GetMetric()[0].GetCounter().GetValue(); v != 2 {
		t.Errorf("leader changes = %v", v)
	}
	if v := got["demes_group_slow_turns_total"].GetMetric()[0].GetCounter().GetValue(); v != 4 {
		t.Errorf("slow turns = %v", v)
	}
	if v := got["demes_peer_sent_bytes_total"].GetMetric()[0].GetCounter().GetValue(); v != 1000 {
		t.Errorf("sent bytes = %v", v)
	}
	h := got["demes_disk_fsync_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 6 || h.GetSampleSum() != 0.05 || len(h.GetBucket()) != 2 || h.GetBucket()[1].GetCumulativeCount() != 5 {
		t.Errorf("fsync histogram = %v", h)
	}
}

// TestMetricsDocumented: every metric of DeMeS's own is in docs/METRICS.md,
// which operators read to know what it means.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := NewRegistry(source()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, "demes_") && !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("metric %s is not in docs/METRICS.md", name)
		}
	}
}

// TestHandler: /metrics answers in the text format; /healthz and /readyz say
// whether the node runs and whether every group has a host.
func TestHandler(t *testing.T) {
	src := source()
	srv := httptest.NewServer(Handler(src))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "# TYPE demes_raft_has_leader gauge") {
		t.Errorf("/metrics: %d %.200s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz of a running node: %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.HasPrefix(body, "not ready\n") || !strings.Contains(body, "group g2: no host yet") {
		t.Errorf("/readyz with a group electing a host: %d %s", code, body)
	}
	src.st.Groups = src.st.Groups[:1]
	if code, body := get("/readyz"); code != 200 || body != "ok\ngroup g1: host known (term 3)\n" {
		t.Errorf("/readyz with hosts everywhere: %d %q", code, body)
	}
	src.running = false
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("/healthz of a stopped node: %d", code)
	}
}

// TestReady: ready means running, and every group hosted, waiting for a
// quorum it cannot have, or left; the reasons say which, per group, and
// never name a member.
func TestReady(t *testing.T) {
	voter := func(online bool) api.Member { return api.Member{PublicID: "demes1x", Voter: true, Online: online} }
	learner := api.Member{PublicID: "demes1y", Online: true}
	for _, tc := range []struct {
		name  string
		group api.GroupStatus
		ready bool
		why   string
	}{
		{"hosted", api.GroupStatus{Host: "demes1h", Term: 4, Members: []api.Member{voter(true), voter(false), voter(false)}}, true, "host known (term 4)"},
		{"waiting for quorum", api.GroupStatus{Members: []api.Member{voter(true), voter(false), voter(false), learner}}, true,
			"waiting for quorum: 1 of 3 voters reachable, 2 needed"},
		{"two of four is no quorum", api.GroupStatus{Members: []api.Member{voter(true), voter(true), voter(false), voter(false)}}, true,
			"waiting for quorum: 2 of 4 voters reachable, 3 needed"},
		{"electing", api.GroupStatus{Members: []api.Member{voter(true), voter(true), voter(false)}}, false,
			"no host yet: electing one (2 of 3 voters reachable)"},
		{"alone and no host", api.GroupStatus{Members: []api.Member{voter(true)}}, false, "no host yet: electing one (1 of 1 voters reachable)"},
		{"joining", api.GroupStatus{Members: []api.Member{learner}}, false, "joining: no voters known yet"},
		{"left", api.GroupStatus{Role: "left"}, true, "this node has left it"},
		{"halted", api.GroupStatus{Host: "demes1h", Fork: &api.ForkAlert{Index: 17, Peer: "demes1p"}, Members: []api.Member{voter(true)}}, false,
			"halted: its history forked at index 17 (see demes status)"},
	} {
		tc.group.GroupID = "g"
		got := Ready(true, api.Status{Groups: []api.GroupStatus{tc.group}})
		if got.Ready != tc.ready || len(got.Reasons) != 1 || got.Reasons[0] != "group g: "+tc.why {
			t.Errorf("%s: Ready = %v %q, want %v %q", tc.name, got.Ready, got.Reasons, tc.ready, "group g: "+tc.why)
		}
		if strings.Contains(strings.Join(got.Reasons, ""), "demes1") {
			t.Errorf("%s: a reason names a member: %q", tc.name, got.Reasons)
		}
	}
	// One group not ready makes the node not ready; no group at all is ready.
	two := api.Status{Groups: []api.GroupStatus{{GroupID: "a", Host: "demes1h"}, {GroupID: "b", Members: []api.Member{voter(true)}}}}
	if got := Ready(true, two); got.Ready || len(got.Reasons) != 2 {
		t.Errorf("one group electing: %+v", got)
	}
	if got := Ready(true, api.Status{}); !got.Ready {
		t.Errorf("no groups: %+v", got)
	}
	if got := Ready(false, two); got.Ready || got.Reasons[0] != "the node is stopped" {
		t.Errorf("stopped: %+v", got)
	}
}

// TestOnlyHost: the metrics listener answers requests that name it, and
// refuses one whose Host header names another site (a page that rebound
// its own name to 127.0.0.1), which read group ids and activity before.
func TestOnlyHost(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = OnlyHost(srv.Listener.Addr().String(), Handler(source()))
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for host, want := range map[string]int{
		"":                     200, // the URL's own, 127.0.0.1:PORT
		"localhost:" + port:    200,
		"LOCALHOST:" + port:    200,
		"[::1]:" + port:        200,
		"127.0.0.1":            200, // port 80, as curl leaves it out
		"localhost:9100":       200, // a port forwarded here
		"evil.example:" + port: 403,
		"evil.example":         403,
		"127.0.0.1.nip.io":     403,
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
